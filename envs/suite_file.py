"""Suites from YAML files: a name, a list of tasks, optionally named orders.

::

    name: my_suite
    tasks:
      - T3                              # a task of a registered suite, by name (robotcl list)
      - id: robotcl/DClawTurnT5-v0      # any registered gymnasium id
        name: T5-slow                   # optional: the task's name (default: the id)
        kwargs: {}                      # optional: passed to gymnasium.make
    orders:                             # optional; order a is the list above
      b: [T5-slow, T3]

Every task must share one observation and one action space, and its kwargs must be taken by its
env's constructor (or gymnasium.make); both are checked when the file is read. A file is named by
its path wherever a suite is (``suite=my_suite.yaml``, ``robotcl show``).
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import gymnasium as gym
import yaml
from gymnasium.envs.registration import load_env_creator

from robotcl.envs.orders import order_names
from robotcl.errors import UserInputError

SUFFIXES = (".yaml", ".yml")
#: a suite made by Python: ``package.module:factory`` (or ``module:Class.method``)
FACTORY_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
TASK_KEYS = ("id", "name", "kwargs")
#: keyword arguments robotcl gives an env itself (render mode, render size)
SET_BY_ROBOTCL = ("render_mode", "width", "height")
Task = TypeVar("Task")


def env_parameters(env_id: str) -> tuple[set[str], bool]:
    """The keyword arguments the constructor of ``env_id``'s env names, and whether it takes any
    (``**kwargs``)."""
    creator = gym.spec(env_id).entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)
    params = inspect.signature(creator).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def _make_parameters() -> set[str]:
    """What gymnasium.make itself takes besides the id (max_episode_steps, ...)."""
    params = inspect.signature(gym.make).parameters.values()
    return {p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD} - {"id"}


def check_kwargs(where: str, task: str, env_id: str, kwargs: Mapping[Any, Any]) -> None:
    """Refuse a kwarg that ``env_id``'s constructor (and gymnasium.make) does not take, or that
    robotcl sets itself, naming ``task`` and the key."""
    named, takes_any = env_parameters(env_id)
    allowed = sorted((named - set(SET_BY_ROBOTCL)) | _make_parameters())
    for key in kwargs:
        if key in SET_BY_ROBOTCL:
            raise UserInputError(
                where,
                f"{task}: kwarg '{key}' is set by robotcl (render mode, video.size, pixels.size)",
                f"allowed: {', '.join(allowed)}",
            )
        if not isinstance(key, str) or not (takes_any or key in allowed):
            raise UserInputError(
                where,
                f"{task}: kwarg '{key}' is not taken by {env_id}",
                f"allowed: {', '.join(allowed)}",
            )


def is_suite_file(name: str) -> bool:
    """Whether a suite name is a path to a suite file (by its suffix)."""
    return name.endswith(SUFFIXES)


@dataclass(frozen=True)
class SuiteFile(Generic[Task]):
    """What a suite file says: its name, its tasks in order (order ``a``), its named orders."""

    name: str
    tasks: tuple[Task, ...]
    orders: dict[str, tuple[str, ...]]


def read_suite_file(
    path: str, known: Mapping[str, Task], make_task: Callable[[str, str, dict[str, Any]], Task]
) -> SuiteFile[Task]:
    """Read and check the suite file ``path``: a task named by name is ``known[name]``, one given
    by id is ``make_task(name, id, kwargs)``; each named order must list every task once.
    (:func:`robotcl.envs.suites.make_suite` makes the suite and checks its spaces.)"""
    where = f"suite file '{path}'"
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise UserInputError(where, f"cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UserInputError(where, f"is not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list) or not data["tasks"]:
        raise UserInputError(where, "needs a mapping with a non-empty 'tasks' list")
    unknown = sorted(set(data) - {"name", "tasks", "orders"})
    if unknown:
        raise UserInputError(where, f"unknown key '{unknown[0]}'", "allowed: name, tasks, orders")
    tasks: list[Task] = []
    names: list[str] = []
    for k, item in enumerate(data["tasks"]):
        if isinstance(item, str) and item in known:
            tasks.append(known[item])
            names.append(item)
        elif isinstance(item, str):
            raise UserInputError(
                where,
                f"task {k} '{item}' is no robotcl task",
                f"a task name ({', '.join(sorted(known))}) or {{id: <gymnasium id>}}",
            )
        elif isinstance(item, dict) and item:
            name = item.get("name", item.get("id"))
            label = f"task {k} '{name}'" if isinstance(name, str) else f"task {k}"
            extra = sorted(str(key) for key in set(item) - set(TASK_KEYS))
            if extra:
                close = difflib.get_close_matches(extra[0].lower(), TASK_KEYS, 1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise UserInputError(
                    where, f"{label}: unknown key '{extra[0]}'{hint}", "allowed: id, name, kwargs"
                )
            if not isinstance(item.get("id"), str):
                raise UserInputError(where, f"{label}: needs an id", "{id: <gymnasium id>, ...}")
            if item["id"] not in gym.registry:
                raise UserInputError(
                    where,
                    f"{label}: '{item['id']}' is not a registered gymnasium id",
                    "import the package that registers it, or fix the id",
                )
            kwargs = item.get("kwargs")
            kwargs = {} if kwargs is None else kwargs
            if not isinstance(kwargs, dict):
                raise UserInputError(where, f"{label}: kwargs must be a mapping")
            check_kwargs(where, label, item["id"], kwargs)
            names.append(str(item.get("name", item["id"])))
            tasks.append(make_task(names[-1], item["id"], kwargs))
        else:
            raise UserInputError(where, f"task {k} ({item!r}) is neither a name nor {{id: ...}}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(where, f"task names repeat: {repeated}", "give each a distinct name")
    orders = data.get("orders") or {}
    if not isinstance(orders, dict) or not all(isinstance(v, list) for v in orders.values()):
        raise UserInputError(where, "orders must map names to lists of task names")
    name = str(data.get("name") or Path(path).stem)
    for key, order in orders.items():  # each named order lists every task once
        try:
            order_names(list(order), names, {}, name)
        except UserInputError as exc:
            raise UserInputError(where, f"orders.{key}: {exc.problem}", exc.allowed) from None
    return SuiteFile(name, tuple(tasks), {str(k): tuple(v) for k, v in orders.items()})
