"""The 20 dexterous tasks of the claw: the ten valve tasks, then ten of four other families.

Every task shares one observation (25 values, float32) and the claw's action (9 values):

| index | meaning |
|---|---|
| 0-8 | claw joint positions |
| 9-17 | claw joint velocities |
| 18, 19 | cos and sin of the valve angle |
| 20 | valve angular velocity over the last step (rad/s) |
| 21, 22 | cos and sin of the goal angle (0, 0 for spin tasks, which have none) |
| 23 | goal angular velocity (0 for angle tasks) |
| 24 | error: goal angle - angle, wrapped; goal velocity - last half second's mean (spin) |

Families (each on one of the benchmark's valve shapes):

- ``valve``: the benchmark tasks T0..T9, turn from 0 to pi (``valve-T3``);
- ``back``: turn the other way, to -pi/2 (``back-T3``);
- ``to90``: turn to another target angle, +pi/2 (``to90-T3``);
- ``spin``: spin at a target speed, +-0.5 rad/s (``spin-T3``); success: the mean speed over the
  last two seconds within 0.25 rad/s of the target, and every half second of them turning the
  goal's way at a third of its speed or more (a regrasp may slow the valve, not stop or reverse
  it). A random policy: 3 of 200 episodes on spin-T3, 1 on spin-T7 (at 0.75 rad/s, SAC
  did not learn it in 120k steps);
- ``heavy``: turn to pi a valve with 10x the damping, or 0.3 N m of dry friction (``sticky-T7``).

Angle tasks keep the benchmark's reward and success (|error| < 0.1 rad at the episode's end); spin
tasks use the same terms on the error of the last half second's mean speed: -5 e - ||q - reset
pose|| - ||fast joint velocities|| + 10 [e < 0.5] + 50 [e < 0.25] (rad/s).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .env import (
    FRAME_SKIP,
    MAX_OBS_VELOCITY,
    N_JOINTS,
    SUCCESS_THRESHOLD,
    DClawTurnEnv,
    compute_reward,
    wrap_angle,
)
from .model import TIMESTEP

STEP_SECONDS = FRAME_SKIP * TIMESTEP  # 0.1 s
SPIN_SPEED = 0.5  # rad/s: 2 rad in a 4-second episode, a finger stroke every half second
SPIN_TOLERANCE = 0.25  # rad/s
SPIN_SEGMENT = 5  # steps (half a second): the speed a spin task's reward and success judge
SPIN_WINDOW = 20  # steps (two seconds) over which each segment's speed must be on target


@dataclass(frozen=True)
class DexterousTask:
    """One task: a family, the valve shape, its goal and the valve's physics."""

    name: str
    family: str
    valve: str
    goal_angle: float | None = math.pi  # None: a spin task
    goal_speed: float = 0.0
    damping: float | None = None  # valve hinge damping (N m s / rad); None: the model's
    friction: float = 0.0  # valve hinge dry friction (N m)


TASKS: tuple[DexterousTask, ...] = (
    *(DexterousTask(f"valve-T{k}", "valve", f"T{k}") for k in range(10)),
    DexterousTask("back-T3", "back", "T3", -math.pi / 2),
    DexterousTask("back-T7", "back", "T7", -math.pi / 2),
    DexterousTask("back-T1", "back", "T1", -math.pi / 2),
    DexterousTask("to90-T3", "to90", "T3", math.pi / 2),
    DexterousTask("to90-T5", "to90", "T5", math.pi / 2),
    DexterousTask("spin-T3", "spin", "T3", None, SPIN_SPEED),
    DexterousTask("spin-T7", "spin", "T7", None, -SPIN_SPEED),
    DexterousTask("heavy-T3", "heavy", "T3", damping=1.0),
    DexterousTask("sticky-T7", "heavy", "T7", friction=0.3),
    DexterousTask("heavy-T5", "heavy", "T5", damping=1.0),
)
BY_NAME = {t.name: t for t in TASKS}


class DexterousEnv(DClawTurnEnv):
    """Task ``task`` of dexterous20 (a name of :data:`TASKS`); see the module docstring."""

    def __init__(
        self,
        task: str = "back-T3",
        render_mode: str | None = None,
        width: int = 240,
        height: int = 240,
    ) -> None:
        self.task = BY_NAME[task]
        super().__init__(self.task.valve, render_mode, width, height)
        valve_dof = N_JOINTS
        if self.task.damping is not None:
            self.model.dof_damping[valve_dof] = self.task.damping
        self.model.dof_frictionloss[valve_dof] = self.task.friction
        high = np.empty(25, np.float32)
        high[:N_JOINTS] = np.float32(math.pi)
        high[N_JOINTS : 2 * N_JOINTS] = MAX_OBS_VELOCITY
        high[18:20] = 1.0
        high[20] = MAX_OBS_VELOCITY
        high[21:23] = 1.0
        high[23] = MAX_OBS_VELOCITY
        high[24] = MAX_OBS_VELOCITY
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self._angles: deque[float] = deque(maxlen=SPIN_WINDOW + 1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        gym.Env.reset(self, seed=seed)  # the claw env's own reset would also observe
        self._reset_pose()
        self._angles.clear()
        self._angles.append(self.valve_angle)
        error = self.error()
        return self._dexterous_obs(error), self._dexterous_info(error)

    def step(self, action: np.ndarray):
        self._act(action)
        self._angles.append(self.valve_angle)
        error = self.error()
        if self.task.goal_angle is None:
            # the benchmark's terms on the speed error (rad/s)
            reward = compute_reward(
                self._qpos, self._qvel, error, near=2 * SPIN_TOLERANCE, close=SPIN_TOLERANCE
            )
        else:
            reward = compute_reward(self._qpos, self._qvel, error)
        return self._dexterous_obs(error), reward, False, False, self._dexterous_info(error)

    def place_valve(self, angle: float) -> None:
        """Put the valve at ``angle``, at rest, as if one step had ended there (for tests of
        the success test on hand-placed states)."""
        import mujoco

        self.data.qpos[N_JOINTS], self.data.qvel[N_JOINTS] = angle, 0.0
        mujoco.mj_forward(self.model, self.data)
        self._angles.append(angle)

    # -- the task's quantities -----------------------------------------------------------------
    def speed(self, steps: int = 1) -> float:
        """Mean valve speed over the last ``steps`` steps (fewer right after a reset)."""
        angles = self._angles
        steps = min(steps, len(angles) - 1)
        if steps <= 0:
            return 0.0
        return (angles[-1] - angles[-1 - steps]) / (steps * STEP_SECONDS)

    def error(self) -> float:
        """Goal angle - angle (wrapped), or goal speed - the last half second's speed (spin)."""
        if self.task.goal_angle is None:
            return self.task.goal_speed - self.speed(SPIN_SEGMENT)
        return wrap_angle(self.task.goal_angle - self.valve_angle)

    def success(self) -> bool:
        if self.task.goal_angle is None:
            angles = np.asarray(self._angles)
            if len(angles) <= SPIN_WINDOW:  # two full seconds of spinning
                return False
            goal = self.task.goal_speed
            mean = (angles[-1] - angles[-1 - SPIN_WINDOW]) / (SPIN_WINDOW * STEP_SECONDS)
            segments = np.diff(angles[::-SPIN_SEGMENT][::-1]) / (SPIN_SEGMENT * STEP_SECONDS)
            onward = np.sign(goal) * segments >= abs(goal) / 3
            return bool(abs(goal - mean) < SPIN_TOLERANCE and onward.all())
        return abs(self.error()) < SUCCESS_THRESHOLD

    def _dexterous_obs(self, error: float) -> np.ndarray:
        angle, goal = self.valve_angle, self.task.goal_angle
        obs = np.empty(25, np.float32)
        obs[:N_JOINTS] = self._qpos
        obs[N_JOINTS : 2 * N_JOINTS] = self._qvel
        obs[18], obs[19] = math.cos(angle), math.sin(angle)
        obs[20] = self.speed()
        obs[21:23] = (0.0, 0.0) if goal is None else (math.cos(goal), math.sin(goal))
        obs[23] = self.task.goal_speed
        obs[24] = error
        return obs

    def _dexterous_info(self, error: float) -> dict[str, Any]:
        return {
            "is_success": self.success(),
            "valve_angle": self.valve_angle,
            "valve_speed": self.speed(),
            "error": error,
            "family": self.task.family,
        }
