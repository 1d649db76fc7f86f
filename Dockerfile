# The trivsel Airflow image for docker-compose.yml: the official Airflow image, the locked dependencies and
# the trivsel package. Keep the Airflow version equal to apache-airflow in requirements.lock
# (tests/platform/test_compose.py checks it).
#
#   docker compose build
#
# The official image already carries the Celery provider (CeleryExecutor), redis and psycopg2.
FROM apache/airflow:3.3.2-python3.11

ENV TRIVSEL_ROOT=/opt/trivsel \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

USER root
RUN mkdir -p /opt/trivsel /opt/trivsel-data && chown -R airflow:0 /opt/trivsel /opt/trivsel-data
USER airflow
WORKDIR /opt/trivsel

# Dependencies first (a layer that changes only with the lock file), then the code.
COPY --chown=airflow:0 requirements.lock /opt/trivsel/requirements.lock
RUN pip install --requirement /opt/trivsel/requirements.lock

# The repository layout the code expects: dags/, plugins/, dbt/, expectations/, config/ side by side under
# one root (trivsel.settings.ROOT). docker-compose.yml mounts the same folders over these copies.
COPY --chown=airflow:0 pyproject.toml README.md /opt/trivsel/
COPY --chown=airflow:0 dags /opt/trivsel/dags
COPY --chown=airflow:0 plugins /opt/trivsel/plugins
COPY --chown=airflow:0 dbt /opt/trivsel/dbt
COPY --chown=airflow:0 expectations /opt/trivsel/expectations
COPY --chown=airflow:0 config /opt/trivsel/config
# Editable: the `trivsel` command and `import trivsel` resolve to /opt/trivsel/plugins/trivsel, so a mounted
# plugins/ folder is the code that runs.
RUN pip install --no-deps --editable /opt/trivsel
# The dbt manifest the monthly DAG is rendered from (parsing the DAG never runs dbt)
RUN trivsel manifest

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/trivsel/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/trivsel/plugins \
    TRIVSEL_HOME=/opt/trivsel-data
