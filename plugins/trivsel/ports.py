"""Free TCP ports on 127.0.0.1, for servers a test or the bench starts beside a running installation.

One implementation for the bench (its Airflow stack) and the tests (their PostgreSQL, Airflow, sshd, HTTPS
and Superset servers). A fixed offset from a known port is not safe on a shared machine: another session's
server may hold it, or an outgoing connection's ephemeral port (Linux hands out 32768-60999) may take it at
that moment, and the server then fails to bind ("Address already in use"): seen in full runs.
"""

from __future__ import annotations

import socket


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A TCP port free on 127.0.0.1 now: the first free one in [low, high) when both are given (a range a
    firewall or a browser's bookmark expects), else, or when that range is full, one the OS picks."""
    if low and high:
        for port in range(low, high):
            if _bindable(port):
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
