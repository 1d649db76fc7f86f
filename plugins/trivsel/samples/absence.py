"""Sample hr_absence deliveries: the evaluation report's 2010-2013 tables and generated 2014 monthly extracts.

- Høje-Taastrup (169): Tables 7.6-7.8 as a unit-year summary (hr_unit_year_summary) in period 2013-12;
  employee-level payroll extracts (hr_payroll_csv) for 2014-01..2014-03.
- Fredericia (607): Table 7.9 as HR statistics workbooks (hr_unit_workbook): the old layout for 2010-2012 in
  period 2012-12, the new HR system's layout for 2013 in period 2013-12; monthly workbooks 2014-01..2014-03.
- Odense (461) delivers no sick-leave data: nothing is written.

Deterministic: fixed seeds, fixed dates, no clock. (A file per municipality, source and period: a second
file in the same period would supersede the first.)
"""

from __future__ import annotations

import csv
import random
import re
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook

HISTORY_PERIODS = {"607_old": "2012-12", "history": "2013-12"}
MONTHLY_PERIODS = ("2014-01", "2014-02", "2014-03")

#: Table 7.6-7.8 (Høje-Taastrup, Vestervænget) as printed, decimal commas.
HT_TABLES = {
    "Sygefravær % af hele medarbejdergruppen": {
        "Vestervænget fløj A": ("9,64", "7,06", "13,31", "7,01"),
        "Vestervænget fløj B": ("6,18", "6,09", "7,13", "5,81"),
        "Vestervænget nat": ("8,17", "21,29", "12,74", "12,42"),
    },
    "Sygefravær % pr. medarbejder": {
        "Vestervænget fløj A": ("0,43", "0,40", "0,97", "0,59"),
        "Vestervænget fløj B": ("0,28", "0,31", "0,45", "0,45"),
        "Vestervænget nat": ("1,63", "4,16", "2,55", "2,48"),
    },
    "Sygedage pr. medarbejder": {
        "Vestervænget fløj A": ("23,1", "16,29", "31,96", "17,39"),
        "Vestervænget fløj B": ("14,56", "13,35", "15,70", "13,63"),
        "Vestervænget nat": ("13,84", "35,97", "22,53", "22,08"),
    },
}
#: FTE per unit and year [inferred: Table 7.6 / Table 7.7, scaled so the years sum to the report's 49,27 in
#: 2010 and 29,47 in 2013; the report prints only the totals].
HT_FTE = {
    "Vestervænget fløj A": ("22,30", "17,65", "13,72", "11,80"),
    "Vestervænget fløj B": ("22,00", "19,65", "15,84", "12,70"),
    "Vestervænget nat": ("4,97", "5,12", "5,00", "4,97"),
}
YEARS = (2010, 2011, 2012, 2013)

#: Table 7.9 (Fredericia) as delivered: numbers as numbers, everything else as text.
FR_OLD = {  # 2010, 2011, 2012 (old HR system)
    "Socialpsykiatri": ("7,00/(10,24)", 6.48, 5.14),
    "Bostøtten": (5.84, 3.96, 9.57),
    "Ungeteam": ("Ej oplyst", "Ej oplyst", "(19,78)"),
    "Stoppestedet": (7.72, 8.45, 7.42),
    "Nestlegården": ("-", "(2,56)", 5.50),
}
FR_2013 = {  # new HR system: its own organisation names (aliases in unit_aliases.csv)
    "Socialpsykiatri": 5.66,
    "Bostøtte": 5.95,
    "Ungeteamet": "Ej oplyst",
    "Stoppestedet": 3.70,
    "Nestlegården": 6.24,
}

#: Payroll extract: cost-centre names (aliases) and staff per unit, roughly Vestervænget in 2014.
HT_PAYROLL_UNITS = (("VV fløj A", 12, 101000), ("VV fløj B", 13, 102000), ("VV nattevagt", 5, 103000))
CODES = (("SYG", "Egen sygdom"), ("DELSYG", "Delvis sygemeldt"), ("BARNSYG", "Barn syg"),
         ("NEDSAT", "Nedsat tjeneste"), ("OEVRIG", "Øvrigt fravær"))
HOURS_PER_MONTH_FULL_TIME = Decimal("160.33")  # 37 h/week x 52/12


def _dk(value: Decimal | float, places: int = 2) -> str:
    return f"{value:.{places}f}".replace(".", ",")


def _target(inbox: Path, code: str, period: str, name: str) -> Path:
    folder = inbox / code / "hr_absence" / period
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> Path:
    with path.open("w", encoding="cp1252", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _fix_zip_dates(path: Path) -> None:
    """openpyxl stamps the current time into docProps/core.xml: rewrite it so the file is byte-stable."""
    import zipfile

    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>2014-01-15T00:00:00Z", data)
            info = zipfile.ZipInfo(item.filename, date_time=(2014, 1, 15, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    tmp.replace(path)


def _save(wb: Workbook, path: Path) -> Path:
    wb.properties.creator = "trivsel samples"
    from datetime import datetime

    wb.properties.created = wb.properties.modified = datetime(2014, 1, 15)
    wb.save(path)
    _fix_zip_dates(path)
    return path


def ht_summary(inbox: Path) -> Path:
    rows = []
    for label, units in HT_TABLES.items():
        for unit, values in units.items():
            for i, year in enumerate(YEARS):
                rows.append((unit, year, label, values[i], HT_FTE[unit][i]))
    path = _target(inbox, "169", HISTORY_PERIODS["history"], "sygefravaer_aar_2010-2013.csv")
    return _write_csv(path, ("Enhed", "År", "Nøgletal", "Værdi", "Årsværk"), rows)


def fredericia_old(inbox: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "År"
    ws.append(["Sygefravær i % af hele medarbejdergruppen, Socialpsykiatrien"])
    ws.append([])
    ws.append(["Afdeling", 2010, 2011, 2012])
    for unit, values in FR_OLD.items():
        ws.append([unit, *values])
    for row in ws.iter_rows(min_row=4, min_col=2):
        for cell in row:
            if isinstance(cell.value, float):
                cell.number_format = "0.00"
    path = _target(inbox, "607", HISTORY_PERIODS["607_old"], "sygefravaer_2010-2012.xlsx")
    return _save(wb, path)


def _new_workbook(title: str) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    info = wb.create_sheet("Rapportinfo")
    info.append(["Fraværsrapport", title])
    info.append(["System", "Nyt HR-system (fra 2013)"])
    return wb


def fredericia_2013(inbox: Path) -> Path:
    wb = _new_workbook("Sygefravær 2013 (foreløbige tal)")
    ws = wb.create_sheet("Årsoversigt")
    ws.append(["Sygefravær i pct. af hele medarbejdergruppen"])
    ws.append(["Organisation", "År", "Sygefravær pct."])
    for unit, value in FR_2013.items():
        ws.append([unit, 2013, value])
    path = _target(inbox, "607", HISTORY_PERIODS["history"], "sygefravaer_2013.xlsx")
    return _save(wb, path)


def fredericia_month(inbox: Path, period: str, rng: random.Random) -> Path:
    year, month = int(period[:4]), int(period[5:])
    wb = _new_workbook(f"Sygefravær {period}")
    ws = wb.create_sheet("Månedsoversigt")
    ws.append(["Sygefravær i pct. af hele medarbejdergruppen pr. måned"])
    ws.append(["Organisation", "År", "Måned", "Sygefravær pct."])
    for unit in ("Socialpsykiatri", "Bostøtte", "Ungeteamet", "Stoppestedet", "Nestlegården"):
        value = "Ej oplyst" if unit == "Ungeteamet" else round(rng.uniform(2.5, 9.5), 2)
        ws.append([unit, year, month, value])
    path = _target(inbox, "607", period, f"sygefravaer_{period}.xlsx")
    return _save(wb, path)


def ht_payroll(inbox: Path, period: str, rng: random.Random) -> Path:
    rows = []
    for unit, staff, first_number in HT_PAYROLL_UNITS:
        for k in range(staff):
            number = f"{first_number + 17 * k:06d}"
            fte = Decimal(random.Random(int(number)).choice(("1.00", "1.00", "1.00", "0.86", "0.81", "0.75")))
            contractual = (HOURS_PER_MONTH_FULL_TIME * fte).quantize(Decimal("0.01"))
            absences: list[tuple[str, str, Decimal]] = []
            if rng.random() < 0.30:
                days = rng.choice((1, 1, 2, 3, 5, 10))
                absences.append((*CODES[0], (Decimal(days) * Decimal("7.40") * fte).quantize(Decimal("0.01"))))
            if rng.random() < 0.05:
                absences.append((*CODES[1], Decimal(rng.choice((15, 30, 45)))))
            for code, prob in ((CODES[2], 0.08), (CODES[3], 0.03), (CODES[4], 0.10)):
                if rng.random() < prob:
                    absences.append((*code, Decimal(rng.choice(("3.70", "7.40", "14.80")))))
            if not absences:
                rows.append((number, unit, period, "", "", _dk(Decimal(0)), _dk(contractual), _dk(fte)))
            for code, text, hours in absences:
                rows.append((number, unit, period, code, text, _dk(hours), _dk(contractual), _dk(fte)))
    path = _target(inbox, "169", period, f"fravaer_{period}.csv")
    header = ("Medarbejdernr", "Enhed", "Måned", "Fraværskode", "Fraværstekst", "Fraværstimer", "Normtimer",
              "Årsværk")
    return _write_csv(path, header, rows)


def generate(inbox: Path) -> list[Path]:
    inbox = Path(inbox)
    written = [ht_summary(inbox), fredericia_old(inbox), fredericia_2013(inbox)]
    for i, period in enumerate(MONTHLY_PERIODS):
        written.append(ht_payroll(inbox, period, random.Random(16900 + i)))
        written.append(fredericia_month(inbox, period, random.Random(60700 + i)))
    return written
