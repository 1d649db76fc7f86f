"""A deterministic national month: 98 municipalities, every scheme, `scale` multiplies the volume.

At scale 1, for one period (default 2015-12, so the monthly absence extract, the yearly incident registers
of 2015 and a survey wave `2015-12` all belong to the same run):

- hr_absence, scheme hr_payroll_csv: ~550,000 employees, ~700,000 rows (one per employee x absence code,
  one row with an empty code for an employee without absence);
- incidents: ~5,000 registrations, half the municipalities in ohs_registry_export, half in
  internal_incident_register;
- survey, scheme survey_respondent_csv + survey_population_csv: one wave of ~100,000 respondents x every
  item of dbt/seeds/survey/survey_items.csv (36 items: the parser refuses columns that are not items).

Municipality sizes follow a fixed skewed distribution (the capital ~8 %). Files are written row by row
(never a whole file in memory). The generated config goes to `$TRIVSEL_HOME/bench/municipalities.yml`.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml

from trivsel import settings

PERIOD = "2015-12"
EMPLOYEES = 550_000
RESPONDENTS = 100_000
INCIDENTS = 5_000
UNIT_SIZE = 250  # employees per unit, roughly

#: The 98 kommunekoder (2007 reform).
CODES = (
    "101", "147", "151", "153", "155", "157", "159", "161", "163", "165", "167", "169", "173", "175", "183",
    "185", "187", "190", "201", "210", "217", "219", "223", "230", "240", "250", "253", "259", "260", "265",
    "269", "270", "306", "316", "320", "326", "329", "330", "336", "340", "350", "360", "370", "376", "390",
    "400", "410", "420", "430", "440", "450", "461", "479", "480", "482", "492", "510", "530", "540", "550",
    "561", "563", "573", "575", "580", "607", "615", "621", "630", "657", "661", "665", "671", "706", "707",
    "710", "727", "730", "740", "741", "746", "751", "756", "760", "766", "773", "779", "787", "791", "810", "813",
    "820", "825", "840", "846", "849", "851", "860",
)
UNIT_KINDS = ("Plejecenter", "Bosted", "Hjemmepleje", "Dagtilbud", "Skole", "Jobcenter", "Rådhus",
              "Socialpsykiatri", "Botilbud", "Børnehus")
ABSENCE_CODES = (("SYG", "Egen sygdom"), ("DELSYG", "Delvis sygemeldt"), ("BARNSYG", "Barn syg"),
                 ("NEDSAT", "Nedsat tjeneste"), ("OEVRIG", "Øvrigt fravær"))
FULL_TIME_HOURS = Decimal("160.33")
OHS_EVENTS = ("Nærvedhændelse", "Arbejdsulykke")
OHS_INJURIES = ("Chok, som følge af aggression og trusler", "Traumatisk chok", "Andre former for chok",
                "Overfladiske skader", "Andre former for sår og overfladiske skader",
                "Forstuvninger og forstrækninger")
OHS_ABSENCE = ("Med fravær", "Uden fravær")
INTERNAL_TYPES = ("Trussel", "Vold")
INTERNAL_SUBTYPES = ("chok", "krænkende adfærd", "slag", "ukvemsord", "slag + ukvemsord", "andet")


@dataclass(frozen=True)
class Muni:
    code: str
    name: str
    weight: float
    units: tuple[str, ...]
    incident_scheme: str  # ohs_registry_export | internal_incident_register


def municipalities() -> list[Muni]:
    """98 municipalities with fixed, skewed sizes (independent of the scale)."""
    assert len(CODES) == 98, len(CODES)
    rng = random.Random(98_2007)
    raw = [rng.lognormvariate(0.0, 0.75) for _ in CODES]
    rest = sum(raw[1:])
    weights = [0.08] + [0.92 * w / rest for w in raw[1:]]  # the capital: 8 %
    out = []
    for i, (code, w) in enumerate(zip(CODES, weights, strict=True)):
        n_units = max(5, round(EMPLOYEES * w / UNIT_SIZE))
        units = tuple(f"{UNIT_KINDS[j % len(UNIT_KINDS)]} {j // len(UNIT_KINDS) + 1:02d}" for j in range(n_units))
        out.append(Muni(code, f"Kommune {code}", w, units,
                        "ohs_registry_export" if i % 2 == 0 else "internal_incident_register"))
    return out


def config_dict(munis: list[Muni]) -> dict:
    base = yaml.safe_load(Path(settings.ROOT / "config" / "municipalities.yml").read_text(encoding="utf-8"))
    existing = {str(m["code"]): m for m in base.get("municipalities", [])}
    entries = []
    for m in munis:
        units = [{"name": u, "valid_from": "2000-01-01"} for u in m.units]
        # Keep the units a registered municipality already has (its seeds, aliases and breaks refer to them).
        units = list(existing.get(m.code, {}).get("units", [])) + units
        incidents = ({"scheme": "ohs_registry_export", "files": "arbejdsskader_*.csv"}
                     if m.incident_scheme == "ohs_registry_export"
                     else {"scheme": "internal_incident_register", "files": "interne_*"})
        entries.append({
            "code": m.code,
            "name": m.name,
            "units": units,
            "sources": {
                "survey": {"cadence": "wave", "schemes": [
                    {"scheme": "survey_respondent_csv", "files": "besvarelser_*.csv"},
                    {"scheme": "survey_population_csv", "files": "maalgruppe_*.csv"}]},
                "hr_absence": {"cadence": "monthly", "schemes": [
                    {"scheme": "hr_payroll_csv", "files": "fravaer_*.csv"}]},
                "incidents": {"cadence": "yearly", "schemes": [incidents]},
                "use_of_force": {"cadence": "yearly", "schemes": []},
            },
        })
    # No schedule: the bench's scheduler (bench.executor) runs only the periods it triggers.
    return {"settings": {**base.get("settings", {}), "schedule": None}, "municipalities": entries}


def write_config(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_dict(municipalities()), allow_unicode=True, sort_keys=False, width=200)
    path.write_text("# generated by trivsel.bench.generate: 98 municipalities for the benchmark\n" + text,
                    encoding="utf-8")
    return path


def _dk(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def _folder(inbox: Path, code: str, source: str, period: str) -> Path:
    folder = inbox / code / source / period
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_absence(inbox: Path, m: Muni, period: str, n_employees: int, rng: random.Random) -> tuple[Path, int]:
    path = _folder(inbox, m.code, "hr_absence", period) / f"fravaer_{period}.csv"
    ftes = [(Decimal(f), (FULL_TIME_HOURS * Decimal(f)).quantize(Decimal("0.01")))
            for f in ("1.00", "1.00", "1.00", "0.86", "0.81", "0.75")]
    rows = 0
    with path.open("w", encoding="cp1252", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        w.writerow(("Medarbejdernr", "Enhed", "Måned", "Fraværskode", "Fraværstekst", "Fraværstimer",
                    "Normtimer", "Årsværk"))
        n_units = len(m.units)
        for k in range(n_employees):
            number = f"{int(m.code) * 1_000_000 + k + 1:09d}"
            unit = m.units[k * n_units // n_employees]
            fte, contractual = ftes[k % len(ftes)]
            fte_s, contractual_s = _dk(fte), _dk(contractual)
            r = rng.random()
            n_codes = 0 if r < 0.66 else 1 if r < 0.80 else 2 if r < 0.92 else 3
            if n_codes == 0:
                w.writerow((number, unit, period, "", "", "0,00", contractual_s, fte_s))
                rows += 1
                continue
            for code, text in rng.sample(ABSENCE_CODES, n_codes):
                hours = Decimal(rng.choice((370, 740, 1480, 2220, 3700))) / 100
                w.writerow((number, unit, period, code, text, _dk(hours), contractual_s, fte_s))
                rows += 1
    return path, rows


def _survey_labels() -> list[list[str]]:
    from trivsel.sources.survey_respondent_csv import load_items, load_scale_labels

    scales = load_scale_labels()
    out = []
    for item in load_items().values():
        labels = [lab for lab, row in scales[item["scale"]].items() if row["is_non_answer"] != "true"]
        non = [lab for lab, row in scales[item["scale"]].items() if row["is_non_answer"] == "true"]
        out.append(labels * 6 + non + [""])  # ~2-3 % non-answers or blanks
    return out


def write_survey(inbox: Path, m: Muni, period: str, n_respondents: int, rng: random.Random,
                 labels: list[list[str]]) -> tuple[list[Path], int]:
    from trivsel.sources.survey_respondent_csv import load_items

    folder = _folder(inbox, m.code, "survey", period)
    answers = folder / f"besvarelser_{m.code}_{period}.csv"
    population = folder / f"maalgruppe_{m.code}_{period}.csv"
    items = list(load_items())
    n_units = len(m.units)
    per_unit = [0] * n_units
    with answers.open("w", encoding="utf-8", newline="") as fh:
        fh.write(";".join(("respondent", "enhed", "maaling", *items)) + "\n")
        choice = rng.choice
        for k in range(n_respondents):
            u = k * n_units // n_respondents
            per_unit[u] += 1
            cells = [choice(pool) for pool in labels]
            fh.write(f"{m.code}{k + 1:07d};{m.units[u]};{period};" + ";".join(cells) + "\n")
    with population.open("w", encoding="utf-8", newline="") as fh:
        fh.write("enhed;maaling;maalgruppe\n")
        for u, n in enumerate(per_unit):
            fh.write(f"{m.units[u]};{period};{max(1, math.ceil(n / 0.75))}\n")
    return [answers, population], n_respondents * len(items) + n_units


def write_incidents(inbox: Path, m: Muni, period: str, n: int, rng: random.Random) -> tuple[Path, int]:
    import datetime as dt

    year = int(period[:4])
    folder = _folder(inbox, m.code, "incidents", period)
    start = dt.date(year, 1, 1)
    with (folder / (f"arbejdsskader_{year}.csv" if m.incident_scheme == "ohs_registry_export"
                    else f"interne_{year}.csv")).open("w", encoding="utf-8", newline="") as fh:
        path = Path(fh.name)
        if m.incident_scheme == "ohs_registry_export":
            fh.write("Sagsnr;Dato;Enhed;Hændelsestype;Skadetype;Fravær;Beskrivelse\n")
            for k in range(n):
                d = start + dt.timedelta(days=rng.randrange(365))
                fh.write(f"AS-{year}-{k + 1:05d};{d:%d-%m-%Y};{rng.choice(m.units)};{rng.choice(OHS_EVENTS)};"
                         f"{rng.choice(OHS_INJURIES)};{rng.choice(OHS_ABSENCE)};Hændelse nr. {k + 1}\n")
        else:
            fh.write("Løbenr;Dato;Sted;Type;Undertype;Beskrivelse\n")
            for k in range(n):
                d = start + dt.timedelta(days=rng.randrange(365))
                # running numbers go on across years: unique per municipality
                fh.write(f"{year}{k + 1:05d};{d:%d-%m-%Y};{rng.choice(m.units)};{rng.choice(INTERNAL_TYPES)};"
                         f"{rng.choice(INTERNAL_SUBTYPES)};Registrering {k + 1}\n")
    return path, n


def generate(inbox: Path, scale: float = 1.0, period: str = PERIOD, sources=("hr_absence", "survey", "incidents"),
             ) -> dict:
    """Write one national month into `inbox`. Returns the files and row counts per source."""
    inbox = Path(inbox)
    munis = municipalities()
    labels = _survey_labels()
    files: dict[str, list[str]] = {s: [] for s in sources}
    rows = {s: 0 for s in sources}
    employees = 0
    yearly = period.endswith("-12")
    for m in munis:
        seed = int(m.code) * 1000 + int(period[:4]) * 13 + int(period[5:])
        if "hr_absence" in sources:
            n = max(1, round(EMPLOYEES * scale * m.weight))
            employees += n
            p, r = write_absence(inbox, m, period, n, random.Random(seed + 1))
            files["hr_absence"].append(str(p))
            rows["hr_absence"] += r
        if "survey" in sources:
            n = max(1, round(RESPONDENTS * scale * m.weight))
            ps, r = write_survey(inbox, m, period, n, random.Random(seed + 2), labels)
            files["survey"] += [str(p) for p in ps]
            rows["survey"] += r
        if "incidents" in sources and yearly:
            n = max(1, round(INCIDENTS * scale * m.weight))
            p, r = write_incidents(inbox, m, period, n, random.Random(seed + 3))
            files["incidents"].append(str(p))
            rows["incidents"] += r
    return {"period": period, "scale": scale, "municipalities": len(munis), "employees": employees,
            "files": files, "rows": rows}
