"""`make up`'s scheduling settings come from one place, and its forking components preload only third-party
modules (trivsel's own are imported by each task process, so an edited plugin takes effect at once)."""

from __future__ import annotations

import subprocess
import sys

from trivsel import airflow_component, local_airflow


def test_scheduling_settings_reach_the_components_and_the_callers_value_wins(monkeypatch):
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "3")
    e = local_airflow.env()
    wanted = local_airflow.scheduling_settings()
    assert e["AIRFLOW__CORE__PARALLELISM"] == wanted["AIRFLOW__CORE__PARALLELISM"] == str(local_airflow.cores())
    assert local_airflow.cores() >= 2
    assert e["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] == "3"
    for key, value in wanted.items():
        if key != "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME":
            assert e[key] == value, key


def test_only_the_forking_components_start_through_the_preloader():
    for name in local_airflow.COMPONENTS:
        cmd = local_airflow.command(name)
        through = cmd[1:3] == ["-m", "trivsel.airflow_component"]
        assert through == (name in airflow_component.FORKING), cmd
        assert name in cmd


def test_the_preload_holds_no_trivsel_module_and_imports_what_it_names():
    assert not [m for m in airflow_component.PRELOAD if m.split(".")[0] == "trivsel"]
    code = ("import sys; from trivsel import airflow_component as a; problems = a.preload();"
            "print(problems, [m for m in a.PRELOAD if m not in sys.modules],"
            " sorted(m for m in sys.modules if m.startswith('trivsel.') and m != 'trivsel.airflow_component'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[] [] []"
