"""Task families of the dexterous claw env: what a family is, and the registry of families.

A family is one :class:`TaskFamily` subclass (a frozen dataclass) holding all of a task's rules:
how an episode starts, the error the observation shows, the reward, the success rule, the
observation's goal values and the camera it is rendered from. One task is one instance: its name,
its valve shape and the family's parameters (a goal angle, a speed, the valve's dynamics).
:class:`~robotcl.envs.dclaw.dexterous.DexterousEnv` runs any task; the families of dexterous20
live in ``family_<name>.py`` beside this file.

A new family, from any module::

    @register_family("hold")
    @dataclass(frozen=True)
    class Hold(TaskFamily):
        def error(self, env): ...
        def reward(self, env, error): ...
        def success(self, env, error): ...
        def obs_extras(self, env): ...

    robotcl.envs.register_dexterous([family_task("hold", "T3")])  # robotcl/Dexterous-hold-T3-v0
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from robotcl.errors import UserInputError
from robotcl.registry import Registry

from .env import DClawTurnEnv
from .model import CAMERA


class TaskEnv(Protocol):
    """What a family's rules use of the env running the task
    (:class:`~robotcl.envs.dclaw.dexterous.DexterousEnv`)."""

    #: the claw underneath: its state (joint positions and velocities), model and setters
    claw: DClawTurnEnv

    @property
    def valve_angle(self) -> float: ...

    @property
    def valve_angles(self) -> tuple[float, ...]:
        """The valve's angle at the end of the last ``history`` steps and now, oldest first."""
        ...

    def speed(self, steps: int = 1) -> float:
        """Mean valve speed (rad/s) over the last ``steps`` steps."""
        ...


@dataclass(frozen=True)
class TaskFamily(ABC):
    """One task of a family (the subclass): see the module docstring.

    The rules read the env's public state (:class:`TaskEnv`): ``env.valve_angle``,
    ``env.speed(steps)``, ``env.valve_angles`` (the last ``history`` + 1 angles, one per step)
    and ``env.claw`` (the :class:`~robotcl.envs.dclaw.env.DClawTurnEnv` underneath: joint
    positions and velocities, the model).
    """

    #: the family's name (given by :func:`register_family`)
    family: ClassVar[str] = ""
    #: steps of valve angles the rules read (``env.valve_angles`` keeps this many + 1)
    history: ClassVar[int] = 1
    #: render hint: the model's camera frames are drawn from
    camera: ClassVar[str] = CAMERA

    name: str
    valve: str  # the valve shape, "T0".."T10"

    def configure(self, env: TaskEnv) -> None:  # noqa: B027  (an optional hook)
        """Once, when the env is made: change the model (e.g. the valve's dynamics). Default:
        nothing."""

    def reset(self, env: TaskEnv, rng: np.random.Generator) -> None:
        """Start an episode (``rng``: the env's generator, seeded by ``reset(seed=...)``).
        Default: the claw at its reset pose, the valve at 0, at rest."""
        env.claw.reset_pose()

    @abstractmethod
    def error(self, env: TaskEnv) -> float:
        """How far the task is from its goal now (the observation's last value)."""

    @abstractmethod
    def reward(self, env: TaskEnv, error: float) -> float:
        """The reward of the step that just ended (``error``: :meth:`error` after it)."""

    @abstractmethod
    def success(self, env: TaskEnv, error: float) -> bool:
        """Whether the task is solved now (``info["is_success"]``; read at an episode's end)."""

    @abstractmethod
    def obs_extras(self, env: TaskEnv) -> tuple[float, float, float]:
        """The observation's goal values: cos and sin of the goal angle, the goal speed."""

    def goal_marker(self, env: TaskEnv) -> float | None:
        """Where the rendered goal marker points now (rad about the valve's axis), None for no
        marker. Default: the goal angle the observation shows, none where its cos and sin are
        both 0 (a task without a goal angle)."""
        cos, sin, _ = self.obs_extras(env)
        return math.atan2(sin, cos) if (cos, sin) != (0.0, 0.0) else None


def _check_family(name: str, cls: Any) -> None:
    if not (isinstance(cls, type) and issubclass(cls, TaskFamily) and is_dataclass(cls)):
        raise UserInputError(
            f"task family '{name}'",
            f"{getattr(cls, '__name__', cls)} is not a TaskFamily dataclass",
            "subclass robotcl.envs.dclaw.family.TaskFamily under @dataclass(frozen=True)",
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise UserInputError(
            f"task family '{name}'", f"{cls.__name__} lacks {missing}", "see TaskFamily"
        )


FAMILIES: Registry[type[TaskFamily]] = Registry("task family", check=_check_family)


def register_family(name: str) -> Callable[[type[TaskFamily]], type[TaskFamily]]:
    """Class decorator: make a :class:`TaskFamily` subclass the family ``name``."""

    def add(cls: type[TaskFamily]) -> type[TaskFamily]:
        FAMILIES.register(name, cls)
        cls.family = name
        return cls

    return add


def family_task(family: str, valve: str, name: str | None = None, **params: Any) -> TaskFamily:
    """A task of the registered ``family`` on ``valve`` (named ``<family>-<valve>`` unless
    ``name`` is given), with the family's ``params``."""
    return FAMILIES.get(family)(name or f"{family}-{valve}", valve, **params)
