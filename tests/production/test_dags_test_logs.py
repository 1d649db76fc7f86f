"""trivsel.dags_test_logs cuts a `dags test` run log into one log per task attempt, at Airflow's paths."""

from __future__ import annotations

from trivsel.dags_test_logs import DEFAULT_TEMPLATE, _render, split

LOG = """\
2026-12-01T14:36:26Z [info     ] DAG bundles loaded: dags-folder
2026-12-01T14:36:46Z [info     ] [DAG TEST] starting task_id=plan map_index=-1 [airflow.sdk.definitions.dag]
2026-12-01T14:36:59Z [info     ] run r1: periods 2014-03, municipalities 169, 461, 607 [trivsel.pipeline]
2026-12-01T14:37:00Z [info     ] [DAG TEST] end task task_id=plan map_index=-1 [airflow.sdk.definitions.dag]
2026-12-01T14:37:00Z [info     ] something between tasks
2026-12-01T14:37:03Z [info     ] [DAG TEST] starting task_id=ingest map_index=1 [airflow.sdk.definitions.dag]
2026-12-01T14:37:04Z [error    ] lost connection
2026-12-01T14:37:05Z [info     ] [DAG TEST] end task task_id=ingest map_index=1 [airflow.sdk.definitions.dag]
2026-12-01T14:37:30Z [info     ] [DAG TEST] starting task_id=ingest map_index=1 [airflow.sdk.definitions.dag]
2026-12-01T14:37:31Z [info     ] municipality 461, period 2014-03: loaded
2026-12-01T14:37:32Z [info     ] [DAG TEST] end task task_id=ingest map_index=1 [airflow.sdk.definitions.dag]
2026-12-01T14:37:40Z [info     ] Dag run finished
"""


def test_split_keeps_each_attempt_and_nothing_outside_tasks():
    parts = split(LOG)
    assert set(parts) == {("plan", -1), ("ingest", 1)}
    (plan,) = parts[("plan", -1)]
    assert "run r1: periods 2014-03" in plan[1] and plan[-1].endswith("[airflow.sdk.definitions.dag]")
    first, second = parts[("ingest", 1)]
    assert any("lost connection" in line for line in first)
    assert not any("lost connection" in line for line in second)
    assert any("municipality 461" in line for line in second)
    every_line = [line for attempts in parts.values() for lines in attempts for line in lines]
    assert not any("bundles loaded" in x or "between tasks" in x or "run finished" in x for x in every_line)


def test_paths_follow_airflows_default_template():
    assert _render(DEFAULT_TEMPLATE, "d", "manual__x", "plan", -1, 1) == \
        "dag_id=d/run_id=manual__x/task_id=plan/attempt=1.log"
    assert _render(DEFAULT_TEMPLATE, "d", "manual__x", "ingest", 2, 3) == \
        "dag_id=d/run_id=manual__x/task_id=ingest/map_index=2/attempt=3.log"


def test_default_template_is_airflows():
    """The fallback equals what this Airflow writes and reads when nothing overrides it."""
    from airflow.configuration import conf

    assert conf.get_default_value("logging", "log_filename_template") == DEFAULT_TEMPLATE
