"""Sample deliveries for the incident and use-of-force sources: the report's Tables 7.1–7.5, exactly.

Deterministic: the same files byte for byte on every run (fixed seed, fixed dates). Yearly deliveries go
into period YYYY-12 of the year they cover:

- Høje-Taastrup (169): the occupational-injury registry export per year (Table 7.1, plus a few 'other
  injury' registrations that are neither threats nor violence), the 2013 case review (8 threat
  registrations were also violence, all tied to a temporary resident who was not in the project), and
  yearly use-of-force counts (Table 7.5: 0, 5, 1, 4, of which 3 in 2013 concern that resident).
- Fredericia (607): reported accidents per unit and year (Table 7.2) and the internal register 2012–2013
  (Table 7.3). No use of force: Fredericia delivers nothing (not_delivered, never 0).
- Odense (461): yearly threats/violence at municipality level (Table 7.4: violence 0/1/0/0, threats 0) and
  use of force 0 every year.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

YEARS = (2010, 2011, 2012, 2013)
SEED = 4_2013

HT, ODENSE, FREDERICIA = "169", "461", "607"
HT_UNITS = ("Vestervænget fløj A", "Vestervænget fløj B", "Vestervænget nat")
NON_PARTICIPANT_REASON = ("Borger boede midlertidigt på Vestervænget og deltog ikke i projektet")

CHOK_AGGR = "Chok, som følge af aggression og trusler"
NEAR, ACCIDENT = "Nærvedhændelse", "Arbejdsulykke"
WITHOUT, WITH = "Uden fravær", "Med fravær"

# Table 7.1 per year: (event type, injury type, absence label, count). Other injuries are not in the table:
# the registry holds them too, and they cannot be tied to threats or violence.
HT_REGISTRY: dict[int, list[tuple[str, str, str, int]]] = {
    2010: [(NEAR, CHOK_AGGR, WITHOUT, 30), (ACCIDENT, CHOK_AGGR, WITHOUT, 3),
           (ACCIDENT, "Andre former for chok", WITH, 1), (ACCIDENT, "Overfladiske skader", WITHOUT, 2)],
    2011: [(NEAR, CHOK_AGGR, WITHOUT, 20), (ACCIDENT, CHOK_AGGR, WITHOUT, 4), (ACCIDENT, CHOK_AGGR, WITH, 1),
           (ACCIDENT, "Forstuvninger og forstrækninger", WITH, 1)],
    2012: [(NEAR, CHOK_AGGR, WITHOUT, 2), (NEAR, "Traumatisk chok", WITHOUT, 1), (ACCIDENT, CHOK_AGGR, WITH, 1),
           (ACCIDENT, "Andre former for sår og overfladiske skader", WITHOUT, 1)],
    2013: [(NEAR, CHOK_AGGR, WITHOUT, 6), (ACCIDENT, CHOK_AGGR, WITHOUT, 15),
           (ACCIDENT, "Overfladiske skader", WITH, 1)],
}
HT_VIOLENT_2013 = 8  # of the 15 threat registrations: also violence, and the non-participant resident's

HT_USE_OF_FORCE = {2010: (0, None), 2011: (5, None), 2012: (1, None), 2013: (4, 3)}
ODENSE_USE_OF_FORCE = {y: (0, None) for y in YEARS}

# Table 7.2: unit as the register writes it -> counts 2010..2013
FREDERICIA_REPORTED = {
    "Socialpsykiatrien": (0, 5, 0, 0),
    "Bostøtten og ungeteam": (0, 0, 2, 0),
    "Stoppestedet": (0, 0, 1, 0),
    "Nestlegården": (0, 0, 2, 10),
}
# Table 7.3: (year, unit, type, subtype, count)
FREDERICIA_INTERNAL = [
    (2012, "Nestlegården", "Trussel", "andet", 1),
    (2013, "Bostøtten", "Trussel", "chok", 2),
    (2013, "Bostøtten", "Trussel", "krænkende adfærd", 1),
    (2013, "Bostøtten", "Trussel", "ukvemsord", 1),
    (2013, "Bostøtten", "Trussel", "andet", 1),
    (2013, "Bostøtten", "Vold", "slag + ukvemsord", 1),
    (2013, "Ny vej", "Trussel", "andet", 2),
]
# Table 7.4: year -> (threats, violence, note on violence)
ODENSE_AGGREGATE = {2010: (0, 0, ""), 2011: (0, 1, "knytnæve i ansigtet"), 2012: (0, 0, ""),
                    2013: (0, 0, "")}

_TEXTS = {
    NEAR: ["Beboer truede med at slå", "Råb og trusler i fællesrummet", "Beboer kastede med service",
           "Truende adfærd ved medicinudlevering", "Beboer fulgte efter medarbejder og truede"],
    ACCIDENT: ["Medarbejder truet på livet", "Beboer gik til angreb, medarbejder i chok",
               "Grove trusler under nattevagt", "Episode med trusler ved aftensmad"],
}
_OTHER_TEXTS = {
    "Overfladiske skader": "Skrammer efter fald på trappen",
    "Andre former for sår og overfladiske skader": "Skar sig på køkkenkniv",
    "Forstuvninger og forstrækninger": "Forstuvede foden ved løft",
}


def _dates(rng: random.Random, year: int, n: int) -> list[dt.date]:
    start = dt.date(year, 1, 1)
    days = (dt.date(year, 12, 31) - start).days
    return sorted(start + dt.timedelta(days=rng.randint(0, days)) for _ in range(n))


def _fmt(d: dt.date) -> str:
    return d.strftime("%d-%m-%Y")


def _write(inbox: Path, code: str, source: str, year: int, name: str, header: list[str],
           rows: list[list[object]]) -> Path:
    folder = inbox / code / source / f"{year}-12"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    lines = [";".join(header)] + [";".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ht_registry(inbox: Path, rng: random.Random) -> list[Path]:
    paths = []
    for year in YEARS:
        rows, review = [], []
        specs = [s for s in HT_REGISTRY[year] for _ in range(s[3])]
        dates = _dates(rng, year, len(specs))
        order = list(range(len(specs)))
        rng.shuffle(order)  # the registry lists cases by date, not by type
        violent_left = HT_VIOLENT_2013 if year == 2013 else 0
        for n, (i, d) in enumerate(zip(order, dates, strict=True), start=1):
            event, injury, absence, _ = specs[i]
            case_id = f"AS-{year}-{n:04d}"
            is_threat = event == ACCIDENT and injury == CHOK_AGGR
            unit = HT_UNITS[rng.randrange(len(HT_UNITS))]
            if year == 2013 and is_threat:
                violent = violent_left > 0
                violent_left -= violent
                if violent:
                    unit = HT_UNITS[0]
                review.append([case_id, _fmt(d), "Ja" if violent else "Nej", "Ja" if violent else "Nej",
                               NON_PARTICIPANT_REASON if violent else ""])
            text = _OTHER_TEXTS.get(injury) or rng.choice(_TEXTS[event])
            rows.append([case_id, _fmt(d), unit, event, injury, absence, text])
        paths.append(_write(inbox, HT, "incidents", year, f"arbejdsskader_{year}.csv",
                            ["Sagsnr", "Dato", "Enhed", "Hændelsestype", "Skadetype", "Fravær", "Beskrivelse"],
                            rows))
        if review:
            paths.append(_write(inbox, HT, "incidents", year, f"sagsgennemgang_{year}.csv",
                                ["Sagsnr", "Dato", "Også vold", "Udeladt", "Begrundelse"], review))
    return paths


def _use_of_force(inbox: Path, code: str, counts: dict[int, tuple[int, int | None]]) -> list[Path]:
    paths = []
    for year in YEARS:
        n, k = counts[year]
        note = "Tre er relateret til samme borger, som boede midlertidigt på Vestervænget og ikke deltog i " \
               "projektet" if k else ""
        paths.append(_write(inbox, code, "use_of_force", year, f"magtanvendelser_{year}.csv",
                            ["År", "Antal magtanvendelser", "Heraf borger uden for projektet", "Bemærkning"],
                            [[year, n, k, note]]))
    return paths


def _fredericia(inbox: Path, rng: random.Random) -> list[Path]:
    paths = []
    for i, year in enumerate(YEARS):
        rows = [[unit, year, "Psykisk", counts[i]] for unit, counts in FREDERICIA_REPORTED.items()]
        paths.append(_write(inbox, FREDERICIA, "incidents", year, f"anmeldte_{year}.csv",
                            ["Sted", "År", "Skadevirkning", "Antal"], rows))
    for year in (2012, 2013):
        specs = [(u, t, s) for y, u, t, s, n in FREDERICIA_INTERNAL if y == year for _ in range(n)]
        dates = _dates(rng, year, len(specs))
        rows = [[f"{year}-{n:03d}", _fmt(d), u, t, s, f"{t} ({s})"]
                for n, (d, (u, t, s)) in enumerate(zip(dates, specs, strict=True), start=1)]
        paths.append(_write(inbox, FREDERICIA, "incidents", year, f"interne_{year}.csv",
                            ["Løbenr", "Dato", "Sted", "Type", "Undertype", "Beskrivelse"], rows))
    return paths


def _odense(inbox: Path) -> list[Path]:
    paths = []
    for year in YEARS:
        threats, violence, note = ODENSE_AGGREGATE[year]
        paths.append(_write(inbox, ODENSE, "incidents", year, f"trusler_vold_{year}.csv",
                            ["År", "Type", "Antal", "Bemærkning"],
                            [[year, "Trusler", threats, ""], [year, "Vold", violence, note]]))
    return paths


def generate(inbox: Path) -> list[Path]:
    """Write every incident and use-of-force sample delivery under `inbox`; return the files written."""
    inbox = Path(inbox)
    rng = random.Random(SEED)
    paths = _ht_registry(inbox, rng)
    paths += _use_of_force(inbox, HT, HT_USE_OF_FORCE)
    paths += _fredericia(inbox, rng)
    paths += _odense(inbox)
    paths += _use_of_force(inbox, ODENSE, ODENSE_USE_OF_FORCE)
    return paths
