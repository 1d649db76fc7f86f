"""Cross-delivery consistency at ingest: a delivery that refers to another delivery waits for it.

Some deliveries are only meaningful with a partner: HT's case review (`ohs_case_review`) marks cases of the
year's registry export (`ohs_registry_export`); a survey population file (`survey_population_csv`) is the
denominator of the wave's answers (`survey_respondent_csv`). Each dependent scheme declares its partner in
its module (`Scheme.requires`, a `trivsel.sources.base.Partner` with the SQL that finds its unmatched rows).

Before this check, such a delivery loaded on its own, and the dbt test that joins the two
(`assert_ohs_case_review_cases_registered`) failed in `dbt_staging`: every model, statistic and
certification of every municipality was skipped because of one municipality's file. Now the check runs
at ingest, against what is already *loaded* (the same view staging has):

- every row matches a loaded partner delivery → the delivery loads as before;
- the partner is not loaded (not sent yet, or quarantined), or a row names something the loaded partner
  does not have → the delivery becomes `waiting`, with the reason. Its raw rows are kept (staging reads only
  `loaded` deliveries, so nobody sees them), and it is re-evaluated at the end of every ingest of its
  municipality and period (`reevaluate`): when the partner arrives, in the same run or a later one, it
  becomes `loaded` (superseding the previous loaded version, as any load does);
- the municipality's config has no partner scheme for the source at all → it can never match:
  `quarantined`.

A loaded delivery whose partner is replaced by a version that no longer matches it is held the same way
(`loaded` → `waiting`), so staging never shows a half-matching pair. Waiting is never a failure of anyone
else: the other municipalities, and this municipality's other sources, load and publish.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from trivsel.config import Municipality
from trivsel.privacy import mask_identifiers
from trivsel.sources import get_scheme
from trivsel.sources.base import Partner

log = logging.getLogger(__name__)

SHOWN_ROWS = 10  # source rows named in a reason (the rest are counted)


@dataclass(frozen=True)
class Verdict:
    status: str  # loaded | waiting | quarantined
    reason: str | None = None


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:SHOWN_ROWS])
    return shown + (f" (+{len(rows) - SHOWN_ROWS} more)" if len(rows) > SHOWN_ROWS else "")


def _partner_state(conn: psycopg.Connection, partner: Partner, code: str, period: str) -> str:
    """In words: what the warehouse holds of the partner scheme for this municipality and period."""
    rows = conn.execute(
        "select delivery_id, file_name, status from audit.delivery where municipality_code = %s and period = %s"
        " and scheme = %s and status in ('loaded', 'quarantined', 'waiting') order by delivery_id desc",
        (code, period, partner.scheme)).fetchall()
    loaded = [f"{name} (delivery {did})" for did, name, status in rows if status == "loaded"]
    if loaded:
        return f"the loaded {partner.scheme} delivery {', '.join(loaded)} does not have them"
    if rows:
        did, name, status = rows[0]
        return f"its {partner.scheme} delivery {name} (delivery {did}) is {status}, none is loaded"
    return f"no {partner.scheme} delivery of municipality {code} for {period} has arrived yet"


def check(conn: psycopg.Connection, delivery_id: int, scheme_name: str, muni: Municipality,
          period: str, total: int | None = None) -> Verdict:
    """The verdict for one delivery (its raw rows present) against the loaded deliveries of its partners."""
    scheme = get_scheme(scheme_name).scheme
    if not scheme.requires:
        return Verdict("loaded")
    source_cfg = muni.sources.get(scheme.source)
    configured = {r.scheme for r in source_cfg.schemes} if source_cfg else set()
    reasons: list[str] = []
    for partner in scheme.requires:
        if partner.scheme not in configured:
            return Verdict("quarantined", (
                f"{scheme.name} needs a {partner.scheme} delivery of the same period, and municipality "
                f"{muni.code} is not registered as delivering {partner.scheme} for {scheme.source} "
                f"(config/municipalities.yml): it can never match"))
        params = {"delivery_id": delivery_id, "municipality_code": muni.code, "period": period}
        orphans = [r[0] for r in conn.execute(partner.orphans_sql, params).fetchall()]
        if orphans:
            if total is None:
                total = conn.execute("select rows_loaded from audit.delivery where delivery_id = %s",
                                     (delivery_id,)).fetchone()[0]
            of = f" of {total}" if total else ""
            reasons.append(
                f"waiting for {partner.scheme}: {len(orphans)}{of} rows (rows {_rows_text(orphans)}) name "
                f"{partner.what} that no loaded {partner.scheme} delivery of municipality {muni.code} for "
                f"{period} has; {_partner_state(conn, partner, muni.code, period)}. It loads when a matching "
                f"{partner.scheme} delivery is loaded")
    if reasons:
        return Verdict("waiting", "; ".join(reasons))
    return Verdict("loaded")


def dependent_schemes() -> dict[str, tuple[Partner, ...]]:
    """Every scheme that declares a partner."""
    from trivsel.sources import all_schemes

    return {name: m.scheme.requires for name, m in all_schemes().items() if m.scheme.requires}


def mark_loaded(conn: psycopg.Connection, delivery_id: int, rows: int | None = None) -> None:
    """`loaded`, superseding the loaded or waiting earlier versions of the same municipality, source, period
    and scheme (one transaction; the caller's)."""
    conn.execute(
        """update audit.delivery as old set status = 'superseded', decided_at = now()
             from audit.delivery as new
            where new.delivery_id = %s and old.delivery_id <> new.delivery_id
              and old.municipality_code = new.municipality_code and old.source = new.source
              and old.period = new.period and old.scheme = new.scheme
              and old.status in ('loaded', 'waiting')""", (delivery_id,))
    conn.execute("update audit.delivery set status = 'loaded', reason = null,"
                 " rows_loaded = coalesce(%s, rows_loaded), decided_at = now() where delivery_id = %s",
                 (rows, delivery_id))


def mark_waiting(conn: psycopg.Connection, delivery_id: int, reason: str, rows: int | None = None) -> None:
    """`waiting` with its reason; its raw rows stay. An earlier *waiting* version of the same key is
    superseded by it (a loaded one stays current until this one can load)."""
    conn.execute(
        """update audit.delivery as old set status = 'superseded', decided_at = now()
             from audit.delivery as new
            where new.delivery_id = %s and old.delivery_id <> new.delivery_id
              and old.municipality_code = new.municipality_code and old.source = new.source
              and old.period = new.period and old.scheme = new.scheme
              and old.status = 'waiting' and old.delivery_id < new.delivery_id""", (delivery_id,))
    conn.execute("update audit.delivery set status = 'waiting', reason = %s,"
                 " rows_loaded = coalesce(%s, rows_loaded), decided_at = now() where delivery_id = %s",
                 (mask_identifiers(reason), rows, delivery_id))  # readers see the reason
