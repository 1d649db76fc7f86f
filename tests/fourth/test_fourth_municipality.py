"""A fourth municipality, onboarded as a new user would: its deliveries written from docs/sources/ alone, the
municipality added by config only, run through the real DAG (`trivsel run`, i.e. `airflow dags test`) on a
warehouse, inbox and Airflow home of its own.

Aarhus (751) with three units, on documented schemes only:
- hr_absence: monthly `hr_payroll_csv` for 2010-01 … 2013-12 (yearly figures and changes come from payroll);
- survey: `survey_respondent_csv` + `survey_population_csv` in **September** (rounds baseline = 2012-09,
  follow-up = 2013-09), while the other municipality in the run (Høje-Taastrup, 169, its config as in the
  repository) surveys in May;
- incidents: `internal_incident_register`, yearly 2010 … 2013; use of force: not delivered (`schemes: []`).

First run: three bad deliveries of 751 (payroll 2011-03 with a malformed number, the 2011-04 payroll in a
malformed period folder `2011-4`, a payroll for the future period 2031-01) are quarantined / unroutable while
169 loads and publishes. Second run: the corrected 2011-03 file and the 2011-04 file in its right folder.

Every expected figure is computed here, from the generated deliveries, with pandas and scipy (no project
code): item codes, scales, labels, header texts and the rules are read from docs/sources/*.md.

One session fixture runs both DAG runs; each test function checks one figure or status of the issue's
"done means" (issue 12) against its independently computed value.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import psycopg
import pytest
import throwaway_db
import yaml
from doc_tables import table_rows
from psycopg.rows import dict_row
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "sources"

CODE = "751"
OTHER = "169"
UNITS = ("Botilbuddet Skovbakken", "Bostøtte Nord", "Nattevagten Aarhus")
YEARS = (2010, 2011, 2012, 2013)
BASELINE_YEARS, FOLLOWUP_YEAR = (2010, 2011, 2012), 2013
ROUNDS = {"baseline": "2012-09", "followup": "2013-09"}
OTHER_ROUNDS = {"baseline": "2012-05", "followup": "2013-05"}
BAD_MONTH, MISFILED_MONTH, FUTURE_MONTH = "2011-03", "2011-04", "2031-01"
MALFORMED_FOLDER = "2011-4"
HOURS_PER_DAY = 7.4  # docs/sources/hr_payroll_csv.md: sick days = sick hours / 7.4
ALPHA = 0.05  # settings.significance_level
MINIMUM_RATE = 0.60  # settings.minimum_response_rate
SMALL = 5  # settings.small_cell_threshold


# ------------------------------------------------------------------ what the docs say


def docs_survey() -> tuple[list[tuple[str, str, str]], dict[str, list[str]]]:
    """Items (code, scale, direction) and each scale's labels, highest intensity first, from the page."""
    rows = table_rows((DOCS / "survey_respondent_csv.md").read_text(encoding="utf-8"))
    items = [(r[0], r[2], r[3]) for r in rows if re.fullmatch(r"\d\.\d\.\d", r[0]) and len(r) == 4]
    scales = {r[0]: [s.strip() for s in r[1].split("·")] for r in rows if len(r) == 2 and "·" in r[1]}
    assert len(items) == 36 and {s for _, s, _ in items} <= set(scales), "survey page lacks items or scales"
    return items, scales


def docs_payroll_codes() -> dict[str, tuple[str, bool]]:
    rows = table_rows((DOCS / "hr_payroll_csv.md").read_text(encoding="utf-8"))
    return {r[0]: (r[1].split(" (")[0], r[2] == "yes") for r in rows
            if len(r) == 3 and r[2] in ("yes", "no") and r[0].isupper()}


PAYROLL_HEADER = "Medarbejdernr;Enhed;Måned;Fraværskode;Fraværstekst;Fraværstimer;Normtimer;Årsværk"
INCIDENT_HEADER = "Løbenr;Dato;Sted;Type;Undertype;Beskrivelse"


def test_the_headers_used_here_are_the_documented_ones():
    assert f"`{PAYROLL_HEADER}`" in (DOCS / "hr_payroll_csv.md").read_text(encoding="utf-8")
    assert f"`{INCIDENT_HEADER}`" in (DOCS / "internal_incident_register.md").read_text(encoding="utf-8")
    assert "`enhed;maaling;maalgruppe`" in (DOCS / "survey_population_csv.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ the deliveries (from the docs)


def _num(x: float) -> str:
    return f"{x:.2f}".replace(".", ",")


def payroll_truth() -> pd.DataFrame:
    """One row per employee × month × code, as the payroll would export it (rounded as written)."""
    codes = docs_payroll_codes()
    assert {"SYG", "DELSYG", "BARNSYG", "NEDSAT", "OEVRIG"} <= set(codes)
    rng = np.random.default_rng(751)
    staff = []
    for u, (unit, n) in enumerate(zip(UNITS, (8, 7, 6), strict=True)):
        for i in range(n):
            fte = float(rng.choice([1.0, 0.8, 0.6]))
            first, last = "2010-01", "2013-12"
            if u == 1 and i == 0:
                last = "2012-06"  # leaves: the unit's FTE falls
            if u == 2 and i == 0:
                first = "2012-02"  # joins
            staff.append((f"0{u + 1}{i:04d}", unit, fte, first, last))
    rows = []
    for year in YEARS:
        for month in range(1, 13):
            ym = f"{year}-{month:02d}"
            for emp, unit, fte, first, last in staff:
                if not first <= ym <= last:
                    continue
                norm = round(160.33 * fte, 2)
                absences = []
                if rng.random() < 0.28 + 0.04 * (unit == UNITS[2]):
                    absences.append(("SYG", HOURS_PER_DAY * int(rng.integers(1, 9))))
                if rng.random() < 0.06:
                    absences.append(("DELSYG", 3.7 * int(rng.integers(1, 7))))
                if rng.random() < 0.10:
                    absences.append(("BARNSYG", HOURS_PER_DAY))
                if rng.random() < 0.08:
                    absences.append(("OEVRIG", HOURS_PER_DAY * int(rng.integers(1, 4))))
                for code, hours in absences or [("", 0.0)]:
                    rows.append(dict(employee=emp, unit=unit, month=ym, code=code,
                                     text=codes[code][0] if code else "", hours=round(hours, 2),
                                     norm=norm, fte=fte, sick=bool(code) and codes[code][1]))
    return pd.DataFrame(rows)


def payroll_csv(month_rows: pd.DataFrame, bad_row: int | None = None) -> bytes:
    lines = [PAYROLL_HEADER]
    for i, r in enumerate(month_rows.itertuples()):
        hours = "syv" if i == bad_row else _num(r.hours)
        lines.append(f"{r.employee};{r.unit};{r.month};{r.code};{r.text};{hours};{_num(r.norm)};{_num(r.fte)}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def survey_truth(code: str, units: tuple[str, ...], waves: dict[str, str], respondents: dict[str, dict[str, int]],
                 seed: int) -> pd.DataFrame:
    """One row per respondent × item: the label written and its ordinal (None for a non-answer)."""
    items, scales = docs_survey()
    rng = np.random.default_rng(seed)
    rows = []
    for rnd, wave in waves.items():
        shift = 0.0 if rnd == "baseline" else 0.9
        n = 0
        for unit in units:
            for _ in range(respondents[rnd][unit]):
                n += 1
                rid = f"{wave.replace('-', '')}{n:03d}"
                for item, scale, direction in items:
                    labels = scales[scale]
                    k = len(labels)
                    r = rng.random()
                    if r < 0.05:
                        label, ordinal = "Ved ikke", None
                    elif r < 0.08:
                        label, ordinal = "", None
                    else:
                        # favourable answers more likely at follow-up on the first items
                        fav = shift if item < "3" else 0.0
                        w = np.exp(fav * np.arange(k) / (k - 1))
                        ordinal = int(rng.choice(np.arange(1, k + 1), p=w / w.sum()))
                        intensity = ordinal if direction == "positive" else k + 1 - ordinal
                        label = labels[k - intensity]  # highest intensity first
                    rows.append(dict(municipality_code=code, round=rnd, wave=wave, unit=unit, respondent=rid,
                                     item=item, label=label, ordinal=ordinal))
    return pd.DataFrame(rows)


def survey_files(df: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """wave → (answers csv, population csv), `;`-separated UTF-8 as the page says."""
    items, _ = docs_survey()
    out = {}
    for wave, g in df.groupby("wave"):
        code, rnd = g["municipality_code"].iloc[0], g["round"].iloc[0]
        lines = [";".join(["respondent", "enhed", "maaling"] + [i for i, _, _ in items])]
        for (rid, unit), r in g.groupby(["respondent", "unit"], sort=False):
            labels = dict(zip(r["item"], r["label"], strict=True))
            lines.append(";".join([rid, unit, wave] + [labels[i] for i, _, _ in items]))
        pop = POPULATIONS[code][rnd]
        population = "enhed;maaling;maalgruppe\n" + "".join(f"{u};{wave};{n}\n" for u, n in pop.items())
        out[wave] = ("\n".join(lines) + "\n", population)
    return out


def incident_truth() -> pd.DataFrame:
    """Registrations of 751's internal register, per year (threats and violence)."""
    per_year = {2010: (4, 3), 2011: (5, 4), 2012: (3, 3), 2013: (2, 1)}
    rng = np.random.default_rng(7510)
    rows = []
    for year, (threats, violence) in per_year.items():
        n = 0
        for kind, count, subtypes in (("Trussel", threats, ["chok", "krænkende adfærd", "andet"]),
                                      ("Vold", violence, ["slag", "slag + ukvemsord"])):
            for _ in range(count):
                n += 1
                rows.append(dict(id=f"{year}-{n:03d}", date=f"{int(rng.integers(1, 28)):02d}-"
                                 f"{int(rng.integers(1, 13)):02d}-{year}", year=year,
                                 unit=UNITS[int(rng.integers(0, 3))], type=kind,
                                 subtype=subtypes[int(rng.integers(0, len(subtypes)))],
                                 cls="threat" if kind == "Trussel" else "violence"))
    return pd.DataFrame(rows)


def incident_csv(g: pd.DataFrame) -> bytes:
    lines = [INCIDENT_HEADER] + [f"{r.id};{r.date};{r.unit};{r.type};{r.subtype};{r.type} ({r.subtype})"
                                 for r in g.itertuples()]
    return ("\n".join(lines) + "\n").encode("utf-8")


SURVEY_POP = {"baseline": {UNITS[0]: 12, UNITS[1]: 10, UNITS[2]: 10},
              "followup": {UNITS[0]: 12, UNITS[1]: 10, UNITS[2]: 10}}
SURVEY_N = {"baseline": {UNITS[0]: 10, UNITS[1]: 8, UNITS[2]: 5},  # Nattevagten at 50 %: flagged per unit
            "followup": {UNITS[0]: 9, UNITS[1]: 9, UNITS[2]: 7}}
OTHER_UNITS = ("Vestervænget fløj A", "Vestervænget fløj B", "Vestervænget nat")
OTHER_POP = {"baseline": {OTHER_UNITS[0]: 15, OTHER_UNITS[1]: 15, OTHER_UNITS[2]: 10},
             "followup": {OTHER_UNITS[0]: 14, OTHER_UNITS[1]: 15, OTHER_UNITS[2]: 10}}
OTHER_N = {"baseline": {OTHER_UNITS[0]: 11, OTHER_UNITS[1]: 10, OTHER_UNITS[2]: 7},
           "followup": {OTHER_UNITS[0]: 10, OTHER_UNITS[1]: 12, OTHER_UNITS[2]: 6}}


# ------------------------------------------------------------------ expected figures (pandas, scipy)


def expected_unit_year(pay: pd.DataFrame) -> pd.DataFrame:
    """The three metrics per unit × year as docs/sources/hr_payroll_csv.md defines them, and '(average)'."""
    em = pay.groupby(["unit", "month", "employee"]).agg(
        sick=("hours", lambda h: h[pay.loc[h.index, "sick"]].sum()), norm=("norm", "first"),
        fte=("fte", "first")).reset_index()
    um = em.groupby(["unit", "month"]).agg(sick=("sick", "sum"), norm=("norm", "sum"), fte=("fte", "sum"))
    um = um.reset_index()
    um["year"] = um["month"].str[:4].astype(int)
    uy = um.groupby(["unit", "year"]).agg(sick=("sick", "sum"), norm=("norm", "sum"), fte=("fte", "mean"),
                                          months=("month", "nunique")).reset_index()
    uy["pct_whole_group"] = 100 * uy["sick"] / uy["norm"]
    uy["pct_per_employee"] = uy["pct_whole_group"] / uy["fte"]
    uy["days_per_employee"] = uy["sick"] / HOURS_PER_DAY / uy["fte"]
    long = uy.melt(id_vars=["unit", "year", "fte", "months"],
                   value_vars=["pct_whole_group", "pct_per_employee", "days_per_employee"],
                   var_name="metric", value_name="value")
    avg = long.groupby(["year", "metric"], as_index=False)["value"].mean().assign(unit="(average)")
    return pd.concat([long, avg], ignore_index=True)


def expected_change(uy: pd.DataFrame) -> pd.DataFrame:
    base = uy[uy["year"].isin(BASELINE_YEARS)].groupby(["unit", "metric"])["value"].mean()
    follow = uy[uy["year"] == FOLLOWUP_YEAR].set_index(["unit", "metric"])["value"]
    return pd.DataFrame({"baseline_mean": base, "followup_value": follow,
                         "change": follow - base}).reset_index()


def expected_item_tests(base: pd.DataFrame, follow: pd.DataFrame) -> pd.DataFrame:
    """Welch (two-sided, follow-up − baseline), Mann–Whitney, BH q over the items of the pair."""
    out = []
    for item in sorted(set(base["item"]) | set(follow["item"])):
        a = base.loc[(base["item"] == item) & base["ordinal"].notna(), "ordinal"].astype(float).to_numpy()
        b = follow.loc[(follow["item"] == item) & follow["ordinal"].notna(), "ordinal"].astype(float).to_numpy()
        w = stats.ttest_ind(b, a, equal_var=False)
        mw = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
        out.append(dict(item_code=item, n_baseline=len(a), n_followup=len(b), mean_baseline=a.mean(),
                        mean_followup=b.mean(), p_value=float(w.pvalue), mannwhitney_p=float(mw.pvalue)))
    df = pd.DataFrame(out)
    df["q_value"] = stats.false_discovery_control(df["p_value"].to_numpy(), method="bh")
    df["significant"] = df["p_value"] <= ALPHA
    return df


def expected_rates(survey: pd.DataFrame) -> pd.DataFrame:
    """Respondents ÷ target population per municipality × round, and per unit (unit_name null = all)."""
    rows = []
    for (code, rnd, wave), g in survey.groupby(["municipality_code", "round", "wave"]):
        pop = POPULATIONS[code][rnd]
        per_unit = g.groupby("unit")["respondent"].nunique()
        for unit, n in per_unit.items():
            rows.append(dict(municipality_code=code, round=rnd, wave=wave, unit_name=unit, respondents=n,
                             target_population=pop[unit], response_rate=n / pop[unit]))
        total_pop = sum(pop.values())
        rows.append(dict(municipality_code=code, round=rnd, wave=wave, unit_name=None,
                         respondents=int(per_unit.sum()), target_population=total_pop,
                         response_rate=per_unit.sum() / total_pop))
    df = pd.DataFrame(rows)
    df["meets_minimum"] = df["response_rate"] >= MINIMUM_RATE
    return df


POPULATIONS = {CODE: SURVEY_POP, OTHER: OTHER_POP}


# ------------------------------------------------------------------ the run


def _frame(conn, query: str, params=()) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
        cols = [c.name for c in cur.description]
    return pd.DataFrame(rows, columns=cols)


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def fourth_config(base: dict) -> dict:
    """The repository's config with 169 (its survey in May) and 751 added: a config change only."""
    cfg = copy.deepcopy(base)
    cfg["settings"].setdefault("survey_rounds", ["baseline", "followup"])
    other = next(m for m in cfg["municipalities"] if str(m["code"]) == OTHER)
    other["sources"]["survey"].setdefault("rounds", dict(OTHER_ROUNDS))
    cfg["municipalities"] = [other, {
        "code": CODE,
        "name": "Aarhus",
        "units": [{"name": u, "valid_from": "2000-01-01"} for u in UNITS],
        "sources": {
            "survey": {"cadence": "wave", "rounds": dict(ROUNDS), "schemes": [
                {"scheme": "survey_respondent_csv", "files": "svar_*.csv"},
                {"scheme": "survey_population_csv", "files": "population_*.csv"}]},
            "hr_absence": {"cadence": "monthly", "schemes": [{"scheme": "hr_payroll_csv", "files": "loen_*.csv"}]},
            "incidents": {"cadence": "yearly", "schemes": [
                {"scheme": "internal_incident_register", "files": "haendelser_*.csv"}]},
            "use_of_force": {"cadence": "yearly", "schemes": []},
        },
    }]
    return cfg


def _env(home: Path, config: Path) -> dict[str, str]:
    return throwaway_db.isolated_env(TRIVSEL_HOME=str(home), TRIVSEL_CONFIG=str(config), TRIVSEL_TASK_RETRIES="0",
                                     TRIVSEL_PG_PORT=str(throwaway_db.free_port()))


def _trivsel(env: dict, *args: str, timeout: int = 5400) -> subprocess.CompletedProcess:
    trivsel = str(Path(sys.executable).with_name("trivsel"))
    return subprocess.run([trivsel, *args], env=env, capture_output=True, text=True, timeout=timeout)


SNAPSHOT = {
    "delivery": "select municipality_code, source, period, file_name, status, reason from audit.delivery"
                " order by delivery_id",
    "coverage": "select * from marts.delivery_coverage where municipality_code = %s or municipality_code is null",
    "unit_year": "select * from marts.absence_unit_year where municipality_code = %s",
    "change": "select * from reporting.absence_change where municipality_code = %s",
    "unit_month": "select * from marts.absence_unit_month where municipality_code = %s",
    "answers": "select municipality_code, wave, count(*) as n from person.fct_survey_answer group by 1, 2",
    "certified_rates": "select * from certified.survey_response_rate",
    "other_changes": "select * from reporting.survey_item_change where municipality_code = '169'",
}


def _snapshot(url: str) -> dict[str, pd.DataFrame]:
    out = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, query in SNAPSHOT.items():
            try:
                out[name] = _frame(conn, query, (CODE,) if "%s" in query else ())
            except psycopg.Error as exc:  # a table a part has not built yet: the test using it says so
                out[name] = exc
    return out


@pytest.fixture(scope="module")
def fourth(test_home):
    # beside the session's test home, not under pytest's numbered tmp folders: pytest prunes those of older
    # sessions, and a second pytest on the machine could remove this warehouse's data directory mid-run
    tmp = test_home.parent / "fourth-e2e"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    home = tmp / "home"
    base = yaml.safe_load((ROOT / "config" / "municipalities.yml").read_text(encoding="utf-8"))
    config = tmp / "municipalities.yml"
    config.write_text(yaml.safe_dump(fourth_config(base), allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = _env(home, config)
    inbox = home / "inbox"

    pay = payroll_truth()
    for month, g in pay.groupby("month"):
        if month in (BAD_MONTH, MISFILED_MONTH):
            continue
        _write(inbox / CODE / "hr_absence" / month / f"loen_{month}.csv", payroll_csv(g))
    bad = _write(inbox / CODE / "hr_absence" / BAD_MONTH / f"loen_{BAD_MONTH}.csv",
                 payroll_csv(pay[pay["month"] == BAD_MONTH], bad_row=4))
    misfiled = _write(inbox / CODE / "hr_absence" / MALFORMED_FOLDER / f"loen_{MISFILED_MONTH}.csv",
                      payroll_csv(pay[pay["month"] == MISFILED_MONTH]))
    future = pay[pay["month"] == "2013-12"].assign(month=FUTURE_MONTH)
    _write(inbox / CODE / "hr_absence" / FUTURE_MONTH / f"loen_{FUTURE_MONTH}.csv", payroll_csv(future))

    survey = survey_truth(CODE, UNITS, ROUNDS, SURVEY_N, seed=751)
    other = survey_truth(OTHER, OTHER_UNITS, OTHER_ROUNDS, OTHER_N, seed=169)
    for code, df, prefix in ((CODE, survey, ("svar", "population")), (OTHER, other, ("besvarelser", "maalgruppe"))):
        for wave, (answers, population) in survey_files(df).items():
            _write(inbox / code / "survey" / wave / f"{prefix[0]}_{code}_{wave}.csv", answers)
            _write(inbox / code / "survey" / wave / f"{prefix[1]}_{code}_{wave}.csv", population)
    incidents = incident_truth()
    for year, g in incidents.groupby("year"):
        _write(inbox / CODE / "incidents" / f"{year}-12" / f"haendelser_{year}.csv", incident_csv(g))

    try:
        first = _trivsel(env, "run", "--period", "2010-01", "--through", FUTURE_MONTH)
        url = _trivsel(env, "warehouse", "url", timeout=300).stdout.strip().splitlines()[-1]
        run1 = _snapshot(url)
        run1["log"] = first.stdout + first.stderr
        run1["rc"] = first.returncode
        log_file = home / "logs" / f"run-2010-01--{FUTURE_MONTH}.log"
        run1["run_log"] = log_file.read_text(errors="replace") if log_file.exists() else ""

        # the corrections: the fixed 2011-03 file (same name: it replaces the quarantined one) and the 2011-04
        # file moved into its right period folder
        _write(bad, payroll_csv(pay[pay["month"] == BAD_MONTH]))
        if misfiled.exists():
            misfiled.unlink()
        shutil.rmtree(misfiled.parent, ignore_errors=True)
        _write(inbox / CODE / "hr_absence" / MISFILED_MONTH / f"loen_{MISFILED_MONTH}.csv",
               payroll_csv(pay[pay["month"] == MISFILED_MONTH]))
        second = _trivsel(env, "run", "--period", BAD_MONTH, "--through", MISFILED_MONTH)
        conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        yield SimpleNamespace(conn=conn, url=url, run1=run1, rc2=second.returncode,
                              log2=second.stdout + second.stderr, pay=pay, survey=survey, other=other,
                              incidents=incidents, bad_name=bad.name, misfiled_name=misfiled.name, home=home)
        conn.close()
    finally:
        _trivsel(env, "warehouse", "stop", timeout=300)


def _q(fx, query: str, params=()) -> pd.DataFrame:
    return _frame(fx.conn, query, params)


def _table_of(fx, run1_name: str) -> pd.DataFrame:
    value = fx.run1[run1_name]
    if isinstance(value, Exception):
        pytest.fail(f"after the first run, {SNAPSHOT[run1_name].split(' from ')[1].split()[0]} failed: {value}")
    return value


# ------------------------------------------------------------------ first run: bad files, the others publish


@pytest.mark.e2e
def test_first_run_quarantines_the_bad_payroll_and_the_other_municipality_publishes(fourth):
    run1 = fourth.run1
    assert run1["rc"] == 1, run1["log"][-3000:]
    failed = sorted(ln.strip() for ln in run1["log"].splitlines() if ln.strip().startswith("failed:"))
    assert failed, run1["log"][-3000:]
    # only 751's verdict fails (its ingest lane recorded the quarantined payroll and went on), and the run's
    # final verdict (run_outcome), which names 751 after the other municipality was published
    assert failed == ["failed: run_outcome: failed", f"failed: verdict[{CODE}]: failed"], failed
    assert f"municipalities {CODE} had deliveries quarantined or held" in run1["log"] + run1["run_log"], failed
    d = _table_of(fourth, "delivery")
    bad = d[(d["municipality_code"] == CODE) & (d["period"] == BAD_MONTH)]
    assert list(bad["status"]) == ["quarantined"], bad
    reason = bad["reason"].iloc[0]
    assert fourth.bad_name in reason and "Fraværstimer" in reason and re.search(r"\brow 6\b", reason), reason
    assert "syv" in reason or "number" in reason, reason
    # every other 751 file of the run loaded
    ok = d[(d["municipality_code"] == CODE) & ~d["period"].isin([BAD_MONTH, FUTURE_MONTH])
           & d["period"].notna() & (d["status"] != "unroutable")]
    assert set(ok["status"]) == {"loaded"}, ok[ok["status"] != "loaded"]
    assert len(ok[ok["source"] == "hr_absence"]) == 46  # 48 months − the bad one − the misfiled one
    # the other municipality loaded, was modelled and certified in the same run
    other = d[d["municipality_code"] == OTHER]
    assert len(other) == 4 and set(other["status"]) == {"loaded"}, other
    answers = _table_of(fourth, "answers")
    assert set(answers[answers["municipality_code"] == OTHER]["wave"]) == set(OTHER_ROUNDS.values())
    cert = _table_of(fourth, "certified_rates")
    assert OTHER in set(cert["municipality_code"]), "169 was not certified after 751's bad run"
    other_changes = _table_of(fourth, "other_changes")
    assert len(other_changes) == 36, "169's item comparison was not published after 751's bad run"
    # the run log names the quarantined file
    assert fourth.bad_name in run1["run_log"] and "quarantined" in run1["run_log"]


@pytest.mark.e2e
def test_first_run_records_the_misfiled_and_the_future_file(fourth):
    """The misfiled payroll is archived as unroutable and the future one quarantined, both shown in coverage."""
    d = _table_of(fourth, "delivery")
    unroutable = d[d["status"] == "unroutable"]
    assert fourth.misfiled_name in set(unroutable["file_name"]), d.tail(10)
    reason = unroutable[unroutable["file_name"] == fourth.misfiled_name]["reason"].iloc[0]
    assert MALFORMED_FOLDER in reason, reason
    assert MALFORMED_FOLDER in fourth.run1["run_log"] and fourth.misfiled_name in fourth.run1["run_log"]
    future = d[(d["municipality_code"] == CODE) & (d["period"] == FUTURE_MONTH)]
    assert list(future["status"]) == ["quarantined"], future
    assert "future" in future["reason"].iloc[0].lower(), future["reason"].iloc[0]
    month = _table_of(fourth, "unit_month")
    assert not (month["month_start"].astype(str).str.startswith("2031")).any(), "a future month reached marts"
    cov = _table_of(fourth, "coverage")
    assert (cov["status"] == "unroutable").any(), "the unroutable file is not in delivery_coverage"
    mine = cov[cov["municipality_code"] == CODE].set_index(["source", "period"])["status"]
    assert mine[("hr_absence", FUTURE_MONTH)] == "quarantined"


@pytest.mark.e2e
def test_first_run_coverage_statuses(fourth):
    """delivered / quarantined / not_delivered of 751 after the bad run (the future month: see below)."""
    cov = _table_of(fourth, "coverage")
    cov = cov[cov["municipality_code"] == CODE].set_index(["source", "period"])["status"]
    assert cov[("hr_absence", BAD_MONTH)] == "quarantined"
    # nothing routable came for 2011-04 (its file sat in '2011-4'): no row, or not_delivered (no due day in
    # config, so never 'overdue'); never delivered
    assert cov.get(("hr_absence", MISFILED_MONTH), "not_delivered") == "not_delivered"
    assert cov[("hr_absence", "2012-05")] == "delivered"
    assert cov[("survey", ROUNDS["baseline"])] == "delivered"
    assert cov[("incidents", "2011-12")] == "delivered"
    assert cov[("use_of_force", "2012-12")] == "not_delivered"


@pytest.mark.e2e
def test_first_run_part_year_is_flagged_and_no_change_is_computed_from_it(fourth):
    """A unit-year with a quarantined month is a part year (months_delivered, is_part_year): no change from it."""
    uy = _table_of(fourth, "unit_year")
    units = uy[(uy["year"] == 2011) & ~uy["is_average"]]
    assert set(units["unit_name"]) == set(UNITS), uy
    assert set(units["months_delivered"]) == {10} and units["is_part_year"].all()
    full = uy[(uy["year"] == 2012) & ~uy["is_average"]]
    assert set(full["months_delivered"]) == {12} and not full["is_part_year"].any()
    ch = _table_of(fourth, "change")
    assert len(ch) and not ch["computable"].any() and ch["change"].isna().all(), ch
    assert ch["reason"].str.contains("2011").all(), ch["reason"].unique()


# ------------------------------------------------------------------ second run: corrected files


@pytest.mark.e2e
def test_second_run_loads_the_corrections(fourth):
    assert fourth.rc2 == 0, fourth.log2[-3000:]
    d = _q(fourth, "select period, file_name, status from audit.delivery where municipality_code = %s"
                   " and source = 'hr_absence' order by delivery_id", (CODE,))
    for month in (BAD_MONTH, MISFILED_MONTH):
        assert d[d["period"] == month]["status"].iloc[-1] == "loaded", d[d["period"] == month]
    assert d[d["period"] == BAD_MONTH]["status"].iloc[0] == "quarantined", "the bad version stays on record"
    loaded_months = set(d[d["status"] == "loaded"]["period"])
    assert loaded_months >= {f"{y}-{m:02d}" for y in YEARS for m in range(1, 13)}


@pytest.mark.e2e
def test_monthly_sick_leave_from_payroll(fourth):
    """marts.absence_unit_month: 100 × sick hours / contractual hours per unit × month, all 48 months."""
    pay = fourth.pay
    em = pay.groupby(["unit", "month", "employee"]).agg(
        sick=("hours", lambda h: h[pay.loc[h.index, "sick"]].sum()), norm=("norm", "first")).reset_index()
    exp = em.groupby(["unit", "month"]).agg(sick=("sick", "sum"), norm=("norm", "sum")).reset_index()
    exp["pct"] = 100 * exp["sick"] / exp["norm"]
    got = _q(fourth, "select unit_name, to_char(month_start, 'YYYY-MM') as month, sick_hours, contractual_hours,"
                     " sick_leave_pct from marts.absence_unit_month where municipality_code = %s", (CODE,))
    got = got[got["month"] < "2014"]
    m = exp.merge(got, left_on=["unit", "month"], right_on=["unit_name", "month"], how="outer", indicator=True)
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"]
    assert len(m) == 3 * 48
    np.testing.assert_allclose(m["sick_hours"].astype(float), m["sick"], atol=0.005)
    np.testing.assert_allclose(m["contractual_hours"].astype(float), m["norm"], atol=0.005)
    np.testing.assert_allclose(m["sick_leave_pct"].astype(float), m["pct"], atol=0.01)


@pytest.mark.e2e
def test_yearly_sick_leave_and_changes_from_payroll(fourth):
    """Yearly sick-leave figures from the payroll (absence_unit_year), and the change with its baseline_years."""
    exp = expected_unit_year(fourth.pay)
    got = _q(fourth, "select unit_name, year, metric, value as got_value, value_status, fte as got_fte,"
                     " months_delivered, is_part_year from marts.absence_unit_year where municipality_code = %s",
             (CODE,))
    assert len(got), "no yearly sick-leave rows for a payroll-only municipality"
    m = exp.merge(got, left_on=["unit", "year", "metric"], right_on=["unit_name", "year", "metric"], how="left")
    assert len(m) == (3 + 1) * 4 * 3 and m["got_value"].notna().all(), m[m["got_value"].isna()]
    assert set(m["value_status"]) == {"reported"}
    np.testing.assert_allclose(m["got_value"].astype(float), m["value"], atol=1e-3)
    units = m[m["unit"] != "(average)"]
    np.testing.assert_allclose(units["got_fte"].astype(float), units["fte"], atol=1e-3)
    assert set(units["months_delivered"]) == {12} and not units["is_part_year"].any()
    assert not (got["year"] > 2013).any(), "a future period reached absence_unit_year"

    exp_ch = expected_change(exp)
    ch = _q(fourth, "select unit_name, metric, baseline_years, followup_year, baseline_mean as got_baseline,"
                    " followup_value as got_followup, change as got_change, computable, reason"
                    " from reporting.absence_change where municipality_code = %s", (CODE,))
    ch = ch[ch["followup_year"] == FOLLOWUP_YEAR]
    mc = exp_ch.merge(ch, left_on=["unit", "metric"], right_on=["unit_name", "metric"], how="left")
    assert len(mc) == 4 * 3 and mc["computable"].fillna(False).all(), mc[~mc["computable"].fillna(False)]
    np.testing.assert_allclose(mc["got_change"].astype(float), mc["change"], atol=1e-3)
    np.testing.assert_allclose(mc["got_baseline"].astype(float), mc["baseline_mean"], atol=1e-3)
    np.testing.assert_allclose(mc["got_followup"].astype(float), mc["followup_value"], atol=1e-3)
    for text in mc["baseline_years"]:
        assert [int(y) for y in re.findall(r"\d{4}", text)] == list(BASELINE_YEARS), text


# ------------------------------------------------------------------ survey


def _survey_all(fx) -> pd.DataFrame:
    return pd.concat([fx.survey, fx.other], ignore_index=True)


@pytest.mark.e2e
def test_own_round_comparison_of_each_municipality(fourth):
    """Each municipality's own pair: 751 September → September, 169 May → May (baseline_wave/followup_wave)."""
    got = _q(fourth, "select * from reporting.survey_item_change where municipality_code in (%s, %s)",
             (CODE, OTHER))
    for code, rounds, df in ((CODE, ROUNDS, fourth.survey), (OTHER, OTHER_ROUNDS, fourth.other)):
        exp = expected_item_tests(df[df["wave"] == rounds["baseline"]], df[df["wave"] == rounds["followup"]])
        mine = got[got["municipality_code"] == code]
        assert set(zip(mine["baseline_wave"], mine["followup_wave"], strict=True)) == \
            {(rounds["baseline"], rounds["followup"])}, "a municipality's comparison paired other waves"
        m = exp.merge(mine, on="item_code", how="left", suffixes=("", "_got"))
        assert m["n_baseline_got"].notna().all() and len(m) == 36
        assert (m["n_baseline"] == m["n_baseline_got"]).all() and (m["n_followup"] == m["n_followup_got"]).all()
        for col in ("mean_baseline", "mean_followup", "p_value", "mannwhitney_p", "q_value"):
            np.testing.assert_allclose(m[f"{col}_got"].astype(float), m[col], rtol=1e-6, atol=1e-9, err_msg=col)
        assert (m["significant"] == m["significant_got"]).all()
        assert m["significant"].any(), "the generated follow-up should change some items"


@pytest.mark.e2e
def test_pooled_comparison_pairs_round_with_round(fourth):
    """'ALL' pairs baseline (751 2012-09 + 169 2012-05) with follow-up (2013-09 + 2013-05),
    one comparison per item, with baseline_round / followup_round."""
    got = _q(fourth, "select * from reporting.survey_item_change where municipality_code = 'ALL'")
    assert {"baseline_round", "followup_round"} <= set(got.columns), list(got.columns)
    assert set(zip(got["baseline_round"], got["followup_round"], strict=True)) == {("baseline", "followup")}, \
        got[["baseline_round", "followup_round", "baseline_wave", "followup_wave"]].drop_duplicates()
    assert len(got) == 36
    both = _survey_all(fourth)
    exp = expected_item_tests(both[both["round"] == "baseline"], both[both["round"] == "followup"])
    m = exp.merge(got, on="item_code", how="left", suffixes=("", "_got"))
    assert (m["n_baseline"] == m["n_baseline_got"]).all() and (m["n_followup"] == m["n_followup_got"]).all()
    for col in ("mean_baseline", "mean_followup", "p_value", "mannwhitney_p", "q_value"):
        np.testing.assert_allclose(m[f"{col}_got"].astype(float), m[col], rtol=1e-6, atol=1e-9, err_msg=col)
    assert (m["significant"] == m["significant_got"]).all()
    own = _q(fourth, "select distinct baseline_round, followup_round from reporting.survey_item_change"
                     " where municipality_code = %s", (CODE,))
    assert own.to_dict("records") == [{"baseline_round": "baseline", "followup_round": "followup"}]


@pytest.mark.e2e
def test_response_rates_per_municipality(fourth):
    exp = expected_rates(_survey_all(fourth))
    exp = exp[exp["unit_name"].isna()]
    got = _q(fourth, "select * from marts.survey_response_rate where municipality_code in (%s, %s)",
             (CODE, OTHER))
    if "unit_name" in got.columns:  # the contract: null unit_name = the whole municipality
        got = got[got["unit_name"].isna()]
    m = exp.merge(got, on=["municipality_code", "wave"], how="left", suffixes=("", "_got"))
    assert m["respondents_got"].notna().all() and len(m) == 4, m
    assert (m["respondents"] == m["respondents_got"]).all()
    assert (m["target_population"] == m["target_population_got"]).all()
    np.testing.assert_allclose(m["response_rate_got"].astype(float), m["response_rate"], atol=1e-4)
    assert (m["meets_minimum"] == m["meets_minimum_got"]).all()


@pytest.mark.e2e
def test_response_rates_per_unit_and_round(fourth):
    """Per-unit rows (unit_name) with the round, a unit at 50 % flagged."""
    exp = expected_rates(_survey_all(fourth))
    got = _q(fourth, "select * from marts.survey_response_rate where municipality_code in (%s, %s)",
             (CODE, OTHER))
    assert {"round", "unit_name"} <= set(got.columns), list(got.columns)
    m = exp.merge(got, on=["municipality_code", "round", "unit_name"], how="left", suffixes=("", "_got"))
    m_units = exp[exp["unit_name"].notna()].merge(got[got["unit_name"].notna()],
                                                  on=["municipality_code", "round", "unit_name"], how="left",
                                                  suffixes=("", "_got"))
    assert m_units["respondents_got"].notna().all(), m_units[m_units["respondents_got"].isna()]
    assert (m_units["respondents"] == m_units["respondents_got"]).all()
    np.testing.assert_allclose(m_units["response_rate_got"].astype(float), m_units["response_rate"], atol=1e-4)
    assert (m_units["meets_minimum"] == m_units["meets_minimum_got"]).all()
    night = m_units[(m_units["unit_name"] == UNITS[2]) & (m_units["round"] == "baseline")]
    assert night["response_rate"].iloc[0] == 0.5 and not night["meets_minimum_got"].iloc[0]
    whole = m[m["unit_name"].isna()]
    assert whole["respondents_got"].notna().all() and (whole["wave"] == whole["wave_got"]).all()


# ------------------------------------------------------------------ incidents


@pytest.mark.e2e
def test_incident_counts(fourth):
    inc = fourth.incidents
    exp = inc.groupby(["year", "cls"]).size()
    got = _q(fourth, "select year, incident_class, sum(n_counted) as n, string_agg(distinct status, ',') as status"
                     " from marts.incident_year where municipality_code = %s and register = 'internal'"
                     " group by 1, 2", (CODE,)).set_index(["year", "incident_class"])
    for (year, cls), n in exp.items():
        assert int(got.loc[(year, cls), "n"]) == n, (year, cls)
        assert got.loc[(year, cls), "status"] == "reported"
    ep = _q(fourth, "select year, n_registered, n_excluded, n_counted, status from marts.incident_episode_year"
                    " where municipality_code = %s and register = 'internal'", (CODE,)).set_index("year")
    for year, n in inc.groupby("year").size().items():
        assert (ep.loc[year, "n_registered"], ep.loc[year, "n_excluded"], ep.loc[year, "n_counted"]) == (n, 0, n)
    uof = _q(fourth, "select distinct status from marts.incident_episode_year where municipality_code = %s"
                     " and register = 'use_of_force'", (CODE,))
    assert list(uof["status"]) == ["not_delivered"]


@pytest.mark.e2e
def test_incident_rates_use_payroll_fte(fourth):
    """Payroll FTE feeds marts.incident_rate_year and the exact Poisson rate test."""
    uy = expected_unit_year(fourth.pay)
    fte = uy[(uy["unit"] != "(average)") & (uy["metric"] == "pct_whole_group")].groupby("year")["fte"].sum()
    n = fourth.incidents.groupby("year").size()
    got = _q(fourth, "select year, n_counted, fte, rate_per_100_fte from marts.incident_rate_year"
                     " where municipality_code = %s and register = 'internal'", (CODE,)).set_index("year")
    for year in YEARS:
        assert got.loc[year, "fte"] is not None, f"FTE not known in {year} although the payroll has it"
        assert float(got.loc[year, "fte"]) == pytest.approx(fte[year], abs=1e-3)
        assert float(got.loc[year, "rate_per_100_fte"]) == pytest.approx(100 * n[year] / fte[year], abs=0.006)
    x0, x1 = int(n[list(BASELINE_YEARS)].sum()), int(n[FOLLOWUP_YEAR])
    t0, t1 = fte[list(BASELINE_YEARS)].sum(), fte[FOLLOWUP_YEAR]
    p = stats.binomtest(x1, x0 + x1, t1 / (t0 + t1)).pvalue
    rc = _q(fourth, "select * from reporting.incident_rate_change where municipality_code = %s"
                    " and register = 'internal'", (CODE,))
    assert len(rc) == 1, rc
    r = rc.iloc[0]
    assert (r["status"], r["exposure_unit"]) == ("tested", "fte_years"), r["note"]
    assert (r["count_baseline"], r["count_followup"]) == (x0, x1)
    assert r["exposure_baseline"] == pytest.approx(t0, abs=1e-3)
    assert r["p_value"] == pytest.approx(p, rel=1e-6)
    assert r["rate_ratio"] == pytest.approx((x1 / t1) / (x0 / t0), rel=1e-6)
    assert min(x0, x1) < SMALL, "the generated case has a low count (3 episodes in 2013)"
    assert bool(r["low_count"]) is True
    assert bool(r["significant"]) == bool(p <= ALPHA)  # scipy's p-value is a numpy float


# ------------------------------------------------------------------ coverage after the corrections


@pytest.mark.e2e
def test_coverage_after_the_corrections(fourth):
    """The corrected months are delivered; every status is one of the contract's."""
    cov = _q(fourth, "select source, period, status from marts.delivery_coverage where municipality_code = %s",
             (CODE,)).set_index(["source", "period"])["status"]
    for month in (f"{y}-{m:02d}" for y in YEARS for m in range(1, 13)):
        assert cov[("hr_absence", month)] == "delivered", month
    for wave in ROUNDS.values():
        assert cov[("survey", wave)] == "delivered"
    for year in YEARS:
        assert cov[("incidents", f"{year}-12")] == "delivered"
        assert cov[("use_of_force", f"{year}-12")] == "not_delivered"
    statuses = set(cov)
    assert statuses <= {"delivered", "partly_quarantined", "quarantined", "waiting", "overdue", "not_delivered",
                        "unroutable"}, statuses


@pytest.mark.e2e
def test_the_future_period_stays_out_after_the_corrections(fourth):
    """The future period 2031-01 stays quarantined, in audit, coverage and marts."""
    d = _q(fourth, "select status, reason from audit.delivery where municipality_code = %s and period = %s",
           (CODE, FUTURE_MONTH))
    assert set(d["status"]) == {"quarantined"}, d
    cov = _q(fourth, "select status from marts.delivery_coverage where municipality_code = %s"
                     " and source = 'hr_absence' and period = %s", (CODE, FUTURE_MONTH))
    assert list(cov["status"]) == ["quarantined"]
    for table in ("marts.absence_unit_month", "marts.absence_unit_year"):
        n = _q(fourth, f"select count(*) as n from {table} where municipality_code = %s and year > 2013", (CODE,))
        assert int(n["n"].iloc[0]) == 0, f"a future period reached {table}"
