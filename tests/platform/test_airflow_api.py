"""trivsel.airflow_api, the REST client the bench and tests/production share, against a small fake of Airflow's
API on a free port: the calls it makes, the token it sends and renews, its errors and its waits. The real API
is exercised by tests/production (test_scheduler_e2e, test_celery_e2e) and `make bench`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from throwaway_db import free_port

from trivsel.airflow_api import Api, ApiError

DAG = "trivsel_monthly"


class FakeAirflow:
    """Hands out tokens t1, t2, ...; answers 401 to a token it was told to expire; a run reaches `final`
    after `polls` GETs; records every request (method, path, Authorization, body)."""

    def __init__(self, polls: int = 2, final: str = "success"):
        self.requests: list[tuple[str, str, str | None, dict | None]] = []
        self.tokens = 0
        self.expired: set[str] = set()
        self.polls, self.final, self.seen = polls, final, 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, status: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                auth = self.headers.get("Authorization")
                fake.requests.append((self.command, self.path, auth, body))
                if self.path == "/auth/token":
                    fake.tokens += 1
                    return self._answer(201, {"access_token": f"t{fake.tokens}"})
                if auth is None or auth.removeprefix("Bearer ") in fake.expired:
                    return self._answer(401, {"detail": "Not authenticated"})
                if self.command == "POST" and self.path == f"/api/v2/dags/{DAG}/dagRuns":
                    if "period" not in (body or {}).get("conf", {}):
                        return self._answer(400, {"detail": "conf.period is required"})
                    return self._answer(200, {"dag_run_id": "manual__1", "state": "queued"})
                if self.command == "GET" and self.path == f"/api/v2/dags/{DAG}/dagRuns/manual__1":
                    fake.seen += 1
                    return self._answer(200, {"dag_run_id": "manual__1",
                                              "state": fake.final if fake.seen >= fake.polls else "running"})
                if self.path.startswith(f"/api/v2/dags/{DAG}/dagRuns/manual__1/taskInstances?"):
                    return self._answer(200, {"task_instances": [
                        {"task_id": "plan", "map_index": -1, "state": "success"},
                        {"task_id": "ingest", "map_index": 0, "rendered_map_index": "169", "state": "running"}]})
                if "/logs/1?" in self.path:
                    return self._answer(200, {"content": [{"event": "run manual__1: periods 2014-03"},
                                                          {"event": "done"}]})
                return self._answer(404, {"detail": f"no route {self.path}"})

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAirflow:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_trigger_sends_the_token_and_the_conf_and_wait_returns_the_finished_run():
    with FakeAirflow(polls=3) as fake:
        api = Api(fake.base).login()
        run = api.trigger(DAG, {"period": "2014-03", "through": None})
        assert run["dag_run_id"] == "manual__1"
        done = api.wait_for_run(DAG, "manual__1", timeout=30, poll=0.01)
    assert done["state"] == "success"
    assert fake.seen == 3, "it polls until the run is finished, not once"
    method, path, auth, body = fake.requests[1]
    assert (method, path, auth) == ("POST", f"/api/v2/dags/{DAG}/dagRuns", "Bearer t1")
    assert body == {"logical_date": None, "conf": {"period": "2014-03", "through": None}}


def test_an_error_answer_names_the_call_its_status_and_airflow_s_reason():
    with FakeAirflow() as fake:
        api = Api(fake.base).login()
        with pytest.raises(ApiError) as exc:
            api.trigger(DAG, {"through": "2014-03"})
    assert exc.value.status == 400
    assert f"POST /api/v2/dags/{DAG}/dagRuns: HTTP 400" in str(exc.value)
    assert "conf.period is required" in str(exc.value)


def test_an_expired_token_is_renewed_once_and_the_call_repeated():
    with FakeAirflow(polls=1) as fake:
        api = Api(fake.base).login()
        fake.expired.add("t1")
        run = api.run(DAG, "manual__1")
        assert run["state"] == "success"
        assert api.token == "t2"
        # a token the server refuses again is not renewed in a loop: the 401 reaches the caller
        fake.expired.add("t2")
        fake.expired.add("t3")
        with pytest.raises(ApiError) as exc:
            api.run(DAG, "manual__1")
    assert exc.value.status == 401
    assert fake.tokens == 3


def test_a_call_without_login_is_refused_not_retried():
    with FakeAirflow() as fake:
        with pytest.raises(ApiError) as exc:
            Api(fake.base).run(DAG, "manual__1")
    assert exc.value.status == 401
    assert fake.tokens == 0


def test_a_run_that_does_not_finish_in_time_says_its_task_states():
    with FakeAirflow(polls=10**6) as fake:
        api = Api(fake.base).login()
        with pytest.raises(TimeoutError) as exc:
            api.wait_for_run(DAG, "manual__1", timeout=0.2, poll=0.01)
    assert "run manual__1 not finished" in str(exc.value)
    assert "'ingest[169]': 'running'" in str(exc.value) and "'plan[-1]': 'success'" in str(exc.value)


def test_task_log_joins_the_events_as_the_ui_shows_them():
    with FakeAirflow() as fake:
        text = Api(fake.base).login().task_log(DAG, "manual__1", "plan", 1)
    assert text == "run manual__1: periods 2014-03\ndone"
