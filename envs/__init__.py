"""Environments of robotcl; importing this registers the gymnasium ids ``robotcl/...``."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import mujoco
from gymnasium.envs.registration import register, registry

from . import metaworld as _metaworld
from .dclaw import DCLAW_VALVES

if TYPE_CHECKING:
    from .dclaw.family import TaskFamily

DCLAW_MAX_EPISODE_STEPS = 40


def dclaw_env_id(valve: str) -> str:
    """Gymnasium id of the valve-turning task ``valve``, e.g. ``robotcl/DClawTurnT3-v0``."""
    return f"robotcl/DClawTurn{valve}-v0"


def register_envs() -> None:
    """Register robotcl/DClawTurnT0-v0 .. T10-v0; ids already registered are left alone."""
    for valve in DCLAW_VALVES:
        env_id = dclaw_env_id(valve)
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point="robotcl.envs.dclaw.env:DClawTurnEnv",
            kwargs={"valve": valve},
            max_episode_steps=DCLAW_MAX_EPISODE_STEPS,
        )


def dexterous_env_id(task: str) -> str:
    """Gymnasium id of dexterous20's task ``task``, e.g. ``robotcl/Dexterous-spin-T3-v0``."""
    return f"robotcl/Dexterous-{task}-v0"


def register_dexterous(tasks: Iterable[TaskFamily] | None = None) -> list[str]:
    """Make each of ``tasks`` (default: dexterous20's) a task of the dexterous claw env: known to
    it by name, and the gymnasium id robotcl/Dexterous-<name>-v0 (40-step episodes); returns the
    ids. A task is an instance of a :class:`~robotcl.envs.dclaw.family.TaskFamily`; a name
    already taken by another task is refused."""
    from .dclaw.dexterous import DEXTEROUS_TASKS, TASKS

    ids = []
    for task in TASKS if tasks is None else tasks:
        if task.name in DEXTEROUS_TASKS and DEXTEROUS_TASKS.get(task.name) != task:
            raise ValueError(f"dexterous task '{task.name}' is registered already, as another task")
        DEXTEROUS_TASKS.register(task.name, task)
        env_id = dexterous_env_id(task.name)
        if env_id not in registry:
            register(
                id=env_id,
                entry_point="robotcl.envs.dclaw.dexterous:DexterousEnv",
                kwargs={"task": task.name},
                max_episode_steps=DCLAW_MAX_EPISODE_STEPS,
            )
        ids.append(env_id)
    return ids


def _mujoco_warning(message: str) -> None:
    warnings.warn(f"MuJoCo: {message.strip()}", RuntimeWarning, stacklevel=2)


def route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings to Python's ``warnings`` instead of its default, which appends them
    to MUJOCO_LOG.TXT in the working directory (a user's, or a read-only one)."""
    mujoco.set_mju_user_warning(_mujoco_warning)


register_envs()
register_dexterous()
route_mujoco_warnings()
_metaworld.register_tasks()

__all__ = [
    "DCLAW_MAX_EPISODE_STEPS",
    "DCLAW_VALVES",
    "dclaw_env_id",
    "dexterous_env_id",
    "register_dexterous",
    "register_envs",
    "route_mujoco_warnings",
]
