"""Sample survey deliveries that reproduce the evaluation report's survey (resonans-figures.md §3).

Waves 2012-05 (baseline) and 2013-05 (follow-up) for Fredericia (607) and Høje-Taastrup (169) in scheme
`survey_respondent_csv` + `survey_population_csv`, and for Odense (461) in scheme `survey_workbook_xlsx`.

The answers are constructed, not drawn: for every item, municipality and wave the distribution of the
ordinal answer (1 = least … k = most favourable) is a discretised normal curve around a designed centre
(`DESIGN`: spread, then baseline and follow-up centre per municipality), rounded to the number of answers
by largest remainder. The centres were chosen (by a deterministic search, frozen here) so that Welch's
two-sided t-test on the ordinal answer is

- p ≤ 0.03 for every (item, scope) the report calls significant (`SIGNIFICANT`), and
- p ≥ 0.12 everywhere else (Høje-Taastrup nowhere; the exposure items nowhere),

with margin either side of 0.05. Fredericia's 4.1.1 is given explicitly: 28 of 31 (90 %) satisfied or very
satisfied in 2012, 34 of 34 (100 %) in 2013. The non-significant items develop positively overall except
1.1.1; the exposure items (7.x) get slightly worse, mostly in Høje-Taastrup. Some answers are 'Ved ikke'
or blank (non-answers), by a fixed pattern. Only the order of answers among respondents is shuffled, with
fixed seeds. tests/survey/test_survey_samples.py recomputes all of this from the written files.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
import re
import zipfile
from pathlib import Path

from trivsel.sources.survey_respondent_csv import load_items, load_scale_labels, load_workbook_codes

WAVES = ("2012-05", "2013-05")
MUNICIPALITIES = ("607", "169", "461")

#: respondents per municipality and wave (report, chapter 4)
RESPONDENTS = {
    ("607", "2012-05"): 31, ("607", "2013-05"): 34,
    ("169", "2012-05"): 28, ("169", "2013-05"): 32,
    ("461", "2012-05"): 32, ("461", "2013-05"): 11,
}

#: target population per unit (the same in both waves); sums: 607 42, 169 40, 461 40
POPULATION = {
    "607": {"Socialpsykiatri": 10, "Bostøtten": 8, "Ungeteam": 6, "Stoppestedet": 7, "Nestlegården": 6,
            "Ny vej": 5},
    "169": {"Vestervænget fløj A": 15, "Vestervænget fløj B": 15, "Vestervænget nat": 10},
    "461": {"Botilbuddet Fangelvej": 24, "Kollegiet Bakketoppen": 16},
}

#: the report's significant results: item → scopes ('ALL' = the three together)
SIGNIFICANT: dict[str, frozenset[str]] = {
    "2.4.1": frozenset({"461", "ALL"}), "2.4.2": frozenset({"461", "ALL"}),
    "3.1.1": frozenset({"461", "607"}), "3.1.2": frozenset({"461", "607"}),
    "3.2.1": frozenset({"461", "ALL"}), "3.4.1": frozenset({"607", "ALL"}),
    "3.4.2": frozenset({"607", "461"}), "4.1.1": frozenset({"ALL"}),
    "5.1.1": frozenset({"ALL"}), "5.1.2": frozenset({"ALL"}),
    "5.2.1": frozenset({"607", "461"}), "5.2.2": frozenset({"607", "461"}),
}

#: explicit answer counts (ordinal 1..k) for cells the report describes exactly
FIXED_COUNTS: dict[tuple[str, str, str], list[int]] = {
    ("4.1.1", "607", "2012-05"): [0, 3, 19, 9],   # 28/31 = 90 % satisfied or very satisfied
    ("4.1.1", "607", "2013-05"): [0, 0, 22, 12],  # 34/34 = 100 %
}

# item: (spread, {municipality: (baseline centre, follow-up centre)}) on the ordinal scale 1..k
DESIGN = {
    "1.1.1": (0.86, {"607": (2.69, 2.5), "169": (3.94, 3.91), "461": (3.2, 3.21)}),
    "1.1.2": (0.88, {"607": (3.04, 2.9), "169": (3.05, 3.35), "461": (3.62, 3.86)}),
    "1.2.1": (0.71, {"607": (2.67, 2.84), "169": (3.45, 3.29), "461": (2.94, 2.9)}),
    "1.3.1": (0.95, {"607": (3.49, 3.57), "169": (2.81, 3.07), "461": (3.48, 3.62)}),
    "1.3.2": (0.85, {"607": (3.02, 3.19), "169": (3.99, 3.91), "461": (3.3, 3.12)}),
    "2.1.1": (0.97, {"607": (3.57, 3.47), "169": (3.39, 3.35), "461": (2.67, 2.56)}),
    "2.1.2": (0.86, {"607": (2.42, 2.37), "169": (3.43, 3.33), "461": (2.44, 2.55)}),
    "2.2.1": (1.02, {"607": (3.85, 4.1), "169": (3.26, 3.23), "461": (2.84, 2.96)}),
    "2.3.1": (0.97, {"607": (3.69, 3.44), "169": (3.4, 3.61), "461": (3.11, 3.15)}),
    "2.3.2": (0.86, {"607": (3.77, 3.63), "169": (3.42, 3.27), "461": (2.55, 2.66)}),
    "2.4.1": (0.86, {"607": (2.46, 2.51), "169": (3.54, 3.75), "461": (2.53, 3.87)}),
    "2.4.2": (0.88, {"607": (2.46, 2.66), "169": (3.9, 4.19), "461": (2.61, 3.36)}),
    "3.1.1": (0.99, {"607": (2.44, 3.46), "169": (2.96, 2.62), "461": (3.72, 4.61)}),
    "3.1.2": (0.78, {"607": (2.53, 3.33), "169": (2.59, 2.37), "461": (3.98, 5.09)}),
    "3.2.1": (0.98, {"607": (3.87, 4.08), "169": (3.56, 3.95), "461": (2.47, 3.7)}),
    "3.2.2": (0.78, {"607": (2.92, 3.09), "169": (4.0, 3.93), "461": (3.45, 3.7)}),
    "3.3.1": (1.01, {"607": (3.84, 3.75), "169": (3.18, 3.41), "461": (2.58, 2.78)}),
    "3.3.2": (0.81, {"607": (2.65, 2.72), "169": (3.2, 3.38), "461": (2.42, 2.36)}),
    "3.4.1": (0.84, {"607": (2.41, 3.65), "169": (3.85, 4.12), "461": (3.16, 3.2)}),
    "3.4.2": (0.76, {"607": (3.61, 4.25), "169": (2.79, 2.57), "461": (3.53, 4.66)}),
    "3.5.1": (0.89, {"607": (3.42, 3.4), "169": (3.41, 3.32), "461": (2.47, 2.36)}),
    "3.6.1": (0.96, {"607": (3.34, 3.37), "169": (3.6, 3.48), "461": (3.14, 3.37)}),
    "3.7.1": (0.91, {"607": (3.23, 3.37), "169": (3.32, 3.11), "461": (2.54, 2.8)}),
    "4.1.1": (1.05, {"607": (2.88, 3.17), "169": (2.82, 3.26), "461": (2.64, 3.13)}),
    "4.2.1": (1.05, {"607": (2.75, 2.96), "169": (2.63, 2.52), "461": (2.4, 2.67)}),
    "5.1.1": (1.02, {"607": (3.8, 4.05), "169": (3.98, 4.43), "461": (3.34, 3.73)}),
    "5.1.2": (0.93, {"607": (3.94, 4.3), "169": (3.58, 3.93), "461": (3.4, 3.53)}),
    "5.2.1": (0.77, {"607": (2.43, 3.25), "169": (2.51, 2.25), "461": (3.34, 4.34)}),
    "5.2.2": (0.7, {"607": (3.67, 4.53), "169": (2.76, 2.49), "461": (3.9, 5.22)}),
    "6.1.1": (1.0, {"607": (3.37, 3.5), "169": (3.65, 3.67), "461": (3.33, 3.4)}),
    "6.2.1": (0.98, {"607": (3.36, 3.49), "169": (2.41, 2.38), "461": (2.85, 2.95)}),
    "6.3.1": (1.02, {"607": (2.6, 2.7), "169": (2.69, 2.59), "461": (2.43, 2.44)}),
    "7.1.1": (0.77, {"607": (4.89, 4.74), "169": (4.86, 4.56), "461": (4.99, 5.07)}),
    "7.2.1": (0.69, {"607": (4.98, 4.92), "169": (4.88, 4.76), "461": (4.65, 4.7)}),
    "7.3.1": (0.66, {"607": (4.93, 4.97), "169": (4.7, 4.54), "461": (4.77, 4.83)}),
    "7.4.1": (0.57, {"607": (4.61, 4.53), "169": (4.82, 4.7), "461": (4.92, 4.96)}),
}


def answer_counts(n: int, k: int, centre: float, spread: float) -> list[int]:
    """n answers on ordinal 1..k: a discretised normal curve around centre, largest-remainder rounding."""
    weights = [math.exp(-((j - centre) ** 2) / (2 * spread * spread)) for j in range(1, k + 1)]
    total = sum(weights)
    exact = [n * w / total for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(k), key=lambda j: (-(exact[j] - counts[j]), j))
    for j in order[: n - sum(counts)]:
        counts[j] += 1
    return counts


def non_answers(item_index: int, municipality: str, wave: str) -> int:
    """How many respondents leave the item unanswered ('Ved ikke' or blank): a fixed sparse pattern."""
    m = MUNICIPALITIES.index(municipality)
    w = WAVES.index(wave)
    return 1 if (item_index + 2 * m + 5 * w) % 6 == 0 else 0


def scale_points(scale: str) -> int:
    return sum(1 for row in load_scale_labels()[scale].values() if row["is_non_answer"] != "true")


def ordinal_to_label(item: dict[str, str], ordinal: int) -> str:
    """The label of an ordinal answer (higher = more favourable), using the seeds' intensity and the
    item's direction."""
    k = scale_points(item["scale"])
    intensity = ordinal if item["direction"] == "positive" else k + 1 - ordinal
    for label, row in load_scale_labels()[item["scale"]].items():
        if row["intensity"] and int(row["intensity"]) == intensity:
            return label
    raise KeyError((item["item_code"], ordinal))


def non_answer_label(scale: str) -> str:
    return next(label for label, row in load_scale_labels()[scale].items() if row["is_non_answer"] == "true")


def cell_counts(item_code: str, municipality: str, wave: str) -> tuple[list[int], int]:
    """(answer counts by ordinal 1..k, number of non-answers) for one item, municipality and wave."""
    item_index = list(DESIGN).index(item_code)
    k = scale_points(load_items()[item_code]["scale"])
    if (item_code, municipality, wave) in FIXED_COUNTS:
        counts = FIXED_COUNTS[(item_code, municipality, wave)]
        return list(counts), RESPONDENTS[(municipality, wave)] - sum(counts)
    missing = non_answers(item_index, municipality, wave)
    spread, centres = DESIGN[item_code]
    centre = centres[municipality][WAVES.index(wave)]
    return answer_counts(RESPONDENTS[(municipality, wave)] - missing, k, centre, spread), missing


def respondent_units(municipality: str, wave: str) -> list[str]:
    """Each respondent's unit: respondents spread over units in proportion to the target population."""
    population = POPULATION[municipality]
    n = RESPONDENTS[(municipality, wave)]
    total = sum(population.values())
    exact = {u: n * p / total for u, p in population.items()}
    per_unit = {u: int(x) for u, x in exact.items()}
    order = sorted(population, key=lambda u: (-(exact[u] - per_unit[u]), list(population).index(u)))
    for unit in order[: n - sum(per_unit.values())]:
        per_unit[unit] += 1
    return [u for u in population for _ in range(per_unit[u])]


def answers(municipality: str, wave: str) -> dict[str, list[int | str | None]]:
    """item_code → one answer per respondent: an ordinal (int), 'Ved ikke' (str) or None (blank)."""
    out: dict[str, list[int | str | None]] = {}
    items = load_items()
    for index, code in enumerate(DESIGN):
        counts, missing = cell_counts(code, municipality, wave)
        column: list[int | str | None] = [o for o, c in enumerate(counts, start=1) for _ in range(c)]
        for j in range(missing):
            column.append(non_answer_label(items[code]["scale"]) if (index + j) % 2 == 0 else None)
        random.Random(f"trivsel-survey-{municipality}-{wave}-{code}").shuffle(column)
        out[code] = column
    return out


def _label(item: dict[str, str], answer: int | str | None) -> str:
    if answer is None:
        return ""
    if isinstance(answer, str):
        return answer
    return ordinal_to_label(item, answer)


def _respondent_csv(municipality: str, wave: str, path: Path) -> None:
    items = load_items()
    units = respondent_units(municipality, wave)
    columns = answers(municipality, wave)
    lines = [";".join(["respondent", "enhed", "maaling", *DESIGN])]
    for i, unit in enumerate(units):
        cells = [_label(items[code], columns[code][i]) for code in DESIGN]
        lines.append(";".join([f"{wave[:4]}{i + 1:03d}", unit, wave, *cells]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


def _population_csv(municipality: str, wave: str, path: Path) -> None:
    lines = ["enhed;maaling;maalgruppe"]
    lines += [f"{unit};{wave};{n}" for unit, n in POPULATION[municipality].items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


def _workbook(municipality: str, wave: str, path: Path) -> None:
    from openpyxl import Workbook

    items = load_items()
    codes = load_workbook_codes()
    units = respondent_units(municipality, wave)
    columns = answers(municipality, wave)
    wb = Workbook()
    ws = wb.active
    ws.title = "Besvarelser"
    headers = [items[code]["text_da"] for code in DESIGN]
    headers[0] = headers[0] + " "  # as exported: a trailing space, matched anyway
    ws.append(["Respondent", "Enhed", "Måling", *headers])
    month = dt.datetime.strptime(wave, "%Y-%m")
    for i, unit in enumerate(units):
        row: list[object] = [i + 1, unit, month]
        for code in DESIGN:
            item = items[code]
            answer = columns[code][i]
            if answer is None:
                row.append(None)
                continue
            label = _label(item, answer)
            by_label = {v: c for c, v in codes[(item["scale"], item["direction"])].items()}
            row.append(by_label[label])
        ws.append(row)
    for cell in ws["C"][1:]:
        cell.number_format = "mmm yyyy"
    pop = wb.create_sheet("Målgruppe")
    pop.append(["Enhed", "Måling", "Målgruppe"])
    for unit, n in POPULATION[municipality].items():
        pop.append([unit, wave, n])
    fixed = dt.datetime(2013, 6, 1)
    wb.properties.creator = "trivsel samples"
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buffer = io.BytesIO()
    wb.save(buffer)
    path.write_bytes(_fixed_zip_times(buffer.getvalue()))


def _fixed_zip_times(data: bytes) -> bytes:
    """Rewrite the workbook's zip with fixed member times and docProps dates, so the bytes (and the
    checksum the rails register) are the same on every run."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"<dcterms:(created|modified)([^>]*)>[^<]*<",
                                 rb"<dcterms:\1\2>2013-06-01T00:00:00Z<", content)
            member = zipfile.ZipInfo(info.filename, date_time=(2013, 6, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, content)
    return out.getvalue()


def generate(inbox: Path) -> list[Path]:
    """Write the survey sample deliveries into inbox/<code>/survey/<period>/; return the files."""
    written: list[Path] = []
    for municipality in MUNICIPALITIES:
        for wave in WAVES:
            folder = Path(inbox) / municipality / "survey" / wave
            folder.mkdir(parents=True, exist_ok=True)
            if municipality == "461":
                path = folder / f"trivselsmaaling_{municipality}_{wave}.xlsx"
                _workbook(municipality, wave, path)
                written.append(path)
            else:
                answers_path = folder / f"besvarelser_{municipality}_{wave}.csv"
                population_path = folder / f"maalgruppe_{municipality}_{wave}.csv"
                _respondent_csv(municipality, wave, answers_path)
                _population_csv(municipality, wave, population_path)
                written += [answers_path, population_path]
    return written
