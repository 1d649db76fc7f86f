"""The DAG's dbt_seeds task: `dbt seed --full-refresh`, run only when a seed changed (trivsel.seed_state).

Why not Cosmos' own `SeedRenderingBehavior.WHEN_SEED_CHANGES`: it applies to a rendered DbtDag/TaskGroup (one
task per seed), keeps its checksums in Airflow's cache rather than in the warehouse, and so cannot see a
warehouse that was emptied, restored or re-seeded by hand. The stamp here lives on the seed tables themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from cosmos.operators.local import DbtSeedLocalOperator

from trivsel import seed_state, settings, warehouse

log = logging.getLogger(__name__)


class DbtSeedIfChangedOperator(DbtSeedLocalOperator):
    """dbt seed of every seed, skipped (the task succeeds, so its downstream runs) when every seed table exists
    and carries the stamp of the current seed files and of its own rows; stamped after each build."""

    def __init__(self, *args: Any, seed_relations: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seed_relations = [tuple(r) for r in seed_relations]

    def execute(self, context: Any, **kwargs: Any) -> None:
        fp = seed_state.fingerprint(settings.dbt_dir())
        with warehouse.connect(warehouse.TRANSFORMER, autocommit=True) as conn:
            if seed_state.unchanged(conn, self.seed_relations, fp):
                log.info("the %d seeds are unchanged (fingerprint %s, rows as stamped): dbt seed not run",
                         len(self.seed_relations), fp[:12])
                return
        log.info("seeds changed or not stamped yet (fingerprint %s): dbt seed --full-refresh", fp[:12])
        super().execute(context, **kwargs)
        with warehouse.connect(warehouse.TRANSFORMER, autocommit=True) as conn:
            seed_state.mark(conn, self.seed_relations, fp)
