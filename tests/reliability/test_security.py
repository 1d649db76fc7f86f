"""Secrets stay out of the repository; identifiers from config and files reach SQL only quoted or as parameters."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from rel_helpers import sample_file

from trivsel import loading, settings
from trivsel.config import ConfigError, parse_config
from trivsel.sources import all_schemes

HOSTILE = "x'); drop table audit.delivery; --"
HOSTILE_IDENT = 'y"; drop schema raw cascade; --'


def test_hostile_municipality_code_is_rejected_by_config_validation():
    with pytest.raises(ConfigError, match="3-digit"):
        parse_config({"municipalities": [{"code": HOSTILE, "name": "x"}]})
    with pytest.raises(ConfigError, match="unknown source"):
        parse_config({"municipalities": [{"code": "998", "name": "x", "sources": {HOSTILE: {}}}]})


def test_hostile_names_from_config_file_name_and_header_are_stored_inertly(wh, sample_root, tmp_path, monkeypatch):
    if "ohs_registry_export" not in all_schemes():
        pytest.fail("scheme module ohs_registry_export is not registered (trivsel.sources.SCHEMES)")
    config = {"municipalities": [{
        "code": "998", "name": HOSTILE,
        "units": [{"name": HOSTILE, "valid_from": "2000-01-01"}, {"name": HOSTILE_IDENT}],
        "sources": {"incidents": {"cadence": "yearly",
                                  "schemes": [{"scheme": "ohs_registry_export", "files": "arbejdsskader_*.csv"}]}},
    }]}
    path = tmp_path / "municipalities.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("TRIVSEL_CONFIG", str(path))
    loading.sync_config()
    assert wh.conn.execute("select municipality_name from raw.config_municipality").fetchone()[0] == HOSTILE
    assert {r[0] for r in wh.conn.execute("select unit_name from raw.config_unit")} == {HOSTILE, HOSTILE_IDENT}

    # a delivery whose file name, unit column and an extra header carry the same payloads
    text = sample_file(sample_root, "169/incidents/2013-12/arbejdsskader_2013.csv").read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = lines[0].split(";")
    i_unit = header.index("Enhed")
    out_lines = [lines[0] + ";" + HOSTILE_IDENT]
    for line in lines[1:]:
        fields = line.split(";")
        fields[i_unit] = HOSTILE
        out_lines.append(";".join(fields) + ";" + HOSTILE)
    name = f"arbejdsskader_{HOSTILE.replace('/', '_')}.csv"
    wh.put(f"998/incidents/2013-12/{name}", ("\n".join(out_lines) + "\n").encode("utf-8"))
    outcome = loading.ingest_municipality("998", "2013-12", HOSTILE)[0]
    assert outcome.status in ("loaded", "quarantined"), outcome.line()
    # still there, and the payloads are data
    assert wh.conn.execute("select to_regclass('audit.delivery') is not null, to_regnamespace('raw') is not null"
                           ).fetchone() == (True, True)
    assert wh.conn.execute("select file_name, run_id from audit.delivery where delivery_id = %s",
                           (outcome.delivery_id,)).fetchone() == (name, HOSTILE)
    if outcome.status == "loaded":
        units = {r[0] for r in wh.conn.execute("select distinct unit_label from raw.ohs_registration")}
        assert units == {HOSTILE}


def test_no_secret_in_the_repository(warehouse_url):
    """The warehouse password and the pseudonymisation keys in use are in no tracked file; local state is ignored."""
    from urllib.parse import urlsplit

    from trivsel import keys

    secrets = {urlsplit(warehouse_url).password}
    if keys.local_key_file().exists():
        secrets.add(keys.local_key_file().read_text().strip())
    demo_key = settings.ROOT / ".local" / "secrets" / "pseudonym.key"
    if demo_key.exists():
        secrets.add(demo_key.read_text().strip())
    secrets.discard(None)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=settings.ROOT, capture_output=True, check=True
                           ).stdout.decode().split("\0")
    for f in filter(None, files):
        p = settings.ROOT / f
        if not p.is_file():
            continue
        data = p.read_bytes()
        for s in secrets:
            assert s.encode() not in data, f"{f} contains a secret"
    ignored = subprocess.run(["git", "check-ignore", ".local/secrets/pseudonym.key", ".local/pg/superuser.password"],
                             cwd=settings.ROOT, capture_output=True, text=True).stdout.split()
    assert len(ignored) == 2, "local secrets must be git-ignored"
