"""Family ``spin``: spin the valve at a target speed (+-0.5 rad/s).

Error: the goal speed - the mean speed of the last half second. The rendered goal marker turns at
the goal speed from 0 (as ROBEL's screw task draws its target). Reward: the benchmark's terms on
that error (rad/s): -5 e - ||q - reset pose|| - ||fast joint velocities|| + 10 [e < 0.5]
+ 50 [e < 0.25]. Success: the mean speed over the last two seconds within 0.25 rad/s of the
goal, and every half second of them turning the goal's way at a third of its speed or more (a
regrasp may slow the valve, not stop or reverse it). A random policy: 3 of 200 episodes on
spin-T3, 1 on spin-T7 (at 0.75 rad/s, SAC did not learn it in 120k steps). The goal angle
values of the observation are 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .env import STEP_SECONDS, compute_reward
from .family import TaskEnv, TaskFamily, register_family

SPIN_SPEED = 0.5  # rad/s: 2 rad in a 4-second episode, a finger stroke every half second
SPIN_TOLERANCE = 0.25  # rad/s
SPIN_SEGMENT = 5  # steps (half a second): the speed a spin task's reward and success judge
SPIN_WINDOW = 20  # steps (two seconds) over which each segment's speed must be on target


@dataclass(frozen=True)
class SpinJudgement:
    """What the spin success rule read at one step: the mean speed of the last two seconds and
    each half second's speed (rad/s, oldest first), and whether each condition holds."""

    mean_speed: float
    segment_speeds: tuple[float, ...]
    mean_on_target: bool  # within SPIN_TOLERANCE of the goal speed
    onward: bool  # every half second turning the goal's way at a third of its speed or more


@register_family("spin")
@dataclass(frozen=True)
class Spin(TaskFamily):
    """Spin the valve at ``goal_speed`` (rad/s; negative: clockwise)."""

    history: ClassVar[int] = SPIN_WINDOW

    goal_speed: float = SPIN_SPEED

    def error(self, env: TaskEnv) -> float:
        return self.goal_speed - env.speed(SPIN_SEGMENT)

    def reward(self, env: TaskEnv, error: float) -> float:
        return compute_reward(
            env.claw.joint_positions,
            env.claw.joint_velocities,
            error,
            near=2 * SPIN_TOLERANCE,
            close=SPIN_TOLERANCE,
        )

    def judge(self, env: TaskEnv) -> SpinJudgement | None:
        """The success rule's two conditions on the last two seconds (None before two seconds
        have passed)."""
        angles = np.asarray(env.valve_angles)
        if len(angles) <= SPIN_WINDOW:  # two full seconds of spinning
            return None
        goal = self.goal_speed
        mean = (angles[-1] - angles[-1 - SPIN_WINDOW]) / (SPIN_WINDOW * STEP_SECONDS)
        segments = np.diff(angles[::-SPIN_SEGMENT][::-1]) / (SPIN_SEGMENT * STEP_SECONDS)
        return SpinJudgement(
            mean_speed=float(mean),
            segment_speeds=tuple(float(v) for v in segments),
            mean_on_target=bool(abs(goal - mean) < SPIN_TOLERANCE),
            onward=bool((np.sign(goal) * segments >= abs(goal) / 3).all()),
        )

    def success(self, env: TaskEnv, error: float) -> bool:
        judgement = self.judge(env)
        return judgement is not None and judgement.mean_on_target and judgement.onward

    def obs_extras(self, env: TaskEnv) -> tuple[float, float, float]:
        return 0.0, 0.0, self.goal_speed

    def goal_marker(self, env: TaskEnv) -> float:
        """ROBEL's screw task draws a target that turns at the goal speed: the marker starts at
        0 and turns at ``goal_speed`` with the episode's time."""
        return self.goal_speed * float(env.claw.data.time)
