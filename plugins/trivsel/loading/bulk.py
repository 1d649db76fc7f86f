"""Bulk: the set-based path (trivsel.sources.bulk) for large files of schemes that offer one.

Its own module because it is an optimisation with a fallback, not a second truth: whenever the plan cannot
read a file or the SQL meets something only the Python parser can judge, it returns None and
trivsel.loading.parsing takes the file, so both paths give the same raw rows and the same reasons.
"""

from __future__ import annotations

import logging
from pathlib import Path

from trivsel.privacy import describe_exception, mask_free_text, mask_identifiers
from trivsel.sources import bulk
from trivsel.sources.base import DeliveryContext, FileRejected

log = logging.getLogger(__name__)

def _load_bulk(conn, path: Path, module, ctx: DeliveryContext, did: int, reject, tables: list[str], size: int):
    """The set-based path (trivsel.sources.bulk) for large files of schemes that offer one. Returns the rows
    loaded, the quarantine Outcome, or None when the Python parser must take the file."""
    make_plan = module.bulk_plan
    smallest = bulk.threshold()
    if make_plan is None or smallest is None or size < smallest:
        return None
    scheme = module.scheme
    try:
        plan = make_plan(path, ctx)
    except FileRejected as exc:
        return reject([(exc.row, exc.column, "parse", exc.reason, None)], tables)
    except Exception as exc:  # noqa: BLE001 - the parser decides what is wrong with a file the plan cannot read
        log.error("bulk plan of %s failed on %s; the Python parser takes it: %s", scheme.name, path.name,
                  describe_exception(exc, keep=(path.name,)))
        return None
    if plan is None:
        return None
    try:
        with conn.transaction():
            result = bulk.run(conn, path, scheme, plan, delivery_id=did, municipality_code=ctx.municipality_code,
                              period=ctx.period, max_issues=ctx.max_issues)
            for t in scheme.tables:  # before the commit: no other session sees them clear
                if t.free_text_columns and result.rows.get(t.name):
                    mask_free_text(conn, t.name, t.free_text_columns, did)
    except bulk.BulkFallback as exc:
        log.info("%s: the Python parser takes it (%s)", path.name, mask_identifiers(str(exc), keep=(path.name,)))
        return None
    if result.issues:
        return reject([(i.row, i.column, "parse", i.reason, i.value) for i in result.issues], tables)
    total = sum(result.rows.values())
    if total == 0:
        return reject([(None, None, "parse", "the file has no data rows", None)], tables)
    log.info("%s: loaded set-based (bulk path), %d rows", path.name, total)
    return total

