"""The monthly trivsel DAG, built from config/municipalities.yml and the dbt manifest (dags/ only calls this).

Why a factory: the DAG file stays a few lines of wiring that Airflow imports, while the tasks, the Cosmos
group and the Assets are ordinary Python that tests build and inspect as a DAG object, without a scheduler.

Parsing never runs dbt: the tasks and their Assets are read from a manifest built ahead of time
(trivsel.dbt_manifest), so a parse takes about a second, well inside Airflow's default 30 s import timeout.
dbt runs in four invocations: dbt_seeds, dbt_staging, quality_gate (per-municipality tests) and dbt_models
(every intermediate, mart and reporting model and its tests in one `dbt build` with dbt threads; see
models_build for why not one Cosmos task per model). Cosmos' own Asset emission is switched off: it named
every model after the connection (`postgres://127.0.0.1:55432/...`), which differs per machine. Instead
dbt_seeds, dbt_staging and dbt_models declare one Asset per seed, view or model they build, with a stable
name (`trivsel.<schema>.<model>`), a URI without host or port (`trivsel://warehouse/<schema>/<model>`) and
the model's description from its YAML.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, Param, get_current_context, task
from cosmos import ProfileConfig
from cosmos import settings as cosmos_settings
from cosmos.constants import InvocationMode
from cosmos.operators.local import DbtBuildLocalOperator
from cosmos.profiles import PostgresUserPasswordProfileMapping

from trivsel import dag_labels, dbt_manifest, dbt_runtime, pipeline, quality, seed_state, settings, upstream
from trivsel import lanes as ingest_lanes
from trivsel.config import Config
from trivsel.dbt_seed_operator import DbtSeedIfChangedOperator

log = logging.getLogger(__name__)

DAG_ID = "trivsel_monthly"
REPORTING = Asset(name="trivsel.reporting", uri="trivsel://warehouse/reporting",
                  extra={"description": "The reporting schema and certified publication after a monthly run: "
                                        "what the report and the exports read."})
# --cache-selected-only: dbt lists the relations of the schemas the task builds, not of every schema of the
# project (plus PostgreSQL's view-dependency query) before each task; the SQL it runs is the same.
DBT_GLOBAL_FLAGS = ["--cache-selected-only"]
# every dbt task reads the run's pinned snapshot of deliveries (trivsel.snapshot) and records its results
# for certify (trivsel.upstream). The run id goes in the environment (macro trivsel_run_id), not as a dbt var:
# dbt hashes its CLI vars into the partial-parse state, so a var new every run re-parsed the whole project in
# the first dbt task of every run (25 s at scale 0.2 on the loaded 2-core machine).
RUN_ARGS = {"env": {quality.RUN_ID_ENV: "{{ run_id }}"}, "callback": upstream.record_dbt_results}
# the lane's label (trivsel.lanes.label): its municipalities and periods, within Airflow's 250 characters
INGEST_INDEX = "{{ task.op_kwargs['lane']['label'] }}"


def dbt_bin() -> str:
    return shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))


def model_asset(node: dict[str, Any]) -> Asset:
    """The Asset of one dbt model from its manifest node: stable on every machine, with its description."""
    schema, name = node["schema"], node["alias"] or node["name"]
    return Asset(name=f"trivsel.{schema}.{name}", uri=f"trivsel://warehouse/{schema}/{name}",
                 extra={"description": " ".join(node.get("description", "").split()),
                        "dbt_unique_id": node["unique_id"]})


def _on_failure(context) -> None:
    ti = context["ti"]
    log.error("trivsel: task %s (map index %s) of run %s failed: %s", ti.task_id, ti.map_index,
              context["run_id"], context.get("exception"))


def default_args() -> dict[str, Any]:
    """Retries with backoff for infrastructure errors; deterministic data errors fail without (pipeline)."""
    return {
        "owner": "trivsel",
        "retries": int(os.environ.get("TRIVSEL_TASK_RETRIES", "2")),
        "retry_delay": timedelta(seconds=int(os.environ.get("TRIVSEL_RETRY_DELAY_SECONDS", "20"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": _on_failure,
    }


def params() -> dict[str, Param]:
    return {
        "period": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$",
                        description="YYYY-MM to process; empty = the month before the run"),
        "through": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$",
                         description="backfill: also load every later period up to this YYYY-MM that has "
                                     "deliveries, then build the models once"),
        "municipality": Param(None, type=["null", "string"],
                              description="only this kommunekode; empty = all registered"),
    }


# ---- the tasks: one small function each ------------------------------------------------------------------

@task
def plan() -> dict:
    ctx = get_current_context()
    p = ctx["params"]
    # pipeline.plan first applies roles, grants and owners (the only superuser step, trivsel.roles)
    return pipeline.plan(p.get("period"), p.get("municipality"), ctx.get("logical_date"), ctx["run_id"],
                         through_param=p.get("through"))


@task
def lanes(p: dict, names: dict[str, str]) -> list[dict]:
    """The plan's (municipality, period) jobs in a few lanes (trivsel.lanes; settings.ingest_lanes), each one
    ingest task instance: Airflow's fixed cost is paid per lane, not per municipality (issue 15)."""
    from trivsel.config import load_config

    return ingest_lanes.plan_lanes(p, names, load_config().settings.get("ingest_lanes"))


def run_is_live(ti):
    """run_is_live(run_id) for the loader: Airflow's state of another run of this DAG (queued or running:
    True; any other state: False; a run this installation does not know: None, judged by age). Two runs of
    one period at once must not take each other's parsed deliveries for a crashed run's."""
    def live(run_id: str) -> bool | None:
        if not ti.get_dr_count(dag_id=ti.dag_id, run_ids=[run_id]):
            return None
        return bool(ti.get_dr_count(dag_id=ti.dag_id, run_ids=[run_id], states=["queued", "running"]))
    return live


@task(map_index_template=INGEST_INDEX)
def ingest(lane: dict) -> dict:
    """One lane's municipalities, one after another: pull from each one's remote locations (a failure is
    tolerated and recorded, pipeline.pull), then discover, archive, parse and COPY; a municipality whose files
    could not be parsed or whose load failed is recorded and the lane goes on (pipeline.ingest_lane);
    validation is the run's one `validate` task."""
    ctx = get_current_context()
    return pipeline.ingest_lane(lane, ctx["run_id"], ctx.get("logical_date"), run_is_live=run_is_live(ctx["ti"]))


# all_done: a lane that failed (a lost warehouse connection after its retries) does not stop the others' validation
@task(trigger_rule="all_done")
def validate(p: dict) -> dict[str, list[str]]:
    """Great Expectations once per raw table over all of the run's parsed deliveries; decide each one."""
    return pipeline.validate(p, get_current_context()["run_id"])


# retries: default_args' (pipeline.loads_done lets only a warehouse connection error retry)
@task(trigger_rule="all_done")
def loads_done(p: dict) -> str:
    """Let the models run on whatever loaded, even if one municipality's deliveries were quarantined;
    pin that set of deliveries for every model of this run (trivsel.snapshot)."""
    ctx = get_current_context()
    return pipeline.loads_done(p["period"], ctx["run_id"], run_is_live(ctx["ti"]))


@task(retries=1, map_index_template="{{ task.op_kwargs['domain'] }}")
def significance_tests(domain: str) -> int:
    return pipeline.run_statistics(domain, get_current_context()["run_id"])


# all_done: certify measures this run's upstream (task states, dbt results) and records a refusal
@task(retries=0, trigger_rule="all_done")
def certify(p: dict, judged: list[str] | None, lanes: list[dict] | None) -> dict:
    """Measure the upstream, build models/certified into certified_next, check it, swap it in. judged: the
    findings task's list, the codes of the verdicts' map indexes (None: findings did not succeed); lanes: the
    lanes task's list, what the ingest map indexes load."""
    return pipeline.certify(p, get_current_context(), judged, lanes)


@task(retries=0, trigger_rule="all_done")
def run_outcome(p: dict) -> str:
    """Last: fails the run when a municipality's deliveries were quarantined or held."""
    return pipeline.run_outcome(p, get_current_context())


@task(retries=0)
def quality_gate() -> dict:
    """Per-municipality data tests (tag per_municipality): what fails is held, the others build on."""
    from trivsel import quality

    return quality.gate(get_current_context()["run_id"])


# all_done: runs when validate or the gate failed too (its XCom is then None: every municipality is judged)
@task(trigger_rule="all_done")
def findings(p: dict, failed: dict | None, held: dict | None) -> list[str]:
    """The municipalities that have a finding (quarantined, held, a failed pull, an ingest finding): `verdict`
    is mapped over
    these only (trivsel.verdict.judged); none in a good month."""
    from trivsel import verdict as v

    return v.judged(p["codes"], failed, held, get_current_context()["run_id"])


# all_done: a municipality's own reasons are shown even when validate or the gate failed (its XCom is then None)
@task(retries=0, trigger_rule="all_done", map_index_template="{{ task.op_kwargs['code'] }}")
def verdict(code: str, failed: dict | None, held: dict | None) -> str:
    """Fails for a municipality whose deliveries validation quarantined or the quality gate held, whose pull
    failed, or whose files its ingest lane could not parse or load (trivsel.verdict); skipped when not judged. Mapped over `findings` only; a leaf: only run_outcome
    waits on it."""
    from trivsel import verdict as v

    return v.judge(code, failed, held, get_current_context()["run_id"])


@task(outlets=[REPORTING])
def publish(p: dict) -> dict:
    return pipeline.finish(p["periods"], get_current_context()["run_id"])


# ---- dbt ------------------------------------------------------------------------------------------------

#: The connection fields of dbt/profiles.yml beside those of the Airflow connection (host, port, user,
#: password, dbname). dbt hashes the connection's fields (connection_info(): schema, connect_timeout, retries,
#: ...) into its partial-parse state: with Cosmos' defaults (retries 1, no connect_timeout) the DAG's first
#: dbt task after a `trivsel dbt` parsed the whole project. tests/platform/test_dbt_parse_state.py compares
#: these with dbt/profiles.yml and parses both ways.
PROFILE_ARGS: dict[str, Any] = {"schema": "public", "connect_timeout": 10, "retries": 3}


def profile(conn_id: str) -> ProfileConfig:
    return ProfileConfig(profile_name=settings.DBT_PROFILE, target_name=settings.DBT_TARGET,
                         profile_mapping=PostgresUserPasswordProfileMapping(conn_id=conn_id,
                                                                            profile_args=dict(PROFILE_ARGS)))


def dbt_common(prof: ProfileConfig) -> dict[str, Any]:
    """Arguments of the plain dbt operators. dbt_seeds, dbt_staging and dbt_models share one
    partial-parse cache (same project, profile and vars), so each reads the parse state the one before wrote:
    without a cache_dir Cosmos gives them no partial parse, and each parsed the whole project (~3-4 s)."""
    cache_dir = cosmos_settings.cache_dir / f"{DAG_ID}__dbt" if cosmos_settings.enable_cache else None
    return {"project_dir": str(settings.dbt_dir()), "profile_config": prof, "install_deps": False,
            "invocation_mode": InvocationMode.DBT_RUNNER, "dbt_executable_path": dbt_bin(),
            "cache_dir": cache_dir, "dbt_cmd_global_flags": DBT_GLOBAL_FLAGS, **RUN_ARGS,
            "emit_datasets": False}  # their Assets are declared (seeds_and_staging), without host or port


def seeds_and_staging(prof: ProfileConfig, manifest: dict[str, Any]) -> tuple[DbtSeedIfChangedOperator,
                                                                              DbtBuildLocalOperator]:
    """Seeds (code maps) and staging views change only with the code: one task each builds and tests all,
    with one Asset per seed or view. The seeds are rebuilt only when a seed table's stamp says they changed
    (trivsel.seed_state): otherwise dbt_seeds succeeds without running dbt. tag:per_municipality tests run in
    quality_gate, where a failure holds one municipality's deliveries."""
    common = dbt_common(prof)
    nodes = manifest["nodes"].values()
    seeds = DbtSeedIfChangedOperator(task_id="dbt_seeds", full_refresh=True, **common,
                                     seed_relations=seed_state.seed_relations(manifest),
                                     outlets=[model_asset(n) for n in nodes if n["resource_type"] == "seed"])
    staging = DbtBuildLocalOperator(task_id="dbt_staging", select="path:models/staging",
                                    exclude="tag:per_municipality", **common,
                                    outlets=[model_asset(n) for n in nodes if n["resource_type"] == "model"
                                             and n["original_file_path"].startswith("models/staging/")])
    return seeds, staging


def dbt_threads() -> int:
    """dbt's threads for the model build: one per core (capped at the profile's 4). The models are small,
    so a run is mostly dbt's fixed cost and waiting on PostgreSQL; threads overlap the waits."""
    return max(1, min(4, os.cpu_count() or 1))


def models_build(prof: ProfileConfig, manifest: dict[str, Any]) -> DbtBuildLocalOperator:
    """Every intermediate, mart and reporting model with its tests, in ONE `dbt build` (dbt's own threads
    order and parallelise them), with one stable Asset per model it builds.

    Why one task, not one Cosmos task per model (issue 15): each dbt invocation pays ~1.8 s of fixed cost
    (start-up, parse-state load, catalog queries), and `airflow dags test` runs tasks serially, so ~30 model
    tasks cost ~55-60 s of mostly overhead. Cosmos' watcher mode (one producer `dbt build`, one sensor per
    model) was not chosen: it is experimental, its sensors need trigger rules and priority weights that
    `dags test` ignores, and on a producer retry 1.14 drops the first attempt's model failures, which certify
    must see. The per-model results stay visible: this task's log and audit.dbt_result (one row per model
    and test, RUN_ARGS' callback) name every node. Indirect selection `buildable`: a test between a model and
    a staging view (already built) runs here; one touching a certified model runs in certify."""
    exclude = list(dbt_manifest.GROUP_EXCLUDE)
    built = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"
             and not any(dbt_manifest._matches(n, s) for s in exclude)]
    return DbtBuildLocalOperator(task_id="dbt_models", exclude=exclude, indirect_selection="buildable",
                                 dbt_cmd_flags=["--threads", str(dbt_threads())], retries=1,
                                 outlets=[model_asset(n) for n in built], **dbt_common(prof))


# ---- the DAG --------------------------------------------------------------------------------------------

def build_monthly_dag(config: Config, warehouse_conn_id: str = "trivsel_transformer", doc_md: str | None = None) -> DAG:
    """The monthly DAG: plan → lanes → ingest (pull, then load, each municipality of the lane in turn) per
    lane → validate (once, every table) → gate → seeds → staging → quality gate → dbt models → statistics per domain → certify → publish →
    run_outcome; after the quality gate, findings, then one verdict per municipality that has a finding (a
    leaf only run_outcome waits on; certify reads findings' list to name the verdicts).

    doc_md: the DAG's docs in the UI; default: the data team's page (trivsel.dag_labels.doc_md)."""
    dbt_runtime.cheap_behavior_flag_source()
    prof = profile(warehouse_conn_id)
    names = {m.code: m.name for m in config.municipalities}
    with DAG(dag_id=DAG_ID, description="Monthly load of municipal work-environment deliveries into the "
                                        "trivsel warehouse",
             schedule=config.settings.get("schedule", "0 6 5 * *"), start_date=datetime(2010, 1, 1),
             catchup=bool(config.settings.get("catchup", False)), max_active_runs=1,
             default_args=default_args(), params=params(), tags=["trivsel"],
             doc_md=doc_md or dag_labels.doc_md()) as dag:
        planned = plan()
        split = lanes(planned, names)
        loaded = ingest.expand(lane=split)
        checked = validate(planned)
        loaded >> checked
        gate = loads_done(planned)
        checked >> gate
        nodes = dbt_manifest.load()  # never dbt at parse: built by make/trivsel before (else an import error)
        seeds, staging = seeds_and_staging(prof, nodes)
        models = models_build(prof, nodes)
        stats = significance_tests.expand(domain=list(pipeline.STAT_DOMAINS))
        held = quality_gate()
        judged = findings(planned, checked, held)
        verdicts = verdict.partial(failed=checked, held=held).expand(code=judged)
        outcome = run_outcome(planned)
        gate >> seeds >> staging >> held >> models >> stats >> certify(planned, judged, split) >> publish(planned) >> outcome
        verdicts >> outcome
    dag_labels.label(dag, models, nodes)
    return dag
