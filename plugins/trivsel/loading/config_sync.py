"""Config sync: config/municipalities.yml into raw.config_*, and each run's periods into audit.period_run.

Its own module because it is no delivery: the DAG's plan step writes what dbt joins (municipalities, units,
sources, survey rounds, settings) and which periods a run covers, as of which day, before any file loads.
"""

from __future__ import annotations

from datetime import date

from trivsel import schema, warehouse
from trivsel.config import Config, load_config


def sync_config(config: Config | None = None) -> None:
    """Write config/municipalities.yml into raw.config_* so dbt models can join it."""
    config = config or load_config()
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        with conn.transaction():
            conn.execute("delete from raw.config_municipality; delete from raw.config_unit;"
                         " delete from raw.config_source; delete from raw.config_survey_round;"
                         " delete from raw.config_setting")
            with conn.cursor() as cur:
                with cur.copy("copy raw.config_municipality from stdin") as copy:
                    for m in config.municipalities:
                        copy.write_row((m.code, m.name))
                with cur.copy("copy raw.config_unit from stdin") as copy:
                    for m in config.municipalities:
                        for u in m.units:
                            copy.write_row((m.code, u["name"], u.get("valid_from"), u.get("valid_to")))
                with cur.copy("copy raw.config_source (municipality_code, source, cadence, delivers, schemes,"
                              " due_day) from stdin") as copy:
                    for m in config.municipalities:
                        for s in m.sources.values():
                            copy.write_row((m.code, s.source, s.cadence, s.delivers,
                                            ",".join(r.scheme for r in s.schemes) or None, s.due_day))
                with cur.copy("copy raw.config_survey_round (round_name, round_order, municipality_code, wave)"
                              " from stdin") as copy:
                    for row in config.round_months():
                        copy.write_row(row)
                with cur.copy("copy raw.config_setting (setting_name, setting_value) from stdin") as copy:
                    for name, value in config.settings.items():
                        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                            copy.write_row((name, str(value)))
                        elif isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
                            # a list (baseline_years: [2010, 2011, 2012]) as '2010,2011,2012'; dbt's macro
                            # configured_years reads it back as an array
                            copy.write_row((name, ",".join(str(v) for v in value)))


def record_period_run(period: str, run_id: str, finished: bool = False, as_of: date | None = None) -> None:
    """as_of: the run's date (its logical date), the "now" that marts.delivery_coverage judges overdue by."""
    with warehouse.connect(warehouse.LOADER, autocommit=True) as conn:
        schema.ensure(conn)
        if finished:
            conn.execute("update audit.period_run set finished_at = now() where period = %s and run_id = %s",
                         (period, run_id))
        else:
            conn.execute("insert into audit.period_run (period, run_id, as_of) values (%s, %s,"
                         " coalesce(%s, current_date)) on conflict do nothing", (period, run_id, as_of))

