"""Suites: ordered task lists whose envs share one observation and one action space.

Inside a suite each task's observation ends with the task id as a one-hot of the suite's length,
which multi-head learners use to choose a head (and hide from their trunk).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np

import robotcl.envs  # noqa: F401  (registers the gymnasium ids)
from robotcl.envs.pixels import PixelLayout, PixelObservation
from robotcl.errors import UserInputError
from robotcl.registry import SUITES


class TaskIdWrapper(gym.ObservationWrapper):
    """Append a one-hot task id of length ``num_tasks`` to a flat Box observation."""

    def __init__(self, env: gym.Env, task_index: int, num_tasks: int) -> None:
        super().__init__(env)
        inner = env.observation_space
        assert isinstance(inner, gym.spaces.Box) and len(inner.shape) == 1
        self.one_hot = np.zeros(num_tasks, dtype=np.float32)
        self.one_hot[task_index] = 1.0
        self.observation_space = gym.spaces.Box(
            low=np.concatenate([inner.low, np.zeros(num_tasks)]).astype(np.float32),
            high=np.concatenate([inner.high, np.ones(num_tasks)]).astype(np.float32),
            dtype=np.float32,
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation, self.one_hot]).astype(np.float32, copy=False)


@dataclass(frozen=True)
class TaskSpec:
    """One task: a display name and how to make its gymnasium env."""

    name: str
    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """An ordered list of tasks. ``make_env(i)`` gives task i with its one-hot appended."""

    name: str
    tasks: tuple[TaskSpec, ...]
    order: str = "a"
    #: "state", "pixels" or "pixels+proprio" (rendered frames, see robotcl.envs.pixels)
    observation: str = "state"
    pixel_size: int = 100
    frames: int = 3

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def layout(self) -> PixelLayout | None:
        """Where the parts of a pixel observation are (None for state observations)."""
        if self.observation == "state":
            return None
        env = gym.make(self.tasks[0].env_id, **self.tasks[0].kwargs)
        proprio = int(env.observation_space.shape[0]) if self.observation.endswith("proprio") else 0
        env.close()
        return PixelLayout(self.frames, self.pixel_size, proprio)

    def make_env(self, index: int, render_mode: str | None = None) -> gym.Env:
        spec = self.tasks[index]
        if self.observation == "state":
            env = gym.make(spec.env_id, render_mode=render_mode, **spec.kwargs)
        else:
            size = self.pixel_size
            env = gym.make(
                spec.env_id, render_mode="rgb_array", width=size, height=size, **spec.kwargs
            )
            proprio = self.observation.endswith("proprio")
            env = PixelObservation(env, self.frames, size, proprio)
        return TaskIdWrapper(env, index, len(self))

    def select(self, names: list[str]) -> Suite:
        """The suite reduced to the named tasks, in the given order (one-hot length = count)."""
        by_name = {t.name: t for t in self.tasks}
        unknown = [n for n in names if n not in by_name]
        if unknown or not names or len(set(names)) != len(names):
            raise UserInputError(
                "tasks", f"bad task list {names}", f"distinct names from {', '.join(by_name)}"
            )
        return replace(self, tasks=tuple(by_name[n] for n in names), name=f"{self.name}{names}")

    def first(self, n: int) -> Suite:
        """The suite cut to its first ``n`` tasks (one-hot length ``n``)."""
        if not 1 <= n <= len(self):
            raise UserInputError("num_tasks", f"{n} is out of range", f"1..{len(self)}")
        return replace(
            self, tasks=self.tasks[:n], name=f"{self.name}[:{n}]" if n < len(self) else self.name
        )


DCLAW_ORDERS: dict[str, list[int]] = {
    # Task orders of the CoRL 2021 gap study (Yang et al.).
    "a": list(range(10)),
    "b": list(range(9, -1, -1)),
    "c": [3, 1, 7, 4, 2, 0, 8, 9, 5, 6],
}


def dclaw10(order: str = "a") -> Suite:
    """The ten D'Claw valve-turning tasks T0..T9 in order a, b or c."""
    if order not in DCLAW_ORDERS:
        raise UserInputError("order", f"unknown order '{order}' for dclaw10", "one of a, b, c")
    tasks = tuple(TaskSpec(f"T{k}", f"robotcl/DClawTurnT{k}-v0") for k in DCLAW_ORDERS[order])
    return Suite("dclaw10", tasks, order)


SUITES.register("dclaw10", dclaw10)


def make_suite(
    name: str,
    order: str = "a",
    num_tasks: int | None = None,
    tasks: list[str] | None = None,
    observation: str = "state",
    pixel_size: int = 100,
    frames: int = 3,
) -> Suite:
    """Build a registered suite by name; optionally keep only ``tasks`` (by name, in that
    order), then only the first ``num_tasks``; ``observation`` "pixels" or "pixels+proprio"
    renders every task (``pixel_size`` square, ``frames`` stacked)."""
    suite = SUITES.get(name)(order=order)
    if tasks:
        suite = suite.select(tasks)
    suite = suite if num_tasks is None else suite.first(num_tasks)
    return replace(suite, observation=observation, pixel_size=pixel_size, frames=frames)
