"""A small client for Airflow 3's REST API (v2): how the bench and the production tests trigger a run of the
monthly DAG on a running Airflow (`make up`, `trivsel airflow up`) and wait for its end, as a data team would.

One implementation for both, so that the bench measures the path the tests prove. Only the standard library:
the bench and the tests need a handful of calls, not the generated `apache-airflow-client`.

Token: with `simple_auth_manager_all_admins` (what `trivsel airflow up` configures) `GET /auth/token` hands one
out without a password. Everything else goes to /api/v2 with `Authorization: Bearer <token>`; a token that
expired during a long wait (a national month under the bench) is renewed once, on its 401.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

#: a DAG run's states after which it does not change any more
FINISHED = frozenset({"success", "failed"})


class ApiError(RuntimeError):
    """An HTTP error answer of the API, with its status and the start of its body (Airflow says there what
    was wrong: a conf the DAG rejects, a DAG not parsed yet)."""

    def __init__(self, method: str, path: str, status: int, body: bytes):
        self.status = status
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000]!r}")


@dataclass
class Api:
    """The API at `base` (http://127.0.0.1:<port>); `login()` first."""

    base: str
    token: str = field(default="", repr=False)

    def _send(self, method: str, path: str, body: dict | None, timeout: float) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise ApiError(method, path, exc.code, exc.read()) from exc

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        """One call; its JSON answer. Raises ApiError on an HTTP error, URLError/OSError when nothing answers."""
        try:
            return self._send(method, path, body, timeout)
        except ApiError as exc:
            if exc.status != 401 or not self.token:
                raise
            self.login()
            return self._send(method, path, body, timeout)

    def login(self) -> Api:
        self.token = ""
        self.token = self._send("GET", "/auth/token", None, 30)["access_token"]
        return self

    def get(self, path: str, **query) -> dict:
        q = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self.request("GET", path + q)

    def post(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body)

    # --- a DAG and its runs ------------------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}")

    def wait_for_dag(self, dag_id: str, timeout: float = 300, unscheduled: bool = False, poll: float = 2) -> dict:
        """The DAG once the dag-processor has parsed it; a TimeoutError naming the import errors otherwise.

        unscheduled: also wait until the parsed DAG has no schedule (a config with `schedule: null`). A DAG a
        `dags test` run serialized before is listed at once, with the schedule it was parsed with then;
        unpausing it before this dag-processor re-parsed it would start a scheduled run.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for d in self.get("/api/v2/dags", limit=100)["dags"]:
                if d["dag_id"] == dag_id and not (unscheduled and (d.get("timetable_summary")
                                                                   or d.get("next_dagrun_run_after"))):
                    return d
            time.sleep(poll)
        errors = self.get("/api/v2/importErrors")["import_errors"]
        raise TimeoutError(f"{dag_id} not parsed in {timeout:.0f}s; import errors:\n"
                           + "\n".join(e["stack_trace"][-2000:] for e in errors))

    def trigger(self, dag_id: str, conf: dict, logical_date: str | None = None) -> dict:
        """A new run of `dag_id` with `conf`; its document (`dag_run_id`, `state`, ...)."""
        return self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date, "conf": conf})

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 5) -> dict:
        """The run's document once it is finished (FINISHED); a TimeoutError with its task states otherwise."""
        deadline = time.monotonic() + timeout
        run: dict = {}
        while time.monotonic() < deadline:
            try:
                run = self.run(dag_id, run_id)
            except (TimeoutError, urllib.error.URLError):  # a busy api-server (one worker) did not answer in
                time.sleep(poll)                            # time: the run goes on, so ask again
                continue
            if run["state"] in FINISHED:
                return run
            time.sleep(poll)
        raise TimeoutError(f"run {run_id} not finished after {timeout:.0f}s: {run.get('state')}; "
                           f"tasks: {self.task_states(dag_id, run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        rid = urllib.parse.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances", limit=1000)["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """{"task_id[map index]": state} of the run's task instances."""
        return {f"{t['task_id']}[{t.get('rendered_map_index') or t['map_index']}]": t["state"]
                for t in self.task_instances(dag_id, run_id)}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task attempt's log as text (the lines' `event` fields), as the UI shows it."""
        rid = urllib.parse.quote(run_id, safe="")
        doc = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task_id}/logs/{try_number}",
                       map_index=map_index, full_content="true")
        content = doc.get("content")
        if isinstance(content, str):
            return content
        return "\n".join(str(line.get("event", "")) if isinstance(line, dict) else str(line)
                         for line in content or [])
