"""The sample deliveries are deterministic, parse cleanly, and reproduce the report's Tables 7.1–7.5."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

from trivsel.config import load_config
from trivsel.samples.incidents import generate
from trivsel.sources import get_scheme
from trivsel.sources.base import DeliveryContext

CHOK = "Chok, som følge af aggression og trusler"


def _digest(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def test_deterministic_and_in_the_inbox_layout(tmp_path, incident_samples):
    inbox, paths = incident_samples
    again = generate(tmp_path)
    assert _digest(paths, inbox) == _digest(again, tmp_path)
    layout = Counter((p.relative_to(inbox).parts[0], p.relative_to(inbox).parts[1]) for p in paths)
    assert layout == {("169", "incidents"): 5, ("169", "use_of_force"): 4, ("607", "incidents"): 6,
                      ("461", "incidents"): 4, ("461", "use_of_force"): 4}
    assert not any(p.relative_to(inbox).parts[:2] == ("607", "use_of_force") for p in paths)
    assert {p.parent.name for p in paths} == {"2010-12", "2011-12", "2012-12", "2013-12"}


def test_every_sample_parses_under_its_configured_scheme(incident_samples):
    inbox, paths = incident_samples
    config = load_config()
    for path in paths:
        code, source, period = path.relative_to(inbox).parts[:3]
        muni = config.municipality(code)
        rule = muni.sources[source].scheme_for(path.name)
        assert rule is not None, path
        ctx = DeliveryContext(code, period, path.name, municipality=muni.raw)
        rows = list(get_scheme(rule.scheme).parse(path, ctx))
        assert ctx.issues == [] and rows, path


def test_table_7_1_high_taastrup(incident_samples):
    inbox, _ = incident_samples
    episodes = {}
    for year in (2010, 2011, 2012, 2013):
        rows = _rows(inbox / "169" / "incidents" / f"{year}-12" / f"arbejdsskader_{year}.csv")
        near = [r for r in rows if r["Hændelsestype"] == "Nærvedhændelse"]
        threats = [r for r in rows if r["Hændelsestype"] == "Arbejdsulykke" and "chok" in r["Skadetype"].lower()]
        other = [r for r in rows if r not in near and r not in threats]
        assert other, "a few other-injury registrations that are neither threats nor violence"
        episodes[year] = (len(near), len(threats))
        if year == 2010:
            assert Counter((r["Skadetype"], r["Fravær"]) for r in threats) == {
                (CHOK, "Uden fravær"): 3, ("Andre former for chok", "Med fravær"): 1}
        if year == 2012:
            assert Counter(r["Skadetype"] for r in near) == {CHOK: 2, "Traumatisk chok": 1}
    assert episodes == {2010: (30, 4), 2011: (20, 5), 2012: (3, 1), 2013: (6, 15)}
    review = _rows(inbox / "169" / "incidents" / "2013-12" / "sagsgennemgang_2013.csv")
    violent = [r for r in review if r["Også vold"] == "Ja"]
    assert len(violent) == 8 and all(r["Udeladt"] == "Ja" and r["Begrundelse"] for r in violent)
    registry = {r["Sagsnr"]: r for r in _rows(inbox / "169" / "incidents" / "2013-12" / "arbejdsskader_2013.csv")}
    assert all(registry[r["Sagsnr"]]["Skadetype"] == CHOK and registry[r["Sagsnr"]]["Hændelsestype"] == "Arbejdsulykke"
               for r in violent)  # the 8 violence episodes are 8 of the 15 threat registrations


def test_tables_7_2_to_7_5(incident_samples):
    inbox, _ = incident_samples
    reported = {y: sum(int(r["Antal"]) for r in _rows(inbox / "607" / "incidents" / f"{y}-12" / f"anmeldte_{y}.csv"))
                for y in (2010, 2011, 2012, 2013)}
    assert reported == {2010: 0, 2011: 5, 2012: 5, 2013: 10}
    internal = {y: Counter(r["Type"] for r in _rows(inbox / "607" / "incidents" / f"{y}-12" / f"interne_{y}.csv"))
                for y in (2012, 2013)}
    assert internal == {2012: {"Trussel": 1}, 2013: {"Trussel": 7, "Vold": 1}}
    odense = {y: {r["Type"]: int(r["Antal"]) for r in
                  _rows(inbox / "461" / "incidents" / f"{y}-12" / f"trusler_vold_{y}.csv")} for y in (2010, 2011, 2012, 2013)}
    assert [odense[y]["Vold"] for y in sorted(odense)] == [0, 1, 0, 0]
    assert [odense[y]["Trusler"] for y in sorted(odense)] == [0, 0, 0, 0]
    force = {(c, y): _rows(inbox / c / "use_of_force" / f"{y}-12" / f"magtanvendelser_{y}.csv")[0]
             for c in ("169", "461") for y in (2010, 2011, 2012, 2013)}
    assert [int(force[("169", y)]["Antal magtanvendelser"]) for y in (2010, 2011, 2012, 2013)] == [0, 5, 1, 4]
    assert force[("169", 2013)]["Heraf borger uden for projektet"] == "3"
    assert all(int(force[("461", y)]["Antal magtanvendelser"]) == 0 for y in (2010, 2011, 2012, 2013))
