"""A small client of Superset's REST API (/api/v1): login with CSRF, list, create or update by name."""

from __future__ import annotations

import json
from typing import Any

import requests


class SupersetError(RuntimeError):
    pass


class Superset:
    """One logged-in session (JWT for the API, the CSRF token Superset wants on every write)."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 120):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False  # 127.0.0.1: never through a proxy
        r = self.http.post(f"{self.base}/api/v1/security/login", timeout=timeout,
                           json={"username": username, "password": password, "provider": "db", "refresh": True})
        if r.status_code != 200:
            raise SupersetError(f"Superset login as {username!r} failed: HTTP {r.status_code}")
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        token = self.get("/api/v1/security/csrf_token/")["result"]
        self.http.headers.update({"X-CSRFToken": token, "Referer": self.base})

    def _check(self, r: requests.Response, what: str) -> Any:
        if r.status_code >= 400:
            raise SupersetError(f"{what}: HTTP {r.status_code}: {r.text[:1500]}")
        return r.json() if r.content else {}

    def get(self, path: str, **params) -> Any:
        return self._check(self.http.get(self.base + path, params=params or None, timeout=self.timeout), f"GET {path}")

    def post(self, path: str, payload: dict) -> Any:
        return self._check(self.http.post(self.base + path, json=payload, timeout=self.timeout), f"POST {path}")

    def put(self, path: str, payload: dict, **params) -> Any:
        return self._check(self.http.put(self.base + path, json=payload, params=params or None,
                                         timeout=self.timeout), f"PUT {path}")

    def list(self, resource: str, columns: tuple[str, ...] = ()) -> list[dict]:
        """Every object of /api/v1/<resource>/, page by page."""
        out: list[dict] = []
        page = 0
        cols = f",columns:!({','.join(columns)})" if columns else ""
        while True:
            body = self.get(f"/api/v1/{resource}/", q=f"(page:{page},page_size:100{cols})")
            out.extend(body.get("result", []))
            if len(out) >= body.get("count", 0) or not body.get("result"):
                return out
            page += 1

    def upsert(self, resource: str, key: str, value: str, payload: dict,
               existing: list[dict] | None = None) -> int:
        """Create /api/v1/<resource>/ unless one with `key` == `value` exists, else update it; returns its id."""
        rows = existing if existing is not None else self.list(resource, ("id", key))
        for row in rows:
            if row.get(key) == value:
                self.put(f"/api/v1/{resource}/{row['id']}", payload)
                return row["id"]
        return self.post(f"/api/v1/{resource}/", payload)["id"]


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
