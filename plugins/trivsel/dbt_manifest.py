"""The dbt manifest the monthly DAG reads its dbt tasks' Assets from, built ahead of time, never at a DAG parse.

The DAG declares one Asset per model, seed and staging view, named and described from the manifest; it used
to render one Cosmos task per model from `dbt ls` (~30 s on two cores at every parse, more than Airflow's
default import timeout). This module builds the manifest with `dbt parse` (`make manifest`, `trivsel
manifest`, and `trivsel run`/`demo`/`airflow up` before they start Airflow) and tells whether it is current.
Parsing the DAG never runs dbt: a missing or stale manifest is an import error that says how to rebuild it.

Current means: built from the dbt project files as they are now. The check hashes the project's own files
(dbt_project.yml, models, macros, seeds, tests, ...; not target/, logs/ or dbt_packages/), which takes a few
milliseconds, and compares the hash with the one recorded beside the manifest when it was built.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from trivsel import settings

#: folders of the dbt project that are output, not source (the manifest does not depend on them)
_NOT_SOURCE = {"target", "logs", "dbt_packages", "__pycache__"}
_STAMP = "source.sha256"
#: what the DAG's dbt_models task leaves to other tasks (dbt_seeds, dbt_staging, quality_gate, certify): it
#: builds the intermediate, marts and reporting models in one `dbt build` (one Asset each)
GROUP_EXCLUDE = ("path:models/staging", "resource_type:seed", "path:models/certified", "tag:per_municipality")


class ManifestMissing(RuntimeError):
    """The manifest is missing or older than the dbt project: the DAG must not be rendered from it."""


def manifest_dir(dbt_dir: Path | None = None) -> Path:
    """A target path of its own, so `dbt parse` never touches the partial-parse state of real runs."""
    return (dbt_dir or settings.dbt_dir()) / "target" / "dag-manifest"


def manifest_path(dbt_dir: Path | None = None) -> Path:
    """dbt's manifest with the tests dbt would not select for the group left out (dag_manifest())."""
    return manifest_dir(dbt_dir) / "dag_manifest.json"


def source_hash(dbt_dir: Path | None = None) -> str:
    """SHA-256 over the relative path and content of every source file of the dbt project."""
    root = dbt_dir or settings.dbt_dir()
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in _NOT_SOURCE and not d.startswith(".")]
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(".pyc"):
                continue
            path = here / name
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    digest.update(repr(GROUP_EXCLUDE).encode())  # the derived manifest depends on the selection too
    return digest.hexdigest()


def is_current(dbt_dir: Path | None = None) -> bool:
    """True when the manifest exists and was built from the project files as they are now."""
    stamp = manifest_dir(dbt_dir) / _STAMP
    if not manifest_path(dbt_dir).is_file() or not stamp.is_file():
        return False
    return stamp.read_text().strip() == source_hash(dbt_dir)


def require_current(dbt_dir: Path | None = None) -> Path:
    """The manifest's path, or ManifestMissing (at DAG parse: never build it there, that would run dbt)."""
    if not is_current(dbt_dir):
        state = "is older than the dbt project" if manifest_path(dbt_dir).is_file() else "does not exist"
        raise ManifestMissing(f"the dbt manifest {manifest_path(dbt_dir)} {state}: build it with "
                              "`make manifest` (or `trivsel manifest`) before Airflow parses the DAG")
    return manifest_path(dbt_dir)


def build(dbt_dir: Path | None = None) -> Path:
    """Run `dbt parse` into manifest_dir() and record the source hash it was built from.

    dbt parse reads profiles.yml, whose env_var() calls need values, but connects to nothing: the
    connection fields get placeholders when the environment has none.
    """
    root = dbt_dir or settings.dbt_dir()
    out = manifest_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    before = source_hash(root)
    env = dict(os.environ)
    for name in ("TRIVSEL_DBT_USER", "TRIVSEL_DBT_PASSWORD"):
        env.setdefault(name, "parse-only")
    dbt = str(Path(sys.executable).with_name("dbt"))
    cmd = [dbt, "parse", "--project-dir", str(root), "--profiles-dir", str(root), "--target-path", str(out),
           "--no-partial-parse", "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt parse failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    dbt_nodes = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    tmp = out / "dag_manifest.json.tmp"
    tmp.write_text(json.dumps(dag_manifest(dbt_nodes, list(GROUP_EXCLUDE))), encoding="utf-8")
    tmp.replace(out / "dag_manifest.json")
    (out / _STAMP).write_text(before + "\n")
    return out / "dag_manifest.json"


def ensure(dbt_dir: Path | None = None) -> Path:
    """The manifest's path, built first when it is missing or stale (not at DAG parse: before Airflow)."""
    if is_current(dbt_dir):
        return manifest_path(dbt_dir)
    return build(dbt_dir)


def load(dbt_dir: Path | None = None) -> dict[str, Any]:
    return json.loads(require_current(dbt_dir).read_text(encoding="utf-8"))


def _matches(node: dict[str, Any], selector: str) -> bool:
    """dbt's meaning of the selector kinds the DAG uses (path:, tag:, resource_type:) on one manifest node."""
    kind, _, value = selector.partition(":")
    if kind == "path":
        path = node["original_file_path"]
        return path == value or path.startswith(value.rstrip("/") + "/")
    if kind == "tag":
        return value in node.get("tags", [])
    if kind == "resource_type":
        return node["resource_type"] == value
    raise ValueError(f"selector {selector!r}: only path:, tag: and resource_type: are understood here")


def tests_excluded_with_their_parents(manifest: dict[str, Any], exclude: list[str]) -> set[str]:
    """unique_ids of the data tests `dbt ls --exclude ...` leaves out: a test that matches an exclude
    itself, or reads any node that does (dbt's eager indirect selection)."""
    nodes = manifest["nodes"]
    excluded = {uid for uid, n in nodes.items() if any(_matches(n, s) for s in exclude)}
    return {uid for uid, n in nodes.items() if n["resource_type"] == "test"
            and (uid in excluded or excluded.intersection(n["depends_on"]["nodes"]))}


def dag_manifest(manifest: dict[str, Any], exclude: list[str]) -> dict[str, Any]:
    """dbt's manifest without the tests dbt would not select for dbt_models (a smaller file to read at parse;
    it was the Cosmos group's rendering input when every model had its own task).

    Cosmos' manifest selector differs from dbt's for tests: it checks a test's own path only, gives it its
    first parent's tags, and adds back every test that reads a selected model. Rendered from dbt's manifest
    the group would get tasks for tests of seeds and staging models, per-municipality tests (which belong
    to quality_gate), and tests that the model tasks already run (indirect selection `buildable`). Without
    them Cosmos renders the same tasks as from `dbt ls --exclude ...` (tests/reliability/test_dag_contract).
    """
    drop = tests_excluded_with_their_parents(manifest, exclude)
    return {**manifest, "nodes": {uid: n for uid, n in manifest["nodes"].items() if uid not in drop}}
