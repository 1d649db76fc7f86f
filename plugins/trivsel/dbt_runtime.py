"""dbt inside Airflow tasks: a fix for a fixed per-invocation cost (called by the monthly DAG at import)."""

from __future__ import annotations

import sys


def cheap_behavior_flag_source() -> None:
    """Make dbt's adapter start-up cheap inside an Airflow task.

    Every dbt invocation registers the adapter, which renders its ~18 behaviour flags; for each, dbt_common
    (1.39) works out the module that declared it with `inspect.stack()`, reading the source lines of every
    frame and calling `inspect.getmodule`, which scans all of `sys.modules`. Under Airflow the stack is ~60
    frames deep and `sys.modules` holds thousands of modules, so this took ~20 % of the wall time of the
    dbt stage (measured: more than dbt's own SQL for a small model). The name only labels dbt's
    behaviour-change log event; this walks the frames and reads the module name from their globals: the
    same answer without the source files. No-op if dbt_common changes the method.
    """
    try:
        from dbt_common import behavior_flags
    except ImportError:
        return
    rendered = getattr(behavior_flags, "BehaviorFlagRendered", None)
    if rendered is None or not hasattr(rendered, "_default_source"):
        return

    def _default_source() -> str:
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_globals.get("__name__")
            if name and name != behavior_flags.__name__:
                return name
            frame = frame.f_back
        return "Unknown"

    rendered._default_source = staticmethod(_default_source)
