"""The dexterous claw env, and dexterous20's tasks: the ten valve tasks, then ten of four other
families.

:class:`DexterousEnv` runs one task of a family (:mod:`robotcl.envs.dclaw.family`) on the claw
of :class:`~robotcl.envs.dclaw.env.DClawTurnEnv`. Every task shares one observation (25 values,
float32, :data:`OBSERVATION`) and the claw's action (9 values):

| index | meaning |
|---|---|
| 0-8 | claw joint positions |
| 9-17 | claw joint velocities |
| 18, 19 | cos and sin of the valve angle |
| 20 | valve angular velocity over the last step (rad/s) |
| 21, 22 | cos and sin of the goal angle (0, 0 for spin tasks, which have none) |
| 23 | goal angular velocity (0 for angle tasks) |
| 24 | the family's error: goal angle - angle, wrapped; goal velocity - last half second's mean |

dexterous20's families (each on one of the benchmark's valve shapes), one file each:

- ``valve`` (``family_turn.py``): the benchmark tasks T0..T9, turn from 0 to pi (``valve-T3``);
- ``back`` (``family_back.py``): turn the other way, to -pi/2 (``back-T3``);
- ``to90`` (``family_to90.py``): turn to another target angle, +pi/2 (``to90-T3``);
- ``spin`` (``family_spin.py``): spin at a target speed, +-0.5 rad/s (``spin-T3``);
- ``heavy`` (``family_heavy.py``): turn to pi a valve with 10x the damping, or 0.3 N m of dry
  friction (``sticky-T7``).

Tasks are known to the env by name once registered (:func:`robotcl.envs.register_dexterous`,
which also gives each a gymnasium id, ``robotcl/Dexterous-<name>-v0``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robotcl.registry import Registry

# dexterous20's families (importing a family's module registers it)
from . import family_back, family_heavy, family_spin, family_to90, family_turn  # noqa: F401
from .env import MAX_OBS_VELOCITY, STEP_SECONDS, DClawTurnEnv, ObservationLayout
from .family import TaskFamily, family_task
from .family_spin import SPIN_SPEED

#: the observation of every dexterous task (after the claw's 20 values; see the module docstring)
OBSERVATION = ObservationLayout(
    (
        ("valve_speed", MAX_OBS_VELOCITY),
        ("goal_cos", 1.0),
        ("goal_sin", 1.0),
        ("goal_speed", MAX_OBS_VELOCITY),
        ("error", MAX_OBS_VELOCITY),
    )
)

#: dexterous20's tasks, in its order
TASKS: tuple[TaskFamily, ...] = (
    *(family_task("valve", f"T{k}") for k in range(10)),
    family_task("back", "T3"),
    family_task("back", "T7"),
    family_task("back", "T1"),
    family_task("to90", "T3"),
    family_task("to90", "T5"),
    family_task("spin", "T3", goal_speed=SPIN_SPEED),
    family_task("spin", "T7", goal_speed=-SPIN_SPEED),
    family_task("heavy", "T3", damping=1.0),
    family_task("heavy", "T7", "sticky-T7", friction=0.3),
    family_task("heavy", "T5", damping=1.0),
)


def _check_task(name: str, task: Any) -> None:
    if not isinstance(task, TaskFamily) or task.name != name:
        raise ValueError(f"dexterous task '{name}': {task!r} is not a TaskFamily named so")


#: the tasks DexterousEnv knows by name (filled by robotcl.envs.register_dexterous)
DEXTEROUS_TASKS: Registry[TaskFamily] = Registry("dexterous task", check=_check_task)


class DexterousEnv(gym.Env):
    """The registered task ``task`` (a name, e.g. ``back-T3``) on the claw: see the module
    docstring. ``env.task`` is the task (a :class:`~robotcl.envs.dclaw.family.TaskFamily`),
    ``env.claw`` the claw env it builds on."""

    metadata = DClawTurnEnv.metadata

    def __init__(
        self,
        task: str = "back-T3",
        render_mode: str | None = None,
        width: int = 240,
        height: int = 240,
        render_quality: str = "full",
    ) -> None:
        self.task = DEXTEROUS_TASKS.get(task)
        self.claw = DClawTurnEnv(
            self.task.valve, render_mode, width, height, self.task.camera, render_quality
        )
        self.render_mode = render_mode
        self.action_space = self.claw.action_space
        self.observation_space = OBSERVATION.space()
        self._angles: deque[float] = deque(maxlen=max(1, self.task.history) + 1)
        self.task.configure(self)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.task.reset(self, self.np_random)
        self._angles.clear()
        self.record_angle()
        error = self.error()
        return self.observe(error), self.info(error)

    def step(self, action: np.ndarray):
        self.claw.apply_action(action)
        self.record_angle()
        error = self.error()
        reward = self.task.reward(self, error)
        return self.observe(error), reward, False, False, self.info(error)

    def render(self) -> np.ndarray:
        self.claw.goal_marker = self.task.goal_marker(self)
        return self.claw.render()

    def close(self) -> None:
        self.claw.close()

    # -- the state the task's rules read ----------------------------------------------------------
    @property
    def model(self) -> mujoco.MjModel:
        return self.claw.model

    @property
    def valve_angle(self) -> float:
        return self.claw.valve_angle

    @property
    def valve_angles(self) -> tuple[float, ...]:
        """The valve's angle at the end of each of the last steps (and the reset), oldest first:
        the task's ``history`` + 1 of them, fewer early in an episode."""
        return tuple(self._angles)

    def record_angle(self) -> None:
        """Add the valve's angle now to :attr:`valve_angles` (what a reset and every step do at
        their end)."""
        self._angles.append(self.valve_angle)

    def speed(self, steps: int = 1) -> float:
        """Mean valve speed over the last ``steps`` steps (fewer right after a reset)."""
        angles = self._angles
        steps = min(steps, len(angles) - 1)
        if steps <= 0:
            return 0.0
        return (angles[-1] - angles[-1 - steps]) / (steps * STEP_SECONDS)

    # -- the task's quantities now ----------------------------------------------------------------
    def error(self) -> float:
        return self.task.error(self)

    def success(self) -> bool:
        return self.task.success(self, self.error())

    def observe(self, error: float | None = None) -> np.ndarray:
        """The observation now (``error``: :meth:`error`, when known)."""
        error = self.error() if error is None else error
        return OBSERVATION.observe(self.claw, (self.speed(), *self.task.obs_extras(self), error))

    def info(self, error: float | None = None) -> dict[str, Any]:
        """The step's info now (``error``: :meth:`error`, when known)."""
        error = self.error() if error is None else error
        return {
            "is_success": self.task.success(self, error),
            "valve_angle": self.valve_angle,
            "valve_speed": self.speed(),
            "error": error,
            "family": self.task.family,
        }
