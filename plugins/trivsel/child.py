"""Run a long-lived child (e.g. `dbt docs serve`) so that stopping trivsel stops the child and all of its own.

Why: `subprocess.call` leaves the child running when trivsel gets SIGTERM (only Ctrl-C in a terminal
reaches the whole foreground group), so a stopped `trivsel dbt docs serve` kept serving. Here the child
gets its own process group; SIGINT, SIGTERM and SIGHUP to trivsel are passed to that whole group, and a
group that does not stop within a grace period is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from types import FrameType

GRACE_SECONDS = 5.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def run(cmd: Sequence[str], env: dict[str, str] | None = None, grace: float = GRACE_SECONDS) -> int:
    """Run cmd in its own process group and return its exit code; a signal to us stops the whole group."""
    proc = subprocess.Popen(list(cmd), env=env, start_new_session=True)
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        _stop_group(proc.pid, signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    deadline: float | None = None
    try:
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + grace
                if deadline is not None and time.monotonic() > deadline:
                    _stop_group(proc.pid, signal.SIGKILL)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        # whatever the child left behind in its group (a server's worker) goes too
        _stop_group(proc.pid, signal.SIGTERM)
    return 128 + received[0] if received and rc < 0 else rc
