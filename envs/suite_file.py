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

from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from robotcl.errors import UserInputError

SUFFIXES = (".yaml", ".yml")


def is_suite_file(name: str) -> bool:
    """Whether a suite name is a path to a suite file (by its suffix)."""
    return name.endswith(SUFFIXES)


def load_suite_file(path: str) -> Any:
    """The :class:`~robotcl.envs.suites.Suite` a suite file describes (first order ``a``)."""
    from robotcl.envs.suites import Suite, TaskSpec, check_spaces, task_index

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
    known = task_index()
    tasks: list[TaskSpec] = []
    for k, item in enumerate(data["tasks"]):
        if isinstance(item, str) and item in known:
            tasks.append(known[item])
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
            tasks.append(TaskSpec(str(item.get("name", item["id"])), item["id"], kwargs))
        else:
            raise UserInputError(where, f"task {k} ({item!r}) is neither a name nor {{id: ...}}")
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(where, f"task names repeat: {repeated}", "give each a distinct name")
    orders = data.get("orders") or {}
    if not isinstance(orders, dict) or not all(isinstance(v, list) for v in orders.values()):
        raise UserInputError(where, "orders must map names to lists of task names")
    name = str(data.get("name") or Path(path).stem)
    suite = Suite(name, tuple(tasks), "a", {str(k): tuple(v) for k, v in orders.items()})
    for key, order in suite.orders.items():  # each named order lists every task once
        try:
            suite.ordered(list(order))
        except UserInputError as exc:
            raise UserInputError(where, f"orders.{key}: {exc.problem}", exc.allowed) from None
    check_spaces(suite)
    return suite
