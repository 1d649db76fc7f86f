"""The dashboards, one per domain, as data: which table each chart reads, which columns, which rows.

Every chart is drawn from the marts and reporting as the connection's login reads them; a chart whose table
the login may not read (a municipality login and reporting) is left out of that connection's dashboard
rather than shown broken. Not delivered is never 0: the incident chart shows the episode count as text,
'ikke leveret (not delivered)' where the status says so, and the status beside it; breaks are columns of
their own (break_id, comparable_with_previous, computable/reason) on the sick-leave charts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    schema: str
    table: str
    columns: tuple[str, ...]
    where: str = ""
    order_by: tuple[tuple[str, bool], ...] = ()
    #: a pivot table: rows, columns and one SQL metric (else a table of `columns`)
    pivot_rows: tuple[str, ...] = ()
    pivot_columns: tuple[str, ...] = ()
    metric_sql: str = ""
    metric_label: str = ""

    @property
    def is_pivot(self) -> bool:
        return bool(self.pivot_rows)


@dataclass(frozen=True)
class Dashboard:
    domain: str
    title: str
    charts: tuple[Chart, ...] = field(default_factory=tuple)


#: Calculated columns of a dataset (Superset evaluates the SQL in the warehouse, as the connection's login).
CALCULATED: dict[tuple[str, str], dict[str, tuple[str, str]]] = {
    ("marts", "incident_episode_year"): {
        "episodes_shown": (
            "case when status = 'not_delivered' then 'ikke leveret (not delivered)' "
            "when status = 'quarantined' then 'afvist (karantæne)' "
            "when n_counted is null then 'ej oplyst (not reported)' else cast(n_counted as text) end",
            "Episodes as shown: the counted number, or why there is none (never 0 for not delivered).",
        ),
    },
}

DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard("survey", "Trivselsmåling (survey): svarprocent og signifikante spørgsmål", (
        Chart("survey_response_rate", "Svarprocent pr. runde (response rate per round)", "marts",
              "survey_response_rate",
              ("municipality_code", "round", "wave", "respondents", "target_population", "response_rate",
               "meets_minimum", "minimum_response_rate"),
              where="unit_name is null", order_by=(("municipality_code", True), ("round_order", True))),
        Chart("survey_significant_items", "Signifikante spørgsmål pr. runde (significant items per round)",
              "reporting", "survey_item_change",
              ("municipality_code", "baseline_round", "followup_round", "item_code", "n_baseline", "n_followup",
               "mean_baseline", "mean_followup", "mean_diff", "p_value", "q_value", "low_response"),
              where="significant", order_by=(("municipality_code", True), ("item_code", True))),
    )),
    Dashboard("absence", "Sygefravær (sick leave): pr. enhed og år, ændringer og brud", (
        Chart("absence_pct_pivot", "Sygefravær % pr. enhed og år (sick leave % per unit and year)", "marts",
              "absence_unit_year", ("municipality_code", "unit_name", "year"),
              where="metric = 'pct_whole_group'", pivot_rows=("municipality_code", "unit_name"),
              pivot_columns=("year",), metric_sql="max(value)", metric_label="sygefravær %"),
        Chart("absence_unit_year", "Sygefravær med status og brud (sick leave with status and breaks)", "marts",
              "absence_unit_year",
              ("municipality_code", "unit_name", "year", "value", "value_status", "comparable_with_previous",
               "break_id", "months_delivered"),
              where="metric = 'pct_whole_group'",
              order_by=(("municipality_code", True), ("unit_name", True), ("year", True))),
        Chart("absence_change", "Ændring i sygefravær (change in sick leave, breaks named)", "reporting",
              "absence_change",
              ("municipality_code", "unit_name", "baseline_years", "followup_year", "baseline_mean",
               "followup_value", "change", "computable", "reason", "break_id"),
              where="metric = 'pct_whole_group'", order_by=(("municipality_code", True), ("unit_name", True))),
        Chart("absence_coverage", "Leverancer af sygefravær (sick-leave deliveries: ikke leveret where none came)",
              "marts", "delivery_coverage",
              ("municipality_code", "period", "status", "source_delivered_by_municipality"),
              where="source = 'hr_absence'", order_by=(("municipality_code", True), ("period", True))),
    )),
    Dashboard("incidents", "Arbejdsulykker, vold og trusler (incidents): episoder pr. år og register", (
        Chart("incident_episode_year", "Episoder pr. år og register (episodes per year and register)", "marts",
              "incident_episode_year",
              ("municipality_code", "year", "register", "status", "episodes_shown", "n_registered",
               "n_excluded", "break_description"),
              order_by=(("municipality_code", True), ("register", True), ("year", True))),
        Chart("incident_coverage", "Leverancer af hændelser (incident deliveries: what came, what did not)",
              "marts", "delivery_coverage",
              ("municipality_code", "source", "period", "status", "source_delivered_by_municipality"),
              where="source in ('incidents', 'use_of_force')",
              order_by=(("municipality_code", True), ("source", True), ("period", True))),
    )),
)


def _filters(chart: Chart) -> list[dict]:
    if not chart.where:
        return []
    return [{"expressionType": "SQL", "sqlExpression": chart.where, "clause": "WHERE", "subject": None,
             "operator": None, "comparator": None, "filterOptionName": f"filter_{chart.key}"}]


def _metric(chart: Chart) -> dict:
    return {"expressionType": "SQL", "sqlExpression": chart.metric_sql, "label": chart.metric_label,
            "optionName": f"metric_{chart.key}"}


def form_data(chart: Chart, dataset_id: int) -> dict:
    """The chart's params (Superset's form data) for a dataset."""
    base = {"datasource": f"{dataset_id}__table", "adhoc_filters": _filters(chart), "row_limit": 10000}
    if chart.is_pivot:
        return {**base, "viz_type": "pivot_table_v2", "groupbyRows": list(chart.pivot_rows),
                "groupbyColumns": list(chart.pivot_columns), "metrics": [_metric(chart)],
                "metricsLayout": "COLUMNS", "aggregateFunction": "Sum", "valueFormat": ".2f",
                "rowOrder": "key_a_to_z", "colOrder": "key_a_to_z"}
    return {**base, "viz_type": "table", "query_mode": "raw", "all_columns": list(chart.columns),
            "order_by_cols": [f'["{c}", {str(asc).lower()}]' for c, asc in chart.order_by],
            "server_pagination": False, "include_search": True, "table_timestamp_format": "smart_date"}


def query_context(chart: Chart, dataset_id: int) -> dict:
    """What the chart's data endpoint runs (/api/v1/chart/<id>/data/): the same query as the dashboard."""
    fd = form_data(chart, dataset_id)
    query: dict = {"filters": [], "extras": {"where": chart.where, "having": ""}, "row_limit": 10000,
                   "annotation_layers": [], "url_params": {}, "custom_params": {}, "custom_form_data": {}}
    if chart.is_pivot:
        m = _metric(chart)
        query.update(columns=[*chart.pivot_rows, *chart.pivot_columns], metrics=[m], orderby=[[m, False]])
    else:
        query.update(columns=list(chart.columns), metrics=[], orderby=[[c, asc] for c, asc in chart.order_by])
    return {"datasource": {"id": dataset_id, "type": "table"}, "force": False, "queries": [query],
            "form_data": fd, "result_format": "json", "result_type": "full"}


def position(title: str, charts: list[tuple[int, str]]) -> dict:
    """A dashboard layout: one full-width row per chart, in order."""
    layout: dict = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
    }
    for i, (chart_id, name) in enumerate(charts):
        row, cell = f"ROW-{i}", f"CHART-{chart_id}"
        layout["GRID_ID"]["children"].append(row)
        layout[row] = {"type": "ROW", "id": row, "children": [cell], "parents": ["ROOT_ID", "GRID_ID"],
                       "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        layout[cell] = {"type": "CHART", "id": cell, "children": [], "parents": ["ROOT_ID", "GRID_ID", row],
                        "meta": {"width": 12, "height": 60, "chartId": chart_id, "sliceName": name}}
    return layout
