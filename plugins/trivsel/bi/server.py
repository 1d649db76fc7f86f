"""Superset on this machine (`make bi` / `make bi-down`, `trivsel bi up|down|status`), without Docker.

- Its own virtual environment, `.venv-bi` (TRIVSEL_BI_VENV), from requirements-bi.lock: Superset pins
  SQLAlchemy 1.4, Airflow needs 2.x. Created once; skipped while its stamp matches the lock file's hash.
- Its metadata database is `superset` in the warehouse's PostgreSQL server, beside Airflow's `airflow`.
- One gunicorn process group (pid file and output in $TRIVSEL_HOME/superset/), started in a session of its
  own; `down` signals the whole group, so no worker outlives it.
- The admin password and the session secret key are generated (trivsel.bi.credentials), never in git.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
from psycopg import sql

from trivsel import local_airflow, settings, warehouse
from trivsel.bi import credentials

METADATA_DB = "superset"
DEFAULT_PORT = 8088
ADMIN = "admin"
START_TIMEOUT = 240.0
LOCK_FILE = "requirements-bi.lock"
HERE = Path(__file__).resolve().parent


def venv_dir() -> Path:
    return Path(os.environ.get("TRIVSEL_BI_VENV", settings.ROOT / ".venv-bi"))


def venv_bin(name: str) -> str:
    return str(venv_dir() / "bin" / name)


def home() -> Path:
    return settings.home() / "superset"


def port() -> int:
    return int(os.environ.get("TRIVSEL_BI_PORT", DEFAULT_PORT))


def base_url() -> str:
    """The local server, or TRIVSEL_BI_URL (docker-compose's superset service, provisioned from outside)."""
    return os.environ.get("TRIVSEL_BI_URL", "").rstrip("/") or f"http://127.0.0.1:{port()}"


def pid_file() -> Path:
    return home() / "superset.pid"


def log_file() -> Path:
    return home() / "superset.log"


def admin_password() -> str:
    return credentials.secret("superset_admin")


# ---------------------------------------------------------------- the virtual environment
def _lock_hash() -> str:
    return hashlib.sha256((settings.ROOT / LOCK_FILE).read_bytes()).hexdigest()


def ensure_venv(python: str = "python3.11") -> bool:
    """Create .venv-bi from the lock file unless its stamp says it is current. Returns whether it installed."""
    stamp = venv_dir() / ".installed"
    if stamp.exists() and stamp.read_text().strip() == _lock_hash():
        return False
    print(f"bi: installing Superset into {venv_dir()} from {LOCK_FILE} (once; a few minutes) ...", flush=True)
    if not (venv_dir() / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv_dir())], check=True)
    pip = [venv_bin("python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--requirement", str(settings.ROOT / LOCK_FILE)], check=True)
    stamp.write_text(_lock_hash() + "\n")
    return True


# ---------------------------------------------------------------- metadata database and environment
def metadata_url() -> str:
    return warehouse.url(METADATA_DB).replace("postgresql://", "postgresql+psycopg2://", 1)


def ensure_metadata_db() -> None:
    """The `superset` database in the warehouse's server (as Airflow's `airflow`), owned by the bootstrap login."""
    with psycopg.connect(warehouse.admin_url(), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (METADATA_DB,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(METADATA_DB)))


def env() -> dict[str, str]:
    """The environment of every Superset process: its config, metadata database and secrets; no trivsel path."""
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    home().mkdir(parents=True, exist_ok=True)
    e.update({
        "SUPERSET_CONFIG_PATH": str(HERE / "superset_config.py"),
        "SUPERSET_HOME": str(home()),
        "FLASK_APP": "superset",
        "TRIVSEL_SUPERSET_METADATA_URL": metadata_url(),
        "TRIVSEL_SUPERSET_SECRET_KEY": credentials.secret("superset_secret_key"),
        "PATH": os.pathsep.join([str(venv_dir() / "bin"), e.get("PATH", "")]),
        "NO_PROXY": "*",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
    })
    return e


def _superset(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([venv_bin("superset"), *args], env=env(), cwd=str(home()), input=stdin,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"superset {args[0]} failed:\n{warehouse.redact(r.stdout[-2000:] + r.stderr[-3000:])}")
    return r


def security(spec: dict) -> dict:
    """Run trivsel.bi.superset_security in Superset's interpreter (roles and users, idempotent)."""
    r = subprocess.run([venv_bin("python"), str(HERE / "superset_security.py")], env=env(), cwd=str(home()),
                       input=json.dumps(spec), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"Superset roles/users failed:\n{warehouse.redact(r.stderr[-3000:])}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def ensure_metadata() -> None:
    """`superset db upgrade` and `superset init` once per Superset version; the admin user every time."""
    ensure_metadata_db()
    version = subprocess.run([venv_bin("python"), "-c", "import importlib.metadata as m;"
                              "print(m.version('apache-superset'))"], capture_output=True, text=True,
                             check=True).stdout.strip()
    marker = home() / f".migrated-{version}"
    if not marker.exists():
        print("bi: migrating Superset's metadata database (once per version) ...", flush=True)
        _superset("db", "upgrade")
        _superset("init")
        marker.write_text("ok\n")
    security({"users": [{"username": ADMIN, "password": admin_password(), "role": "Admin",
                         "first_name": "trivsel", "last_name": "admin"}]})


# ---------------------------------------------------------------- the process
def pid() -> int | None:
    return local_airflow.recorded_pid(pid_file())


def healthy(timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url()}/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(timeout: float = START_TIMEOUT) -> str:
    """Start gunicorn with Superset's app (idempotent) and wait until /health answers."""
    import psutil

    if pid() is not None and healthy():
        return base_url()
    home().mkdir(parents=True, exist_ok=True)
    cmd = [venv_bin("gunicorn"), "--bind", f"127.0.0.1:{port()}", "--workers", "1", "--threads", "8",
           "--timeout", "120", "--limit-request-line", "0", "--limit-request-field_size", "0",
           "superset.app:create_app()"]
    with log_file().open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} trivsel bi up\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, env=env(), cwd=str(home()), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    pid_file().write_text(json.dumps({"pid": proc.pid, "started": psutil.Process(proc.pid).create_time()}) + "\n")
    deadline = time.monotonic() + timeout
    while not healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            tail = "\n".join(log_file().read_text(errors="replace").splitlines()[-25:])
            raise RuntimeError(f"Superset did not start on {base_url()} ({log_file()}):\n{warehouse.redact(tail)}")
        time.sleep(1)
    return base_url()


def stop(timeout: float = 30) -> bool:
    """SIGTERM to the process group (gunicorn and its workers), SIGKILL after `timeout`."""
    return local_airflow.stop_recorded(pid_file(), timeout)


def status() -> str:
    p = pid()
    if p is None:
        return "stopped"
    return f"running (pid {p}, {base_url()}, {'healthy' if healthy() else 'not answering'})"


def main(action: str) -> int:
    if action == "down":
        print("bi: stopped" if stop() else "bi: was not running")
        return 0
    if action == "status":
        print(status())
        return 0
    raise ValueError(action)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
