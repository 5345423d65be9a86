"""Test helpers for the dexterous claw env."""

from __future__ import annotations

from robotcl.envs.dclaw.dexterous import DexterousEnv


def place_valve(env: DexterousEnv, angle: float) -> None:
    """Put the valve at ``angle``, at rest, as if one step had ended there (for tests of the
    success rules on hand-placed states)."""
    env.claw.set_valve(angle)
    env.record_angle()
