"""A municipality's verdict on a run: one task instance per municipality that has a finding (issue 15).

Why one task. validated[code] and quality[code] were two mapped task instances per municipality, each ~1 s of
Airflow's fixed cost (98 municipalities: ~200 task instances on 2 cores). What they judge is decided before
they run: the quarantines of the run's validate task (its XCom), the deliveries the quality gate held (its
XCom) and the pulls that failed (audit.pull_failure, written by the ingest task's pull). So one task reads
all three and fails for this municipality only, its reason naming each. It is a leaf: only run_outcome waits
on it; certify does not (trivsel.upstream tolerates a verdict not yet run, and a failure it can explain).

Why only where there is a finding (fourth round). A verdict that passes says nothing its municipality's green
`ingest` task and the run's green validate and quality_gate tasks do not already say, and 98 of them cost
~1 s each of the two slots in a month where nobody failed. So the run's one `findings` task (`judged`) picks
the municipalities to judge from the same three inputs, and `verdict` is mapped over that list only: a good
month has no verdict instance at all (Airflow marks the mapped task skipped). A municipality without a
verdict instance passed: its ingest is green and no check found anything of it.

Ingest findings (fifth round). `ingest` is mapped over lanes (trivsel.lanes), each loading several
municipalities; a municipality whose files could not be parsed, or whose load failed unexpectedly, no longer
fails a task of its own there: the lane records it in audit.ingest_failure and goes on. So that is a fourth
input of the verdict: findings lists the municipality, and its verdict fails naming the files or the error.

A verdict that cannot judge (validate or the quality gate did not succeed, so its XCom is missing) and finds
nothing of its own is skipped, not green: the municipality's deliveries were not decided, and the failed task
says why. In that run every municipality gets its verdict instance, so each shows as not judged.
"""

from __future__ import annotations

import logging

from trivsel import warehouse

log = logging.getLogger(__name__)

try:  # the task SDK's "fail now, never retry" and "skipped"; outside Airflow, plain errors
    from airflow.sdk.exceptions import AirflowFailException as _FailWithoutRetry
    from airflow.sdk.exceptions import AirflowSkipException as _Undecided
except ImportError:  # pragma: no cover - Airflow is a dependency of the project; this keeps the module importable
    _FailWithoutRetry = RuntimeError  # type: ignore[misc,assignment]
    _Undecided = RuntimeError  # type: ignore[misc,assignment]


class MunicipalityFailed(_FailWithoutRetry):
    """A municipality's deliveries were quarantined or held, or its pull failed; the others published. A data
    (or remote) verdict, deterministic for this run: no retry."""


class MunicipalityUndecided(_Undecided):
    """validate or the quality gate did not succeed: this municipality's deliveries were not judged."""


def reasons(code: str, failed: dict[str, list[str]] | None, held: dict[str, list[str]] | None,
            pulls: dict[str, list[str]], ingests: dict[str, list[str]] | None = None) -> list[str]:
    """The municipality's reasons, one per check that found something; [] when none did. ingests: the run's
    ingest findings (trivsel.lanes.failures: files that could not be parsed, a load that failed), which the
    ingest lane recorded and went on."""
    out = []
    if lines := (ingests or {}).get(code):
        out.append(f"{len(lines)} ingest finding(s): the lane went on with the other municipalities "
                   f"(audit.ingest_failure; quarantine.delivery_issue):\n" + "\n".join(lines))
    if lines := (failed or {}).get(code):
        out.append(f"{len(lines)} deliveries failed validation (quarantined; see quarantine.delivery_issue):\n"
                   + "\n".join(lines))
    if lines := (held or {}).get(code):
        out.append(f"{len(lines)} deliveries held by the quality gate (audit.delivery status waiting; "
                   f"marts.delivery_coverage.quality_issue):\n" + "\n".join(lines))
    if lines := pulls.get(code):
        out.append(f"pulling failed for {len(lines)} remote location(s); the inbox was loaded without them "
                   f"(audit.pull_failure):\n" + "\n".join(lines))
    return out


def not_succeeded(failed: dict[str, list[str]] | None, held: dict[str, list[str]] | None) -> list[str]:
    """The tasks whose XCom is missing (None: validate or quality_gate did not succeed), by task name."""
    return [name for name, value in (("validate", failed), ("quality_gate", held)) if value is None]


def decide(code: str, failed: dict[str, list[str]] | None, held: dict[str, list[str]] | None,
           pulls: dict[str, list[str]], ingests: dict[str, list[str]] | None = None) -> str:
    """The verdict from the three inputs: raises MunicipalityFailed (naming every reason) or
    MunicipalityUndecided; else returns what passed. failed/held None: that task did not succeed."""
    found = reasons(code, failed, held, pulls, ingests)
    if found:
        raise MunicipalityFailed(f"municipality {code}: " + "\n".join(found))
    missing = not_succeeded(failed, held)
    if missing:
        raise MunicipalityUndecided(f"municipality {code}: not judged, {' and '.join(missing)} did not succeed "
                                    f"(see that task's log)")
    return (f"municipality {code}: every delivery was loaded and passed validation and the per-municipality "
            f"data tests, and its pull succeeded")


def to_judge(codes: list[str], failed: dict[str, list[str]] | None, held: dict[str, list[str]] | None,
             pulls: dict[str, list[str]], ingests: dict[str, list[str]] | None = None) -> list[str]:
    """The municipalities that get a verdict task instance, in the plan's order: those with a reason
    (reasons() not empty); every one of them when validate or the quality gate did not succeed (failed or held
    None), because then none was judged and each must show it (decide() skips those with no reason)."""
    if failed is None or held is None:
        return list(codes)
    return [code for code in codes if reasons(code, failed, held, pulls, ingests)]


def judged(codes: list[str], failed: dict[str, list[str]] | None, held: dict[str, list[str]] | None,
           run_id: str) -> list[str]:
    """The DAG's findings task: to_judge() with the run's failed pulls and ingest findings (read as the
    publisher, which reads audit). Logs which municipalities have a finding; the list is what `verdict` is mapped over, and what
    certify reads the verdicts' map indexes by (trivsel.upstream)."""
    from trivsel import lanes
    from trivsel.remote.pull import failures

    with warehouse.connect(warehouse.PUBLISHER, autocommit=True) as conn:
        pulls = failures(conn, run_id, codes)
        ingests = lanes.failures(conn, run_id, codes)
    out = to_judge(codes, failed, held, pulls, ingests)
    missing = not_succeeded(failed, held)
    if missing:
        log.warning("run %s: %s did not succeed: a verdict for each of the %d municipalities (not judged, "
                    "unless it has a reason of its own)", run_id, " and ".join(missing), len(out))
    elif out:
        log.info("run %s: %d of %d municipalities have a finding, one verdict each: %s; the others passed",
                 run_id, len(out), len(codes), ", ".join(out))
    else:
        log.info("run %s: none of the %d municipalities has a finding: no verdict to run (every one passed)",
                 run_id, len(codes))
    return out


def judge(code: str, failed: dict[str, list[str]] | None, held: dict[str, list[str]] | None,
          run_id: str) -> str:
    """The DAG's verdict[code] task: decide() with the run's failed pulls and ingest findings of this
    municipality (read as the publisher, which reads audit: the verdict writes nothing)."""
    from trivsel import lanes
    from trivsel.remote.pull import failures

    with warehouse.connect(warehouse.PUBLISHER, autocommit=True) as conn:
        pulls = failures(conn, run_id, [code])
        ingests = lanes.failures(conn, run_id, [code])
    return decide(code, failed, held, pulls, ingests)
