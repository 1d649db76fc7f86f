"""The monthly trivsel DAG: one run per period, every registered municipality fanned out.

plan → pull (one mapped task per municipality: new files from its remote locations into its inbox; an
overdue municipality is logged, not failed) → ingest (one mapped task per municipality: discover, archive,
COPY to raw, GX) → gate →
dbt_staging → quality_gate (per-municipality data tests: a failing one holds that municipality's deliveries,
trivsel.quality; a mapped `quality` task per municipality fails only for the affected one) →
dbt (Cosmos, one task per model) → significance tests (mapped per domain) → certify (models/certified into
certified_next, checked, swapped into certified) → publish.

The logic lives in plugins/trivsel; this file only wires it together.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, dag, get_current_context, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos import settings as cosmos_settings
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.operators.local import DbtBuildLocalOperator, DbtSeedLocalOperator
from cosmos.profiles import PostgresUserPasswordProfileMapping

from trivsel import dbt_runtime, pipeline
from trivsel.config import load_config

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
CONFIG = load_config()
DBT_BIN = shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))

REPORTING = Asset("trivsel://warehouse/reporting")


dbt_runtime.cheap_behavior_flag_source()

PROJECT = ProjectConfig(ROOT / "dbt", partial_parse=True)
PROFILE = ProfileConfig(
    profile_name="trivsel",
    target_name="warehouse",
    profile_mapping=PostgresUserPasswordProfileMapping(conn_id="trivsel_transformer",
                                                       profile_args={"schema": "public"}),
)
EXECUTION = ExecutionConfig(execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER,
                            dbt_executable_path=DBT_BIN)
# dbt_seeds and dbt_staging are plain operators: without a cache_dir Cosmos gives them no partial parse,
# so each parsed the whole project (~3-4 s). They share the task group's cache (same project, profile and
# vars), so only the first dbt task of a run parses in full.
DBT_CACHE_DIR = cosmos_settings.cache_dir / "trivsel_monthly__dbt" if cosmos_settings.enable_cache else None
# --cache-selected-only: dbt lists the relations of the schemas the task builds, not of every schema of the
# project (plus PostgreSQL's view-dependency query) before each task; the SQL it runs is the same.
DBT_GLOBAL_FLAGS = ["--cache-selected-only"]
DBT_COMMON = {"project_dir": str(ROOT / "dbt"), "profile_config": PROFILE, "install_deps": False,
              "invocation_mode": InvocationMode.DBT_RUNNER, "dbt_executable_path": DBT_BIN,
              "cache_dir": DBT_CACHE_DIR, "dbt_cmd_global_flags": DBT_GLOBAL_FLAGS}


def _on_failure(context) -> None:
    ti = context["ti"]
    log.error("trivsel: task %s (map index %s) of run %s failed: %s", ti.task_id, ti.map_index,
              context["run_id"], context.get("exception"))


default_args = {
    "owner": "trivsel",
    "retries": int(os.environ.get("TRIVSEL_TASK_RETRIES", "2")),
    "retry_delay": timedelta(seconds=int(os.environ.get("TRIVSEL_RETRY_DELAY_SECONDS", "20"))),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": _on_failure,
}


@dag(
    dag_id="trivsel_monthly",
    description="Monthly load of municipal work-environment deliveries into the trivsel warehouse",
    schedule=CONFIG.settings.get("schedule", "0 6 5 * *"),
    start_date=datetime(2010, 1, 1),
    catchup=bool(CONFIG.settings.get("catchup", False)),
    max_active_runs=1,
    default_args=default_args,
    params={
        "period": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$",
                        description="YYYY-MM to process; empty = the month before the run"),
        "through": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$",
                         description="backfill: also load every later period up to this YYYY-MM that has "
                                     "deliveries, then build the models once"),
        "municipality": Param(None, type=["null", "string"],
                              description="only this kommunekode; empty = all registered"),
    },
    tags=["trivsel"],
    doc_md=__doc__,
)
def trivsel_monthly():
    @task
    def plan() -> dict:
        ctx = get_current_context()
        params = ctx["params"]
        planned = pipeline.plan(params.get("period"), params.get("municipality"), ctx.get("logical_date"),
                                ctx["run_id"], through_param=params.get("through"))
        from trivsel import roles

        roles.apply_or_warn()  # roles, grants and row-level security (trivsel.roles)
        return planned

    @task
    def municipalities(p: dict) -> list[dict]:
        return [{"code": c, "period": period} for period in p["periods"] for c in p["codes"]]

    @task(map_index_template="{{ task.op_kwargs['job']['code'] }} {{ task.op_kwargs['job']['period'] }}")
    def pull(job: dict) -> dict:
        ctx = get_current_context()
        return pipeline.pull(job["code"], job["period"], ctx["run_id"], ctx.get("logical_date"))

    # all_done: a failed pull (remote down) still loads whatever is in the municipality's inbox.
    @task(map_index_template="{{ task.op_kwargs['job']['code'] }} {{ task.op_kwargs['job']['period'] }}",
          trigger_rule="all_done")
    def ingest(job: dict) -> list[dict]:
        return pipeline.ingest(job["code"], job["period"], get_current_context()["run_id"])

    @task(trigger_rule="all_done", retries=0)
    def loads_done(p: dict) -> str:
        """Let the models run on whatever loaded, even if one municipality's deliveries were quarantined."""
        return p["period"]

    @task(retries=1)
    def significance_tests(domain: str) -> int:
        return pipeline.run_statistics(domain)

    @task(retries=0)
    def certify(p: dict) -> dict:
        """Build models/certified into certified_next, check it, swap it into certified (trivsel.certify).
        Runs only when every dbt task upstream (models and their tests) and the statistics succeeded."""
        from trivsel import certify as certification

        upstream = {"passed": True, "what": "every upstream Cosmos dbt task (model builds with their tests) "
                                            "and the statistics succeeded (trigger rule all_success)"}
        return certification.certify(p["period"], get_current_context()["run_id"], periods=p.get("periods"),
                                     dbt_tests=upstream)

    @task(retries=0)
    def quality_gate() -> dict:
        """Per-municipality data tests (tag per_municipality): what fails is held, the others build on."""
        from trivsel import quality

        return quality.gate(get_current_context()["run_id"])

    @task
    def codes(p: dict) -> list[str]:
        return p["codes"]

    @task(retries=0, map_index_template="{{ task.op_kwargs['code'] }}")
    def quality(code: str, held: dict) -> str:
        """Fails for a municipality whose deliveries the quality gate held; a leaf: nobody else waits on it."""
        from trivsel import quality as q

        return q.municipality_check(code, held)

    @task(outlets=[REPORTING])
    def publish(p: dict) -> dict:
        return pipeline.finish(p["periods"], get_current_context()["run_id"])

    planned = plan()
    jobs = municipalities(planned)
    pulled = pull.expand(job=jobs)
    loaded = ingest.expand(job=jobs)
    pulled >> loaded
    gate = loads_done(planned)
    loaded >> gate

    # Seeds (code maps) and staging views change only with the code: one Cosmos task each builds and
    # tests them all. Every intermediate, mart and reporting model is its own task (and Asset).
    seeds = DbtSeedLocalOperator(task_id="dbt_seeds", full_refresh=True, **DBT_COMMON)
    # tag:per_municipality tests run in quality_gate (trivsel.quality), where a failure holds one
    # municipality's deliveries instead of failing this task for everyone
    staging = DbtBuildLocalOperator(task_id="dbt_staging", select="path:models/staging",
                                    exclude="tag:per_municipality", **DBT_COMMON)
    models = DbtTaskGroup(
        group_id="dbt",
        project_config=PROJECT,
        profile_config=PROFILE,
        execution_config=EXECUTION,
        render_config=RenderConfig(load_method=LoadMode.DBT_LS, test_behavior=TestBehavior.BUILD,
                                   # a test reading two models runs after both, not with the first
                                   should_detach_multiple_parents_tests=True,
                                   exclude=["path:models/staging", "resource_type:seed",
                                            "path:models/certified", "tag:per_municipality"],
                                   dbt_executable_path=DBT_BIN),
        # buildable: a test between two models (relationships) runs in the task of the model built last, not
        # in the first one's task before the other exists (eager: fails on a fresh warehouse)
        operator_args={"install_deps": False, "indirect_selection": "buildable",
                       "dbt_cmd_global_flags": DBT_GLOBAL_FLAGS},
        default_args={"retries": 1},
    )
    stats = significance_tests.expand(domain=list(pipeline.STAT_DOMAINS))
    held = quality_gate()
    quality.partial(held=held).expand(code=codes(planned))
    gate >> seeds >> staging >> held >> models >> stats >> certify(planned) >> publish(planned)


trivsel_monthly()
