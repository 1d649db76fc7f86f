"""BI tools on the marts: Apache Superset on this machine, provisioned as code (`make bi`, `trivsel bi`).

Superset pins SQLAlchemy 1.4 and Airflow needs 2.x, so Superset runs from a virtual environment of its own
(`.venv-bi`, from requirements-bi.lock). trivsel drives it from the outside: `server` installs, migrates and
starts it (metadata database `superset` in the warehouse's PostgreSQL server, as Airflow's), `logins` gives it
warehouse logins that are members of `bi_reader` and of each `municipality_<code>` (so row-level security,
not a Superset filter, decides what a municipality sees), and `provision` creates its connections,
datasets (column descriptions from the dbt manifest) and one dashboard per domain over the REST API.
`superset_config` and `superset_security` run inside Superset's own interpreter and import nothing of trivsel.
"""
