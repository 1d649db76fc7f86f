"""`python -m trivsel.airflow_component scheduler|dag-processor ...`: an Airflow component that forks its task
(or parse) processes with the heavy third-party modules already imported.

Why: the LocalExecutor forks every task instance's process from the scheduler's workers, and the
dag-processor forks a process per parse. Each such process parses the DAG file, which imports Cosmos, dbt's
event system (for the behaviour-flag patch, trivsel.dbt_runtime), psycopg and every provider's Asset-URI
handler (Airflow looks one up for each `trivsel://` Asset, which imports boto3 through the Amazon
provider): measured ~1.5-2 s of a ~2 s parse on 2 cores, paid by each of ~400 task instances a month.
Imported once here, before Airflow starts its workers, every forked process inherits them (copy-on-write).
`dbt.cli.main` too: each dbt task (seeds, staging, quality gate, models, certify) otherwise imports it.

Only third-party modules, never trivsel's own: an edited plugin still takes effect at the next task, without
restarting the scheduler (what `[core] execute_tasks_new_python_interpreter` would otherwise be for).
Great Expectations and scipy/statsmodels are left out: one task a run each uses them, and they would add
~150 MB to the scheduler and to each worker.
"""

from __future__ import annotations

import importlib
import logging
import sys

#: imported before Airflow's CLI runs the component (the forking parents only)
PRELOAD: tuple[str, ...] = (
    "psycopg",
    "yaml",
    "cosmos",
    "cosmos.cache",
    "cosmos.operators.local",
    "cosmos.profiles",
    "dbt_common.behavior_flags",
    "dbt.cli.main",
)
#: the components that fork task or parse processes
FORKING = ("scheduler", "dag-processor")

log = logging.getLogger(__name__)


def preload() -> list[str]:
    """Import PRELOAD and Airflow's Asset-URI handlers; returns what could not be imported (logged, not
    fatal: a missing optional module only means the task process imports it itself)."""
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a preload must never stop the scheduler
            missing.append(f"{name}: {exc}")
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        ProvidersManagerTaskRuntime().asset_uri_handlers  # noqa: B018 - imports every provider's handler once
    except Exception as exc:  # noqa: BLE001
        missing.append(f"asset uri handlers: {exc}")
    return missing


def main(argv: list[str]) -> int:
    if argv and argv[0] in FORKING:
        for problem in preload():
            print(f"trivsel: preload skipped {problem}", file=sys.stderr)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *argv]
    return airflow_main() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
