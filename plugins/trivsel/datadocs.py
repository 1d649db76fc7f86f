"""Great Expectations Data Docs for the certified outputs (`trivsel docs`, run by `make docs`).

A file-backed GX context in $TRIVSEL_HOME/gx holds the suites expectations/certified_*.json; each is
validated against the published certified table and the results are rendered as Data Docs
($TRIVSEL_HOME/gx/gx/uncommitted/data_docs/local_site/index.html).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from trivsel import settings, warehouse
from trivsel.certify import TABLES, threshold
from trivsel.validation import _fill, _gx

log = logging.getLogger(__name__)


def build(root: Path | None = None) -> Path:
    gx = _gx()
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    root = root or settings.home() / "gx"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(root))
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ds = ctx.data_sources.add_postgres(name="warehouse", connection_string=warehouse.url(role=warehouse.EVALUATOR))
    small = threshold()
    params = {"small_counts": list(range(1, small)), "small_cell_threshold": small}
    for table in TABLES.values():
        path = settings.expectations_dir() / f"certified_{table}.json"
        if not path.exists():
            continue
        spec = json.loads(path.read_text(encoding="utf-8"))
        suite = ExpectationSuite(name=spec["name"], meta=spec.get("meta") or {})
        for e in spec["expectations"]:
            suite.add_expectation_configuration(ExpectationConfiguration(
                type=e["type"], kwargs=_fill(e.get("kwargs", {}), params), meta=e.get("meta") or {}))
        suite = ctx.suites.add(suite)
        asset = ds.add_query_asset(name=table, query=f'select * from certified."{table}"')
        bd = asset.add_batch_definition_whole_table("published")
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"certified_{table}", data=bd,
                                                                    suite=suite))
        result = vd.run(result_format="SUMMARY")
        log.info("data docs: %s %s", table, "passed" if result.success else "FAILED")
    ctx.build_data_docs()
    index = next(root.rglob("data_docs/local_site/index.html"))
    return index
