"""Suites: ordered task lists whose envs share one observation and one action space.

Inside a suite each task's observation ends with the task id as a one-hot of the suite's length,
which multi-head learners use to choose a head (and hide from their trunk).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict

from robotcl.envs import dclaw_env_id, dexterous_env_id  # importing registers the ids
from robotcl.envs.extras import MissingExtra
from robotcl.envs.orders import order_names
from robotcl.envs.pixels import PixelLayout, PixelObservation
from robotcl.envs.suite_file import (
    FACTORY_REFERENCE,
    env_parameters,
    is_suite_file,
    read_suite_file,
)
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


def takes_size(env_id: str) -> bool:
    """Whether the env of ``env_id`` is made with ``width`` and ``height`` (its render size), as
    its entry point's signature says (both named, or ``**kwargs``)."""
    named, takes_any = env_parameters(env_id)
    return {"width", "height"} <= named or takes_any


@dataclass(frozen=True)
class Suite:
    """An ordered list of tasks. ``make_env(i)`` gives task i with its one-hot appended.

    ``orders`` names task orders of the suite (task names in order); ``order`` says which one
    ``tasks`` follows (see :meth:`ordered` and :func:`robotcl.envs.orders.order_names`).
    """

    name: str
    tasks: tuple[TaskSpec, ...]
    order: str = "a"
    orders: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    #: "state", "pixels" or "pixels+proprio" (rendered frames, see robotcl.envs.pixels)
    observation: str = "state"
    pixel_size: int = 100
    frames: int = 3
    #: how rendered observations are drawn where the env takes ``render_quality`` (D'Claw's)
    pixel_render: str = "full"

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @cached_property
    def layout(self) -> PixelLayout | None:
        """Where the parts of a pixel observation are (None for state observations); made once
        per suite (it makes the first task's env to read its state width)."""
        if self.observation == "state":
            return None
        env = gym.make(self.tasks[0].env_id, **self.tasks[0].kwargs)
        proprio = int(env.observation_space.shape[0]) if self.observation.endswith("proprio") else 0
        env.close()
        return PixelLayout(self.frames, self.pixel_size, proprio)

    def make_env(
        self, index: int, render_mode: str | None = None, size: int | None = None
    ) -> gym.Env:
        """Task ``index`` with its one-hot; ``size``: the render size of a state observation's
        env (for videos), where the env takes ``width`` and ``height``."""
        spec = self.tasks[index]
        if self.observation == "state":
            kwargs = dict(spec.kwargs)
            if size is not None and takes_size(spec.env_id):  # else the env's own render size
                kwargs.update(width=size, height=size)
            env = gym.make(spec.env_id, render_mode=render_mode, **kwargs)
        else:
            size, kwargs = self.pixel_size, dict(spec.kwargs)
            if "render_quality" in env_parameters(spec.env_id)[0]:
                kwargs["render_quality"] = self.pixel_render
            env = gym.make(spec.env_id, render_mode="rgb_array", width=size, height=size, **kwargs)
            proprio = self.observation.endswith("proprio")
            env = PixelObservation(env, self.frames, size, proprio)
        return TaskIdWrapper(env, index, len(self))

    def ordered(self, order: str | list[str]) -> Suite:
        """The suite in ``order``: one of its named orders, an explicit list of all its task
        names, or ``shuffle:I`` (the permutation numpy's generator seeded I draws)."""
        names = order_names(order, self.task_names, self.orders, self.name)
        by_name = {t.name: t for t in self.tasks}
        label = order if isinstance(order, str) else "[" + ",".join(order) + "]"
        return replace(self, tasks=tuple(by_name[n] for n in names), order=label)

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


def dclaw10() -> Suite:
    """The ten D'Claw valve-turning tasks T0..T9; orders a, b, c of the CoRL 2021 study."""
    tasks = tuple(TaskSpec(f"T{k}", dclaw_env_id(f"T{k}")) for k in range(10))
    orders = {name: tuple(f"T{k}" for k in ks) for name, ks in DCLAW_ORDERS.items()}
    return Suite("dclaw10", tasks, "a", orders)


SUITES.register("dclaw10", dclaw10)


def dexterous20() -> Suite:
    """The ten valve tasks, then ten of four other families (robotcl.envs.dclaw.dexterous)."""
    from robotcl.envs.dclaw.dexterous import TASKS

    tasks = tuple(TaskSpec(t.name, dexterous_env_id(t.name)) for t in TASKS)
    return Suite("dexterous20", tasks)


SUITES.register("dexterous20", dexterous20)


def cw10() -> Suite:
    """Continual World's CW10 on Meta-World v3 (needs the extra robotcl[metaworld])."""
    from robotcl.envs.metaworld import CW10, env_id, require

    require("suite 'cw10'")
    return Suite("cw10", tuple(TaskSpec(n, env_id(n)) for n in CW10))


def cw20() -> Suite:
    """CW20: CW10 twice; the second pass's tasks are named <task>-2."""
    first = cw10().tasks
    second = tuple(replace(t, name=f"{t.name}-2") for t in first)
    return Suite("cw20", first + second)


SUITES.register("cw10", cw10)
SUITES.register("cw20", cw20)


class SuiteSettings(BaseModel):
    """A suite factory's own settings (``suite_settings.<key>``): a factory declares them as its
    ``Settings`` attribute, a subclass with fields, defaults and descriptions, and is called with
    them as keyword arguments. The shipped suites take none."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def suite_factory(name: str) -> Any:
    """The factory of a registered suite or of ``package.module:factory``; None for a suite
    file (it takes no settings)."""
    if is_suite_file(name):
        return None
    return find_suite_factory(name) if ":" in name else SUITES.get(name)


def factory_settings(factory: Any, where: str) -> type[SuiteSettings]:
    """The model of a suite factory's settings (an empty one if it declares none); ``where``
    names the suite in the error for a ``Settings`` that is not a :class:`SuiteSettings`."""
    settings = getattr(factory, "Settings", SuiteSettings)
    if not (isinstance(settings, type) and issubclass(settings, SuiteSettings)):
        raise UserInputError(
            where, "its factory's Settings is not a robotcl.envs.suites.SuiteSettings subclass"
        )
    return settings


def make_suite(
    name: str,
    order: str | list[str] = "a",
    num_tasks: int | None = None,
    tasks: list[str] | None = None,
    observation: str = "state",
    pixel_size: int = 100,
    frames: int = 3,
    settings: dict[str, Any] | None = None,
    pixel_render: str = "full",
) -> Suite:
    """Build a suite: a registered name, a suite file (``*.yaml``, see
    :mod:`robotcl.envs.suite_file`) or ``package.module:factory`` (called with ``settings``, its
    ``Settings``' keys), in ``order``; optionally keep only ``tasks`` (by name, in that order),
    then only the first ``num_tasks``; ``observation`` "pixels" or "pixels+proprio" renders
    every task (``pixel_size`` square, ``frames`` stacked, drawn at ``pixel_render`` quality
    where the env takes it)."""
    if is_suite_file(name):
        suite = load_suite_file(name)
    elif ":" in name:
        suite = load_suite_factory(name, settings)
    else:
        suite = SUITES.get(name)(**(settings or {}))
    suite = suite.ordered(order)
    if tasks:
        suite = suite.select(tasks)
    suite = suite if num_tasks is None else suite.first(num_tasks)
    return replace(
        suite,
        observation=observation,
        pixel_size=pixel_size,
        frames=frames,
        pixel_render=pixel_render,
    )


def task_index() -> dict[str, TaskSpec]:
    """Every task of the registered suites by name (what a suite file may list by name); the
    suites whose optional dependency is not installed are left out."""
    index: dict[str, TaskSpec] = {}
    for name in SUITES:
        try:
            suite = SUITES.get(name)()
        except MissingExtra:
            continue
        for task in suite.tasks:
            index.setdefault(task.name, task)
    return index


def load_suite_file(path: str) -> Suite:
    """The suite a suite file describes (first order ``a``; :mod:`robotcl.envs.suite_file`), its
    tasks' spaces checked."""
    read = read_suite_file(path, task_index(), TaskSpec)
    suite = Suite(read.name, read.tasks, "a", read.orders)
    check_spaces(suite, f"suite file '{path}'")
    return suite


def find_suite_factory(reference: str) -> Any:
    """The callable ``package.module:factory`` names; a module that cannot be imported, a
    missing or odd factory is one line naming it."""
    where = f"suite '{reference}'"
    if not FACTORY_REFERENCE.fullmatch(reference):
        raise UserInputError(
            where, "not a suite name", "a registered suite, *.yaml or module:factory"
        )
    module_name, _, attribute = reference.partition(":")
    try:
        factory: Any = importlib.import_module(module_name)
    except Exception as exc:  # the module's own import error, whatever it is
        why = (str(exc).strip().splitlines() or [""])[0]
        raise UserInputError(
            where,
            f"module '{module_name}' cannot be imported ({type(exc).__name__}: {why})",
            "install it or put its folder on PYTHONPATH",
        ) from None
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise UserInputError(where, f"module '{module_name}' has no '{attribute}'")
        factory = getattr(factory, part)
    if not callable(factory):
        raise UserInputError(where, f"'{attribute}' of {module_name} is not callable")
    return factory


def load_suite_factory(reference: str, settings: dict[str, Any] | None = None) -> Suite:
    """The suite ``package.module:factory(**settings)`` returns, its tasks' spaces checked."""
    where = f"suite '{reference}'"
    suite = find_suite_factory(reference)(**(settings or {}))
    if not isinstance(suite, Suite):
        raise UserInputError(
            where,
            f"returned {type(suite).__name__}, not a robotcl Suite",
            "see robotcl.envs.suites",
        )
    check_spaces(suite, where)
    return suite


def _make_checked(spec: TaskSpec, where: str) -> gym.Env:
    """``spec``'s env; where it fails only with the task's kwargs, one line naming them."""
    try:
        return gym.make(spec.env_id, **spec.kwargs)
    except Exception as exc:
        if not spec.kwargs:
            raise
        try:
            gym.make(spec.env_id).close()
        except Exception:
            raise exc from None  # it fails without them too: not the kwargs' fault
        why = str(exc).split(" was raised from the environment creator", 1)[0]
        given = ", ".join(f"{k}={v!r}" for k, v in spec.kwargs.items())
        kwarg = "kwargs" if len(spec.kwargs) > 1 else "kwarg"
        raise UserInputError(
            where,
            f"task {spec.name}: {kwarg} {given} refused by {spec.env_id} "
            f"({type(exc).__name__}: {(why.splitlines() or [''])[0]})",
        ) from None


def check_spaces(suite: Suite, where: str | None = None) -> None:
    """Make each task's env once: refuse kwargs it refuses, and tasks whose observation or action
    spaces differ, naming them (``where``: the suite's source, default its name)."""
    where = where or f"suite '{suite.name}'"
    first, odd = None, []
    for spec in suite.tasks:
        env = _make_checked(spec, where)
        spaces = (env.observation_space, env.action_space)
        env.close()
        if not all(isinstance(x, gym.spaces.Box) and len(x.shape) == 1 for x in spaces):
            raise UserInputError(
                where,
                f"task {spec.name} ({spec.env_id}) has {spaces[0]} / {spaces[1]}",
                "tasks need flat Box observations and actions",
            )
        if first is None:
            first = (spec.name, spaces)
            continue
        (obs0, act0), (obs, act) = first[1], spaces
        same_action = (
            act.shape == act0.shape
            and np.allclose(act.low, act0.low)
            and np.allclose(act.high, act0.high)
        )
        same_obs = obs.shape == obs0.shape and all(
            np.array_equal(a, b) for a, b in ((obs.low, obs0.low), (obs.high, obs0.high))
        )
        if not same_obs or not same_action:
            odd.append(f"{spec.name} (observation {obs.shape}, action {act.shape} "
                       f"[{act.low.min():g}, {act.high.max():g}])")  # fmt: skip
    if odd:
        name0, (obs0, act0) = first
        raise UserInputError(
            where,
            f"tasks whose spaces differ from {name0}'s (observation {obs0.shape}, action "
            f"{act0.shape} [{act0.low.min():g}, {act0.high.max():g}]): {'; '.join(odd)}",
            "every task of a suite needs the same observation and action space (shapes and bounds)",
        )
