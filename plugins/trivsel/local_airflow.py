"""`trivsel airflow up|down|status`: Airflow on this machine, without Docker (`make up` / `make down`).

Four background processes, each in its own session (process group), with the environment of
`trivsel.airflow_env.env()`:

    api-server      the REST API and the UI, http://localhost:8080 (TRIVSEL_AIRFLOW_PORT)
    scheduler       LocalExecutor: runs the tasks itself
    dag-processor   parses dags/ into the metadata database
    triggerer       deferred tasks

Pid files and the processes' output are in $TRIVSEL_HOME/airflow/services/<name>.pid|.log; Airflow's task
logs are under $TRIVSEL_HOME/airflow/logs/. The metadata database is the `airflow` database in the
warehouse's PostgreSQL server (the embedded one, or the server of WAREHOUSE_URL).

Login: the simple auth manager (Airflow 3's default) runs with `simple_auth_manager_all_admins = True`, so
the UI and `GET /auth/token` need no password. If that is switched off, the simple auth manager's users
(`[core] simple_auth_manager_users`, default `admin:admin`) get generated passwords in
$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated, and `up` prints that file's location.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from trivsel import airflow_env, dbt_manifest, settings, warehouse

COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
HEALTH_PATH = "/api/v2/monitor/health"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 45.0


def port() -> int:
    return int(os.environ.get("TRIVSEL_AIRFLOW_PORT", DEFAULT_PORT))


def host() -> str:
    return os.environ.get("TRIVSEL_AIRFLOW_HOST", DEFAULT_HOST)


def base_url() -> str:
    h = host()
    return f"http://{'localhost' if h in ('127.0.0.1', '0.0.0.0', 'localhost') else h}:{port()}"


def services_dir() -> Path:
    return airflow_env.airflow_home() / "services"


def cores() -> int:
    """The LocalExecutor's parallelism: the machine's cores, at least 2 (one long task never holds the run)."""
    return max(2, os.cpu_count() or 1)


def scheduling_settings() -> dict[str, str]:
    """Airflow's scheduling settings for `make up` and the bench: the ONE place they are set (docs/operations.md,
    "Scheduling settings", says why each). A variable already in the environment wins.

    Measured with `python -m trivsel.bench.taskcost` (a no-op mapped DAG on this stack); each shortens the
    time between one task instance's end and the next one's start, or the CPU Airflow takes from the tasks."""
    n = str(cores())
    return {
        # as many task processes as cores: more only makes ~400 short tasks a month share the CPU
        "AIRFLOW__CORE__PARALLELISM": n,
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": n,
        # the scheduler sleeps this long only when a loop found nothing to do (default 1 s): a finished task's
        # downstream is queued within 0.2 s instead of up to a second later
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        # the scheduler's job heartbeat (default 5 s): a finished run's state is seen within a second
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        # re-parse the DAG file every 2 minutes, not every 30 s (each parse costs a core ~1-2 s during a run);
        # a changed config or DAG file shows within 2 minutes (or at once: "Reparse" in the UI)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
        # one parse process: there is one DAG file
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        # a task's calls to the Execution API (default 5 s, 5 tries): the api-server's first call after its
        # start took 11-33 s on a loaded 2-core machine, and the first task failed with a read timeout
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    }


def env() -> dict[str, str]:
    """airflow_env.env(), the scheduling settings, and what the long-running processes need to find each
    other on this port."""
    e = airflow_env.env()
    for k, v in scheduling_settings().items():
        if k not in os.environ:  # airflow_env's defaults (parallelism 8) give way; the caller's do not
            e[k] = v
    p = port()
    e["AIRFLOW__API__PORT"] = str(p)
    e["AIRFLOW__API__HOST"] = host()
    e.setdefault("AIRFLOW__API__BASE_URL", base_url())
    # the LocalExecutor's task processes report to the Execution API of this api-server
    e.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{p}/execution/")
    e.setdefault("AIRFLOW__API__WORKERS", "1")  # a laptop, and the CI machine has 2 cores
    return e


def command(name: str) -> list[str]:
    """The component's command line. The scheduler and the dag-processor fork a process per task instance or
    parse: they start through trivsel.airflow_component, which imports the heavy third-party modules first,
    so every forked process inherits them instead of importing them again."""
    airflow = airflow_env.airflow_bin()
    if name == "api-server":
        return [airflow, "api-server", "--host", host(), "--port", str(port())]
    from trivsel import airflow_component

    if name in airflow_component.FORKING:
        return [str(Path(airflow).with_name("python")), "-m", "trivsel.airflow_component", name]
    return [airflow, name]


@dataclass(frozen=True)
class Service:
    name: str

    @property
    def pid_file(self) -> Path:
        return services_dir() / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return services_dir() / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file, or a reused pid, counts as none)."""
        return recorded_pid(self.pid_file)

    def start(self, environment: dict[str, str]) -> int:
        import psutil

        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} trivsel airflow up: {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(command(self.name), env=environment, cwd=str(settings.ROOT),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        record = {"pid": proc.pid, "started": psutil.Process(proc.pid).create_time(), "command": command(self.name)}
        self.pid_file.write_text(json.dumps(record) + "\n")
        return proc.pid

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """SIGTERM to the process group (the component and its children), SIGKILL after `timeout`."""
        return stop_recorded(self.pid_file, timeout)


def recorded_pid(pid_file: Path) -> int | None:
    """The pid a pid file records ({"pid", "started"}) if that process still runs: a stale file, a reused pid
    (other start time) or a zombie counts as none. Shared by Airflow's components and Superset (trivsel.bi)."""
    try:
        record = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return None
    import psutil

    try:
        proc = psutil.Process(record["pid"])
        if abs(proc.create_time() - record["started"]) > 1 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.Error, KeyError, TypeError):
        return None
    return record["pid"]


def stop_recorded(pid_file: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM to the process group a pid file records, SIGKILL after `timeout`; removes the file. Returns
    whether a process was running."""
    pid = recorded_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.3)
    if _group_alive(pid):
        _signal_group(pid, signal.SIGKILL)
        time.sleep(0.5)
    pid_file.unlink(missing_ok=True)
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return False


SERVICES = tuple(Service(n) for n in COMPONENTS)


def health(timeout: float = 3) -> dict | None:
    """The API server's health document, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port()}{HEALTH_PATH}", timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _port_free(p: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return warehouse.redact("\n".join(text))


def _healthy(doc: dict | None, component: str) -> bool:
    return bool(doc) and (doc.get(component) or {}).get("status") == "healthy"


def up(timeout: float = START_TIMEOUT) -> int:
    warehouse.start()
    print(f"warehouse running ({'external' if warehouse.is_external() else 'embedded'})", flush=True)
    print("airflow: migrating the metadata database (once per Airflow version) ...", flush=True)
    airflow_env.ensure_metadata_db()
    dbt_manifest.ensure()  # the DAG is rendered from it (trivsel.dag_factory): built before the first parse
    environment = env()

    api = SERVICES[0]
    if api.pid() is None and not _port_free(port()):
        print(f"airflow: port {port()} is taken by another program; set TRIVSEL_AIRFLOW_PORT to a free port")
        return 1
    for svc in SERVICES:
        pid = svc.pid()
        if pid is not None:
            print(f"airflow: {svc.name} already running (pid {pid})")
        else:
            print(f"airflow: started {svc.name} (pid {svc.start(environment)})", flush=True)

    print(f"airflow: waiting for {base_url()}{HEALTH_PATH} ...", flush=True)
    deadline = time.monotonic() + timeout
    doc = None
    while time.monotonic() < deadline:
        dead = [s for s in SERVICES if s.pid() is None]
        if dead:
            for s in dead:
                print(f"airflow: {s.name} exited; last lines of {s.log_file}:\n{_tail(s.log_file)}")
            down(quiet=True)
            return 1
        doc = health()
        if _healthy(doc, "metadatabase") and _healthy(doc, "scheduler"):
            break
        time.sleep(1)
    else:
        print(f"airflow: not healthy after {timeout:.0f}s: {doc}; logs in {services_dir()}")
        return 1
    _print_where(doc, environment)
    return 0


def _print_where(doc: dict, environment: dict[str, str]) -> None:
    parts = ", ".join(f"{k} {v.get('status')}" for k, v in doc.items() if isinstance(v, dict))
    print(f"airflow: healthy ({parts})")
    login = "no login needed: simple auth manager, everyone is admin"
    if environment.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() != "true":
        pw_file = environment.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE") or str(
            airflow_env.airflow_home() / "simple_auth_manager_passwords.json.generated")
        login = f"users and generated passwords in {pw_file}"
    print(f"""
where to look:
  Airflow UI       {base_url()}   ({login})
  health           {base_url()}{HEALTH_PATH}
  REST API         {base_url()}/api/v2/dags   (token: GET {base_url()}/auth/token)
  DAG              {airflow_env.DAG_ID} (paused at creation: unpause it in the UI to let the scheduler run it)
  process logs     {services_dir()}/<name>.log   ({', '.join(COMPONENTS)})
  task logs        {airflow_env.airflow_home() / 'logs'}
  stop             trivsel airflow down   (make down also stops the warehouse)""")


def down(quiet: bool = False) -> int:
    # the api-server last: running task processes report to its Execution API while they shut down
    for svc in reversed(SERVICES):
        stopped = svc.stop()
        if not quiet:
            print(f"airflow: {svc.name} {'stopped' if stopped else 'was not running'}")
    return 0


def status() -> int:
    """One line per process; exit status 0 if all run, 3 if none, 1 if some."""
    running = 0
    for svc in SERVICES:
        pid = svc.pid()
        running += pid is not None
        state = f"running (pid {pid})" if pid else "stopped"
        print(f"{svc.name:<14} {state:<22} log: {svc.log_file}")
    doc = health() if SERVICES[0].pid() else None
    if doc:
        print("health         " + ", ".join(f"{k} {v.get('status')}" for k, v in doc.items()
                                            if isinstance(v, dict)) + f"   ({base_url()})")
    return 0 if running == len(SERVICES) else (3 if running == 0 else 1)


def main(action: str) -> int:
    return {"up": up, "down": down, "status": status}[action]()
