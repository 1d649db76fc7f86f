"""The evaluator's connection, shared by `trivsel report` and `trivsel export`.

Both read schema certified as the role `evaluator` and nothing more (warehouse.RoleUnavailable otherwise).
A stopped warehouse is a different fact from a missing role: it gets its own error (WarehouseDown), which
the CLI prints as one line with the command that starts it, never as a psycopg traceback.
"""

from __future__ import annotations

from typing import Any

import psycopg

from trivsel import warehouse

START_HINT = "start it with `trivsel warehouse start` (or run `make demo` on a fresh machine)"


class WarehouseDown(RuntimeError):
    """The warehouse cannot be reached at all (stopped, never initialised, or refusing connections)."""


def _unreachable(exc: BaseException) -> bool:
    """True for a connection that failed before any login was tried (nothing listens on the port)."""
    text = str(exc).lower()
    return any(s in text for s in ("connection refused", "could not connect", "no such file or directory",
                                   "is the server running", "timeout expired", "could not translate host"))


def ensure_running() -> None:
    """Fail with WarehouseDown when the embedded warehouse is not running (an external one is tried)."""
    if warehouse.is_external():
        return
    state = warehouse.status()
    if state != "running":
        raise WarehouseDown(f"the warehouse is {state} ({warehouse.embedded().data_dir}): {START_HINT}")


def connect(url: str | None = None, **kwargs: Any) -> psycopg.Connection:
    """A connection that runs as `evaluator`: its own login, or `url`'s login taking the role."""
    if url is None:
        ensure_running()
    try:
        if url is None:
            return warehouse.connect(warehouse.EVALUATOR, strict=True, **kwargs)
        conn = psycopg.connect(url, **kwargs)
    except warehouse.RoleUnavailable as exc:
        if _unreachable(exc):
            raise WarehouseDown(f"cannot reach the warehouse: {START_HINT}") from None
        raise
    except psycopg.OperationalError as exc:
        if _unreachable(exc):
            raise WarehouseDown(f"cannot reach the warehouse: {START_HINT}") from None
        raise
    warehouse.take_role(conn, warehouse.EVALUATOR)
    return conn
