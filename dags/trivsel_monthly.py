"""The monthly trivsel DAG: one run per period, every registered municipality fanned out.

plan → lanes (the municipality × period jobs in a few batches, trivsel.lanes) → ingest (one mapped task per
lane, each municipality in turn: pull new files from its remote locations, discover, archive, COPY to raw; a
municipality that could not be loaded is recorded and the lane goes on) → validate (GX, once) → gate → dbt_seeds → dbt_staging → quality_gate
(per-municipality data tests: a failing one holds that municipality's deliveries, trivsel.quality; the
`findings` task lists the municipalities with a quarantine, a hold, a failed pull or an ingest finding, and
a mapped `verdict` task per listed municipality fails only for it) → dbt (Cosmos, one task and Asset per
model, rendered from the dbt manifest: no dbt at parse) → significance tests (mapped per domain) → certify
(models/certified into certified_next, checked, swapped into certified) → publish.

The logic lives in plugins/trivsel (trivsel.dag_factory builds this Airflow DAG from
config/municipalities.yml and the manifest that `make manifest` builds); this file only calls it.
"""

from __future__ import annotations

from trivsel.config import load_config
from trivsel.dag_factory import build_monthly_dag

# the Cosmos dbt profile's Airflow connection: dbt runs as the transformer role (docs/roles.md)
WAREHOUSE_CONN_ID = "trivsel_transformer"

# doc_md: the data team's page (plugins/trivsel/templates/dag/trivsel_monthly.md), not this docstring
dag = build_monthly_dag(load_config(), warehouse_conn_id=WAREHOUSE_CONN_ID)
