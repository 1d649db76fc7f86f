"""The dbt behaviour-flag patch gives the module name dbt's own inspect-based lookup gives."""

from __future__ import annotations

from dbt_common import behavior_flags

from trivsel import dbt_runtime


def _source_from_here(fn):
    return fn()


def test_patched_source_names_the_calling_module():
    original = behavior_flags.BehaviorFlagRendered._default_source
    try:
        expected = _source_from_here(original)
        dbt_runtime.cheap_behavior_flag_source()
        patched = behavior_flags.BehaviorFlagRendered._default_source
        assert patched is not original
        assert _source_from_here(patched) == expected == __name__
    finally:
        behavior_flags.BehaviorFlagRendered._default_source = staticmethod(original)
