"""docker-compose's superset service: create its metadata database in the warehouse's server if missing.

Run by Superset's interpreter (psycopg2, no trivsel import) before `superset db upgrade`; locally
trivsel.bi.server.ensure_metadata_db() does the same.
"""

import os
from urllib.parse import urlsplit

import psycopg2
from psycopg2 import sql


def main() -> None:
    parts = urlsplit(os.environ["TRIVSEL_SUPERSET_METADATA_URL"].replace("postgresql+psycopg2://", "postgresql://"))
    name = parts.path.lstrip("/")
    conn = psycopg2.connect(parts._replace(path="/postgres").geturl())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    conn.close()


if __name__ == "__main__":
    main()
