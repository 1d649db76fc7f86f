"""`trivsel dbt` and the DAG's dbt tasks write one partial-parse state.

dbt rejects a partial parse ("Unable to do partial parsing because profile has changed") when the state check
of the saved parse differs: it hashes `--profile`/`--target` as given on the command line and the connection's
fields (`connection_info()`: host, port, user, database, schema, connect_timeout, retries, ...). Cosmos copies
the project's `dbt/target/partial_parse.msgpack` into its task when it is newer than its cache, so after a
`trivsel dbt` call the DAG's first dbt task parsed the whole project (14-17 s at scale 1 in `make bench`).

Here dbt parses the CLI's way (cli.dbt_command, dbt/profiles.yml, warehouse.dbt_env) and then the Cosmos way
(the profiles.yml Cosmos renders for dag_factory.profile, with its `--profile`/`--target`) into one target
path, from one fake Airflow connection; dbt parse connects to nothing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from trivsel import cli, settings, warehouse

#: the Airflow connection's URI, once as the embedded warehouse gives it and once with a libpq option that
#: both Cosmos (the connection's extra) and `trivsel dbt` (warehouse.dbt_env) carry over
CONN_URLS = ("postgres://u:p@127.0.0.1:5432/warehouse",
             "postgres://u:p@127.0.0.1:5432/warehouse?sslmode=require")
CONN_ID = f"trivsel_{warehouse.TRANSFORMER}"
REJECTED = "Unable to do partial parsing"


def _state_check(target: Path):
    """The state check saved in target/partial_parse.msgpack, read with dbt's own loader."""
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    data = (target / "partial_parse.msgpack").read_bytes()
    return Manifest.from_msgpack(data, decoder=extended_mashumuro_decoder).state_check


def _parse(cmd: list[str], env: dict[str, str], logs: Path) -> str:
    """dbt parse; its output and its debug log (dbt.log, where dbt says whether it parsed partially)."""
    proc = subprocess.run([*cmd, "--log-path", str(logs)], env=env, capture_output=True, text=True,
                          cwd=str(settings.dbt_dir()), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out + (logs / "dbt.log").read_text()


@pytest.fixture(params=CONN_URLS)
def one_connection(request, monkeypatch) -> str:
    """The transformer's login as the DAG has it (the Airflow connection) and as `trivsel dbt` derives it."""
    monkeypatch.setenv(warehouse.ROLE_AIRFLOW_CONN_ENV[warehouse.TRANSFORMER], request.param)
    monkeypatch.delenv(warehouse.ROLE_URL_ENV[warehouse.TRANSFORMER], raising=False)
    monkeypatch.delenv(warehouse.ROLE_PASSWORD_ENV[warehouse.TRANSFORMER], raising=False)
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return request.param


def test_cosmos_profile_args_are_the_profiles_yml_fields():
    from trivsel import dag_factory

    output = yaml.safe_load((settings.dbt_dir() / "profiles.yml").read_text())[settings.DBT_PROFILE]
    assert output["target"] == settings.DBT_TARGET
    fields = output["outputs"][settings.DBT_TARGET]
    # host, port, user, password, dbname: templated from the connection; threads: not a connection field
    fixed = {k: v for k, v in fields.items() if not str(v).startswith("{{") and k not in ("type", "threads")}
    assert dag_factory.PROFILE_ARGS == fixed


def test_dbt_command_names_the_profile_for_commands_that_parse():
    tail = ["--profile", settings.DBT_PROFILE, "--target", settings.DBT_TARGET]
    for args in (["parse"], ["run", "-s", "x"], ["docs", "generate"], ["source", "freshness"],
                 ["--log-format", "json", "build"], ["ls", "--resource-type", "model"]):
        assert cli.dbt_command(args)[-4:] == tail, args
        assert cli.dbt_command(args)[1:len(args) + 1] == args
    for args in (["deps"], ["clean"], ["init"], ["docs", "serve"], ["--version"], ["--help"], []):
        assert "--profile" not in cli.dbt_command(args), args
        assert "--target" not in cli.dbt_command(args), args
    mine = cli.dbt_command(["run", "--target", "other"])
    assert mine.count("--target") == 1 and mine[mine.index("--target") + 1] == "other"
    assert cli.dbt_command(["run", "-t", "other"]).count("--target") == 0
    assert cli.dbt_command(["run", "--profile=p"]).count("--profile") == 0


def test_dbt_profile_commands_take_the_flags():
    """Every command given `--profile`/`--target` accepts them (dbt's own click definitions)."""
    from dbt.cli.main import cli as dbt_cli

    for name in cli.DBT_PROFILE_COMMANDS:
        command = dbt_cli
        for word in name.split():
            command = command.commands[word]
        params = {p.name for p in command.params}
        assert {"profile", "target"} <= params, name
    assert cli.DBT_COMMANDS == set(dbt_cli.commands)


def test_the_cli_parse_state_is_the_dags(one_connection, tmp_path, monkeypatch):
    import cosmos.config

    from trivsel import dag_factory

    target = tmp_path / "target"
    # 1. `trivsel dbt parse`, as the bench's `trivsel dbt seed/run` leave dbt/target
    env = dict(os.environ, **warehouse.dbt_env(warehouse.TRANSFORMER))
    assert env["TRIVSEL_DBT_USER"] == "u" and env["TRIVSEL_DBT_PORT"] == "5432"
    _parse(cli.dbt_command(["parse", "--target-path", str(target)]), env, tmp_path / "cli-logs")
    cli_state = _state_check(target)

    # 2. the DAG's dbt task: the profiles.yml Cosmos renders from the Airflow connection, its flags
    prof = dag_factory.profile(CONN_ID)
    monkeypatch.setattr(cosmos.config, "is_profile_cache_enabled", lambda: False)
    profile_dir = tmp_path / "cosmos-profile"
    profile_dir.mkdir()
    with prof.ensure_profile(desired_profile_path=profile_dir / "profiles.yml") as (path, profile_env):
        rendered = yaml.safe_load(path.read_text())[prof.profile_name]["outputs"][prof.target_name]
        assert (rendered["host"], rendered["port"], rendered["user"], rendered["dbname"]) == (
            "127.0.0.1", 5432, "u", "warehouse")
        assert rendered.get("sslmode") == ("require" if "sslmode" in one_connection else None)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVSEL_DBT_")}
        out = _parse([cli.dbt_command(["--version"])[0], "parse", "--project-dir", str(settings.dbt_dir()),
                      "--profiles-dir", str(path.parent), "--profile", prof.profile_name,
                      "--target", prof.target_name, "--target-path", str(target)],
                     dict(env, **profile_env), tmp_path / "dag-logs")
    dag_state = _state_check(target)

    assert REJECTED not in out, [line for line in out.splitlines() if REJECTED in line]
    assert "Partial parsing enabled" in out
    # what dbt compares before it accepts a saved parse (ManifestLoader.is_partial_parsable)
    assert dag_state.vars_hash == cli_state.vars_hash, "--profile/--target (or vars) differ"
    assert dag_state.profile_hash == cli_state.profile_hash, "the connection's fields differ"
    assert dag_state.project_env_vars_hash == cli_state.project_env_vars_hash
    assert dag_state.project_hashes == cli_state.project_hashes
