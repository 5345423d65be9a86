"""Family ``valve``: turn the valve from 0 to a goal angle (the benchmark's tasks: to pi).

The benchmark's reward on the wrapped angle error d = goal - angle (rad): -5 d - ||q - reset
pose|| - ||fast joint velocities|| + 10 [d < 0.25] + 50 [d < 0.1]; success: d < 0.1 rad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .env import SUCCESS_THRESHOLD, compute_reward, wrap_angle
from .family import TaskEnv, TaskFamily, register_family


@register_family("valve")
@dataclass(frozen=True)
class Turn(TaskFamily):
    """Turn the valve from 0 to ``goal_angle`` (rad)."""

    goal_angle: float = math.pi

    def error(self, env: TaskEnv) -> float:
        return wrap_angle(self.goal_angle - env.valve_angle)

    def reward(self, env: TaskEnv, error: float) -> float:
        return compute_reward(env.claw.joint_positions, env.claw.joint_velocities, error)

    def success(self, env: TaskEnv, error: float) -> bool:
        return abs(error) < SUCCESS_THRESHOLD

    def obs_extras(self, env: TaskEnv) -> tuple[float, float, float]:
        return math.cos(self.goal_angle), math.sin(self.goal_angle), 0.0
