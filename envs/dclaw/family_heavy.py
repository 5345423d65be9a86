"""Family ``heavy``: turn to pi a valve that resists, by 10x the damping or by dry friction
(``sticky-T7``); the benchmark's reward and success rule, as
:mod:`~robotcl.envs.dclaw.family_turn`."""

from __future__ import annotations

from dataclasses import dataclass

from .family import TaskEnv, register_family
from .family_turn import Turn


@register_family("heavy")
@dataclass(frozen=True)
class Heavy(Turn):
    """Turn a valve whose hinge has ``damping`` (N m s / rad; None: the model's) and dry
    ``friction`` (N m)."""

    damping: float | None = None
    friction: float = 0.0

    def configure(self, env: TaskEnv) -> None:
        env.claw.set_valve_dynamics(damping=self.damping, friction=self.friction)
