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

Every task must share one observation and one action space (checked when the file is read). A
file is named by its path wherever a suite is (``suite=my_suite.yaml``, ``robotcl show``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import gymnasium as gym
import yaml

from robotcl.envs.orders import order_names
from robotcl.errors import UserInputError

SUFFIXES = (".yaml", ".yml")
Task = TypeVar("Task")


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
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            extra = sorted(set(item) - {"id", "name", "kwargs"})
            if extra:
                raise UserInputError(
                    where, f"task {k}: unknown key '{extra[0]}'", "allowed: id, name, kwargs"
                )
            if item["id"] not in gym.registry:
                raise UserInputError(
                    where,
                    f"task {k}: '{item['id']}' is not a registered gymnasium id",
                    "import the package that registers it, or fix the id",
                )
            kwargs = item.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                raise UserInputError(where, f"task {k}: kwargs must be a mapping")
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
