"""The monthly DAG as Airflow sees it: parsed from dags/ through a DagBag, then asserted on the DAG object.

Parsing must not run dbt (the tasks and Assets are read from the prebuilt manifest), so the DagBag import runs
with every way of starting dbt made to fail. The task graph, trigger rules, retries, map indexes and Assets
are read from the parsed DAG, never from the DAG file's source.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "trivsel_monthly.py"
CORE_TASKS = {"plan", "lanes", "ingest", "validate", "loads_done", "dbt_seeds", "dbt_staging",
              "quality_gate", "dbt_models", "findings", "verdict", "significance_tests", "certify", "publish",
              "run_outcome"}
#: one ingest per lane (a few batches of municipality × period jobs, trivsel.lanes); one verdict per
#: municipality with a finding: no other mapped task, and none per municipality but the verdict
MAPPED = {"ingest", "verdict", "significance_tests"}


class DbtStarted(AssertionError):
    """Raised by the patched process and dbt-runner entry points: parsing tried to run dbt."""


def _refuse(*args, **kwargs):
    raise DbtStarted(f"parsing the DAG started a process or dbt: {args[:1]!r}")


def _parse(monkeypatch):
    """A DagBag of the DAG file, as the dag-processor imports it: under Airflow's default import timeout
    (30 s; an import that outlasts it is an import error), with dbt and child processes refused."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from dbt.cli.main import dbtRunner

    with monkeypatch.context() as mp:
        mp.delenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", raising=False)
        assert conf.getfloat("core", "dagbag_import_timeout") == 30.0
        mp.setattr(subprocess, "Popen", _refuse)
        mp.setattr(os, "system", _refuse)
        mp.setattr(os, "posix_spawn", _refuse)
        mp.setattr(dbtRunner, "invoke", _refuse)
        return DagBag(dag_folder=str(DAG_FILE), safe_mode=False)


@pytest.fixture(scope="module")
def manifest() -> dict:
    from trivsel import dbt_manifest

    return json.loads(dbt_manifest.ensure().read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dag(manifest, monkeypatch_module):
    bag = _parse(monkeypatch_module)
    assert bag.import_errors == {}
    return bag.dags["trivsel_monthly"]


def _model_ids(manifest: dict) -> set[str]:
    return {uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}


def _dbt_operators(dag) -> dict[str, object]:
    from cosmos.operators.base import AbstractDbtBase

    return {t.task_id: t for t in dag.tasks if isinstance(t, AbstractDbtBase)}


def test_parsing_does_not_run_dbt_and_renders_a_few_dbt_builds(dag):
    """dbt runs in a fixed handful of invocations, however many models the project has (issue 15): no task
    per model."""
    assert CORE_TASKS <= set(dag.task_ids)
    assert set(_dbt_operators(dag)) == {"dbt_seeds", "dbt_staging", "dbt_models"}
    assert not [t for t in dag.task_ids if "." in t], "no task group (Cosmos renders one task per model)"


def test_seeds_run_only_when_changed_and_the_run_id_is_not_a_dbt_var(dag, manifest):
    """dbt_seeds decides before dbt whether any seed changed (trivsel.seed_state), over exactly the manifest's
    seeds; every dbt task gets the run id in its environment, never as a dbt var (a var that changes every run
    throws away dbt's partial parse)."""
    from trivsel.dbt_seed_operator import DbtSeedIfChangedOperator

    seeds = dag.get_task("dbt_seeds")
    assert isinstance(seeds, DbtSeedIfChangedOperator)
    expected = {(n["schema"], n["alias"] or n["name"]) for n in manifest["nodes"].values()
                if n["resource_type"] == "seed"}
    assert expected and set(seeds.seed_relations) == expected
    for task_id, op in _dbt_operators(dag).items():
        assert "run_id" not in (op.vars or {}), task_id
        assert op.env.get("TRIVSEL_RUN_ID") == "{{ run_id }}", task_id


def _dbt_ls(args: list[str], tmp_path) -> list[dict]:
    from trivsel import settings

    env = dict(os.environ, TRIVSEL_DBT_USER="parse-only", TRIVSEL_DBT_PASSWORD="parse-only")
    out = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "ls", "--project-dir", str(settings.dbt_dir()),
         "--profiles-dir", str(settings.dbt_dir()), "--target-path", str(tmp_path), "--quiet",
         "--resource-type", "model", "--resource-type", "test", "--output", "json",
         "--output-keys", "unique_id", "resource_type", "tags", "original_file_path", *args],
        env=env, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_dbt_models_declares_an_asset_for_exactly_what_its_build_selects(dag, manifest, tmp_path):
    """`dbt ls` with the dbt_models task's own selection: its outlets are exactly the models that build
    builds; with dbt_staging's views and certify's models they are every model of the project, each built by
    one task; no per-municipality test (quality_gate's) and no certified model's test runs in it."""
    task = dag.get_task("dbt_models")
    args = ["--exclude", *task.exclude, "--indirect-selection", task.indirect_selection]
    if task.select:
        args += ["--select", *task.select]
    listed = _dbt_ls(args, tmp_path)
    built = {n["unique_id"] for n in listed if n["resource_type"] == "model"}
    assert built and {a.extra["dbt_unique_id"] for a in task.outlets} == built
    views = {a.extra["dbt_unique_id"] for a in dag.get_task("dbt_staging").outlets}
    certified = {uid for uid in _model_ids(manifest)
                 if manifest["nodes"][uid]["original_file_path"].startswith("models/certified/")}
    assert not (built & views) and not (built & certified) and not (views & certified)
    assert built | views | certified == _model_ids(manifest)
    tests = [n for n in listed if n["resource_type"] == "test"]
    assert tests, "the models' data tests run in the same build"
    assert not [n for n in tests if "per_municipality" in n["tags"]]
    assert not [n for n in tests if n["original_file_path"].startswith("models/certified/")]


def test_a_stale_manifest_is_an_import_error_not_a_dbt_run(monkeypatch, tmp_path):
    from trivsel import dbt_manifest, settings

    copy = tmp_path / "dbt"
    shutil.copytree(settings.dbt_dir(), copy, ignore=shutil.ignore_patterns("target", "logs"))
    target = dbt_manifest.manifest_dir(copy)
    shutil.copytree(dbt_manifest.manifest_dir(), target)
    assert dbt_manifest.is_current(copy)
    model = next((copy / "models" / "marts").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- edited\n")
    assert not dbt_manifest.is_current(copy)
    monkeypatch.setattr(settings, "dbt_dir", lambda: copy)
    bag = _parse(monkeypatch)
    assert "trivsel_monthly" not in bag.dags
    (error,) = bag.import_errors.values()
    assert "older than the dbt project" in error and "make manifest" in error


def test_gate_ingest_and_quality_wiring(dag):
    t = dag.get_task
    # the pull runs inside ingest (a failed pull is tolerated there: trivsel.pipeline.pull); ingest is mapped
    # over the lanes task's list
    assert t("ingest").upstream_task_ids == {"lanes"}
    assert t("ingest").op_kwargs_expand_input.value["lane"].operator.task_id == "lanes"
    # one validation of every raw table after all ingests, even when a lane failed
    assert t("validate").upstream_task_ids == {"plan", "ingest"}
    assert t("validate").trigger_rule == "all_done"
    # retries for a warehouse connection error only (pipeline.loads_done fails at once on anything else)
    # (the DAG's default retries, not retries=0: TRIVSEL_TASK_RETRIES may set them to 0 in a test session)
    assert t("loads_done").trigger_rule == "all_done" and t("loads_done").retries == dag.default_args["retries"]
    assert t("loads_done").upstream_task_ids == {"plan", "validate"}
    assert t("dbt_seeds").upstream_task_ids == {"loads_done"}
    assert t("dbt_staging").upstream_task_ids == {"dbt_seeds"}
    assert t("quality_gate").upstream_task_ids == {"dbt_staging"}
    # findings, after the gate, picks the municipalities with a finding (validation's quarantines, the gate's
    # holds, failed pulls, the lanes' ingest findings), also when validate or the gate failed (all_done: then every municipality)
    assert t("findings").upstream_task_ids == {"plan", "validate", "quality_gate"}
    assert t("findings").trigger_rule == "all_done"
    # one verdict per municipality of that list: it fails its own municipality only; only the final
    # run_outcome waits on it
    assert t("verdict").upstream_task_ids == {"validate", "quality_gate", "findings"}
    assert t("verdict").op_kwargs_expand_input.value["code"].operator.task_id == "findings"
    assert t("verdict").downstream_task_ids == {"run_outcome"}
    assert (t("verdict").trigger_rule, t("verdict").retries) == ("all_done", 0)
    mapped = {x.task_id for x in dag.tasks if hasattr(x, "expand_input")}
    assert mapped == MAPPED, mapped
    # the models build once, after the gate, with dbt's threads; statistics wait for all of it
    models = t("dbt_models")
    assert models.upstream_task_ids == {"quality_gate"}
    assert t("significance_tests").upstream_task_ids == {"dbt_models"}
    assert models.retries == 1
    flags = models.dbt_cmd_flags
    assert int(flags[flags.index("--threads") + 1]) >= 1
    # certify reads findings' list to name the verdicts by their map index, and the lanes' to name a failed
    # lane (trivsel.upstream)
    assert t("certify").upstream_task_ids == {"plan", "significance_tests", "findings", "lanes"}
    # all_done: certify measures the upstream itself and records a refusal (trivsel.upstream)
    assert (t("certify").trigger_rule, t("certify").retries) == ("all_done", 0)
    assert t("publish").upstream_task_ids == {"plan", "certify"}
    # the one leaf: the run's final state says whether a municipality was quarantined or held
    assert t("run_outcome").upstream_task_ids == {"plan", "publish", "verdict"}
    assert (t("run_outcome").trigger_rule, t("run_outcome").retries) == ("all_done", 0)
    assert [x.task_id for x in dag.tasks if not x.downstream_task_ids] == ["run_outcome"]


def test_tasks_retry_with_backoff_and_a_failure_is_logged(monkeypatch, caplog):
    from trivsel import dag_factory

    monkeypatch.setenv("TRIVSEL_TASK_RETRIES", "3")
    monkeypatch.setenv("TRIVSEL_RETRY_DELAY_SECONDS", "7")
    args = dag_factory.default_args()
    assert (args["retries"], args["retry_delay"].total_seconds(), args["retry_exponential_backoff"]) == (3, 7, True)
    assert args["max_retry_delay"].total_seconds() == 600

    class TI:
        task_id, map_index = "ingest", 2

    with caplog.at_level(logging.ERROR, logger=dag_factory.__name__):
        args["on_failure_callback"]({"ti": TI(), "run_id": "r1", "exception": ValueError("boom")})
    assert any(r.levelno == logging.ERROR and "ingest" in r.getMessage() and "boom" in r.getMessage()
               and "r1" in r.getMessage() for r in caplog.records)


def _render_map_index(dag, task_id: str, **kwargs) -> str:
    """What the task runner does after a mapped task ran: render map_index_template with the task whose
    op_kwargs are the mapped values (airflow.sdk.execution_time.task_runner._render_map_index)."""
    mapped = dag.get_task(task_id)
    task = mapped.unmap({"op_kwargs": kwargs})
    return dag.get_template_env().from_string(mapped.map_index_template).render({"task": task})


def test_map_indexes_name_lanes_municipalities_periods_and_domain(dag, monkeypatch, tmp_path):
    from trivsel import dag_factory, lanes
    from trivsel.config import load_config

    config = load_config()
    names = {m.code: m.name for m in config.municipalities}
    monkeypatch.setenv("TRIVSEL_INBOX", str(tmp_path))  # empty inboxes: no weights
    planned = {"periods": ["2013-01"], "codes": ["169", "461"]}
    split = dag_factory.lanes.function(planned, names)  # what the lanes task returns
    assert [_render_map_index(dag, "ingest", lane=lane) for lane in split] == [
        f"169 {names['169']} 2013-01", f"461 {names['461']} 2013-01"]
    # a lane of several municipalities names them all
    (both,) = lanes.split(["169", "461"], ["2013-01", "2013-02"], names, 1)
    assert _render_map_index(dag, "ingest", lane=both) == "lane 1/1: 169 461 2013-01..2013-02 (2 periods)"
    # one municipality (params.municipality): one lane of one job
    (one,) = dag_factory.lanes.function({"periods": ["2013-01"], "codes": ["607"]}, names)
    assert [(j["code"], j["period"]) for j in one["jobs"]] == [("607", "2013-01")]
    domains = dag.get_task("significance_tests").op_kwargs_expand_input.value["domain"]
    assert [_render_map_index(dag, "significance_tests", domain=d) for d in domains] == list(domains)
    assert _render_map_index(dag, "verdict", code="607", failed={}, held={}) == "607"


def test_assets_are_stable_and_described(dag, manifest):
    assets = [(t.task_id, a) for t in dag.tasks for a in t.outlets]
    assert assets
    for _task_id, asset in assets:
        parts = urlsplit(asset.uri)
        assert (parts.scheme, parts.hostname, parts.port) == ("trivsel", "warehouse", None), asset.uri
        assert "127.0.0.1" not in asset.uri and "localhost" not in asset.uri
        assert asset.name.startswith("trivsel.") and asset.extra.get("description", "").strip(), asset
    names = [a.name for _, a in assets]
    assert len(names) == len(set(names))
    models = dag.get_task("dbt_models").outlets
    assert models
    for asset in models:
        node = manifest["nodes"][asset.extra["dbt_unique_id"]]
        assert node["resource_type"] == "model"
        assert asset.name == f"trivsel.{node['schema']}.{node['name']}"
        assert asset.extra["description"] == " ".join(node["description"].split())
    assert {a.name for a in dag.get_task("publish").outlets} == {"trivsel.reporting"}
    nodes = manifest["nodes"].values()
    seeds = {f"trivsel.{n['schema']}.{n['alias']}" for n in nodes if n["resource_type"] == "seed"}
    views = {f"trivsel.{n['schema']}.{n['alias']}" for n in nodes if n["resource_type"] == "model"
             and n["original_file_path"].startswith("models/staging/")}
    assert seeds and {a.name for a in dag.get_task("dbt_seeds").outlets} == seeds
    assert views and {a.name for a in dag.get_task("dbt_staging").outlets} == views
    # no other task claims to produce an Asset, and no dbt operator emits its own (Cosmos' host:port URIs)
    assert {t for t, _ in assets} == {"publish", "dbt_seeds", "dbt_staging", "dbt_models"}
    assert not [t.task_id for t in dag.tasks if getattr(t, "emit_datasets", False)]


def test_a_quarantine_fails_the_municipalitys_task_also_on_retry(monkeypatch):
    """A retry finds the quarantined file 'unchanged': the task must still fail, not turn green."""
    from trivsel import loading, pipeline

    outcome = loading.Outcome("607", "hr_absence", "2014-01", "x.xlsx", "unchanged", "hr_unit_workbook", 7,
                              reason="already quarantined as delivery 7")
    monkeypatch.setattr(loading, "ingest_municipality", lambda *a, **k: [outcome])
    with pytest.raises(pipeline.DeliveriesQuarantined, match="x.xlsx"):
        pipeline.ingest("607", "2014-01", "retry")
    ok = loading.Outcome("607", "hr_absence", "2014-01", "y.xlsx", "unchanged", "hr_unit_workbook", 8,
                         reason="already loaded as delivery 8")
    monkeypatch.setattr(loading, "ingest_municipality", lambda *a, **k: [ok])
    assert pipeline.ingest("607", "2014-01", "retry")[0]["status"] == "unchanged"


def test_loads_done_retries_a_lost_warehouse_connection_only(monkeypatch):
    """psycopg.OperationalError (the warehouse restarted, a connection refused): raised as it is, so the task's
    retries apply; anything else (a lease timeout, a bug) fails at once, without retry (AirflowFailException)."""
    import psycopg
    from airflow.sdk.exceptions import AirflowFailException

    from trivsel import build_lease, pipeline

    def lost(*a, **k):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(pipeline, "_loads_done", lost)
    with pytest.raises(psycopg.OperationalError):
        pipeline.loads_done("2014-01", "run-r")

    def timeout(*a, **k):
        raise build_lease.LeaseTimeout("run other's model build still holds the build lease")

    monkeypatch.setattr(pipeline, "_loads_done", timeout)
    with pytest.raises(AirflowFailException, match="LeaseTimeout.*not retried") as exc:
        pipeline.loads_done("2014-01", "run-r")
    assert isinstance(exc.value, pipeline.GateFailed)


def _airflow_db_url() -> str:
    from trivsel import airflow_env

    return airflow_env.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://", "postgresql://")


def _demo_run_id(conn, demo_run: dict[str, int]) -> str:
    """The demo's run is the session's first run whose ingest map holds the first sample period: tests that ran
    before this one (the scheduler's, Celery's) may have triggered later, one-period runs."""
    (run_id,) = conn.execute(
        "select r.run_id from dag_run r join task_instance t on t.dag_id = r.dag_id and t.run_id = r.run_id"
        " where r.dag_id = 'trivsel_monthly' and t.task_id = 'ingest' and t.rendered_map_index like %s"
        " order by r.id limit 1", (f"% {min(demo_run)}%",)).fetchone()
    return run_id


@pytest.mark.e2e
def test_the_demo_built_every_model_in_one_dbt_build_and_recorded_each_result(demo_run, demo_warehouse, dag):
    """The demo's dbt_models task ran once (no retry) and its callback recorded one result per model it
    declares, all built, and the models' data tests, all passed: what certify reads (trivsel.upstream)."""
    import psycopg

    from trivsel import upstream

    with psycopg.connect(_airflow_db_url()) as conn:
        run_id = _demo_run_id(conn, demo_run)
        ((state, tries),) = conn.execute(
            "select state, try_number from task_instance where dag_id = 'trivsel_monthly' and run_id = %s"
            " and task_id = 'dbt_models'", (run_id,)).fetchall()
    assert (state, tries) == ("success", 1)
    rows = demo_warehouse.execute("select unique_id, resource_type, status from audit.dbt_result"
                                  " where run_id = %s and task_id = 'dbt_models'", (run_id,)).fetchall()
    models = {r["unique_id"]: r["status"] for r in rows if r["resource_type"] == "model"}
    assert set(models) == {a.extra["dbt_unique_id"] for a in dag.get_task("dbt_models").outlets}
    assert set(models.values()) == {"success"}
    tests = [r["status"] for r in rows if r["resource_type"] == "test"]
    assert tests and set(tests) <= upstream.DBT_OK - {"skipped"}


@pytest.mark.e2e
def test_a_real_run_shows_named_map_indexes_and_stable_assets(demo_run, demo_warehouse):
    """After the demo's run (`airflow dags test` of the parsed DAG): the map indexes Airflow stored name the
    lanes' municipalities and periods, the domain and the code, and no Asset it registered carries a host or port. A
    verdict instance exists only for a municipality with a finding (a quarantine by validation, a hold by the
    quality gate, a failed pull, an ingest finding), and each one failed; with none, the verdict task was skipped unmapped."""
    import psycopg

    from trivsel import lanes
    from trivsel.config import load_config

    config = load_config()
    names = {m.code: m.name for m in config.municipalities}
    with psycopg.connect(_airflow_db_url()) as conn:
        run_id = _demo_run_id(conn, demo_run)
        rows = conn.execute("select task_id, map_index, rendered_map_index, state from task_instance where"
                            " dag_id = 'trivsel_monthly' and run_id = %s", (run_id,)).fetchall()
        uris = [u for (u,) in conn.execute("select uri from asset").fetchall()]
    by_task: dict[str, set[str]] = {}
    verdicts: dict[str, str] = {}
    for task_id, i, rendered, state in rows:
        if i >= 0:
            by_task.setdefault(task_id, set()).add(rendered)
        if task_id == "verdict":
            verdicts[rendered if i >= 0 else "unmapped"] = state
    periods = sorted(demo_run)
    count = lanes.lane_count(config.settings.get("ingest_lanes"))
    if count >= len(names):  # a lane per municipality, whatever the weights: each named with its periods
        assert by_task["ingest"] == {lanes.label([c], periods, names, 1, 1) for c in names}, by_task["ingest"]
    else:
        assert len(by_task["ingest"]) == count and all(x.startswith("lane ") for x in by_task["ingest"])
    from trivsel import pipeline

    assert by_task["significance_tests"] == set(pipeline.STAT_DOMAINS)
    # the municipalities with a finding, from the warehouse: a delivery of this run quarantined by validation's
    # checks (GX, consistency), held by the quality gate in this run, a pull of this run that failed, or an
    # ingest job that could not parse or load (its lane recorded it)
    found = {r["municipality_code"] for r in demo_warehouse.execute(
        """select d.municipality_code from audit.delivery d
            where d.run_id = %(run)s and d.status = 'quarantined' and exists (
                  select 1 from quarantine.delivery_issue i where i.delivery_id = d.delivery_id
                     and (i.check_name like 'gx%%' or i.check_name = 'consistency'))
           union
           select municipality_code from audit.delivery
            where status = 'waiting' and reason like 'held by the quality gate%%' and reason like %(held)s
           union
           select municipality_code from audit.pull_failure where run_id = %(run)s
           union
           select municipality_code from audit.ingest_failure where run_id = %(run)s""",
        {"run": run_id, "held": f"%{run_id}%"})}
    if found:
        assert verdicts == dict.fromkeys(found, "failed"), (verdicts, found)
    else:
        assert verdicts == {"unmapped": "skipped"}, verdicts
    assert set(by_task) == {"ingest", "significance_tests"} | ({"verdict"} if found else set()), \
        "no other task is mapped"
    assert uris and all(urlsplit(u).port is None and "127.0.0.1" not in u for u in uris)


def test_every_task_of_the_parsed_dag_shows_its_display_name(dag):
    """trivsel.dag_labels sets Airflow's private `_task_display_name` (a mapped task: its partial kwargs):
    this fails when Airflow renames it, since the parsed DAG's tasks would show their bare ids again."""
    from trivsel.dag_labels import TASKS

    shown = {t.task_id: (t.partial_kwargs.get("task_display_name") if hasattr(t, "partial_kwargs")
                         else t.task_display_name) for t in dag.tasks}
    assert set(shown) == set(TASKS), set(shown) ^ set(TASKS)
    assert shown == TASKS
