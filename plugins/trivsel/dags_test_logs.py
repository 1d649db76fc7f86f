"""Make a run of `airflow dags test` (what `trivsel run` and `make demo` use) readable in the Airflow UI.

`dags test` runs every task in its own process and prints all task output to one stream (our run log in
$TRIVSEL_HOME/logs). It writes no per-task log file, so the UI of a later `make up` said "Log file not found
on worker" for every demo task; and it records the run's start date as its logical date, so a demo run of
period 2010-12 read as lasting years. Both are Airflow's `dags test` behaviour, not the scheduler's.

After the run, `publish()` cuts the run log at Airflow's own task markers ("[DAG TEST] starting task_id=..
map_index=..", "[DAG TEST] end task ..") into one file per task attempt, at the path the api-server reads
(`[logging] base_log_folder` / `log_filename_template`, the same env() for both), and sets the run's
start date to when its first task started.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import jinja2
import psycopg

#: Airflow 3's default `[logging] log_filename_template` (used unless the environment overrides it).
DEFAULT_TEMPLATE = ("dag_id={{ ti.dag_id }}/run_id={{ ti.run_id }}/task_id={{ ti.task_id }}/"
                    "{% if ti.map_index >= 0 %}map_index={{ ti.map_index }}/{% endif %}"
                    "attempt={{ try_number|default(ti.try_number) }}.log")
START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")
END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")

Key = tuple[str, int]


def split(text: str) -> dict[Key, list[list[str]]]:
    """{(task_id, map_index): [lines of attempt 1, lines of attempt 2, ...]} in the order they ran.

    Lines outside any task (parsing the DAG, the run's summary) belong to no task and are left out.
    """
    attempts: dict[Key, list[list[str]]] = defaultdict(list)
    current: list[str] | None = None
    for line in text.splitlines():
        if m := START.search(line):
            current = []
            attempts[(m["task"], int(m["map"]))].append(current)
        if current is not None:
            current.append(line)
        if END.search(line):
            current = None
    return dict(attempts)


def _render(template: str, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    ti = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index, "try_number": try_number}
    return jinja2.Template(template).render(ti=ti, try_number=try_number)


def publish(text: str, airflow_db_url: str, env: dict[str, str], dag_id: str, run_id: str) -> list[Path]:
    """Write the task attempts of `run_id` found in `text` where the api-server reads them; fix its start date.

    The try numbers come from the metadata database: a `dags test` of a logical date that ran before reuses
    its run and counts the attempts on, so the attempts in this log are the last ones of each task.
    """
    base = Path(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    template = env.get("AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE", DEFAULT_TEMPLATE)
    attempts = split(text)
    with psycopg.connect(airflow_db_url) as conn:
        tries = {(t, m): n for t, m, n in conn.execute(
            "select task_id, map_index, try_number from task_instance where dag_id = %s and run_id = %s",
            (dag_id, run_id))}
        conn.execute(
            """update dag_run set start_date = s.first from (
                   select min(start_date) as first from task_instance where dag_id = %(dag)s and run_id = %(run)s
               ) s where dag_id = %(dag)s and run_id = %(run)s and s.first is not null""",
            {"dag": dag_id, "run": run_id})
    written = []
    for key, runs in attempts.items():
        last = tries.get(key)
        if not last:
            continue
        for i, lines in enumerate(runs):
            try_number = last - len(runs) + 1 + i
            if try_number < 1:
                continue
            path = base / _render(template, dag_id, run_id, key[0], key[1], try_number)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            written.append(path)
    return written
