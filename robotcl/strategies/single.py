"""Single-task training: a fresh learner for every task, run through the same task loop.

This is the reference of Continual World's forward transfer (Wolczyk et al. 2021: the AUC of each
task is compared with a single-task run's) and gives the per-task experts of the CoRL 2021 gap
evaluation (Yang et al.). At the start of every task after the first, every parameter of the
learner's networks is drawn afresh, the SAC target critic is copied from the new critic, the
per-task log-alphas go back to their initial value, the optimizers are reset and the replay
buffer is emptied: the task starts exactly as a new learner would. Nothing carries over, so
nothing is remembered either (the continual metrics of such a run are not meaningful; its
curves are the reference).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from pydantic import Field

from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy, StrategySettings


class SingleSettings(StrategySettings):
    """Seed of the per-task re-initialisation."""

    seed: int | None = Field(
        None,
        description="task i > 0 is initialised from torch.manual_seed(seed * 1000 + i); "
        "None: the learner's seed (the experiment's seed), or 0 when it has none",
    )


@register_strategy("single")
class Single(Strategy):
    """Re-initialise the learner at every task start, reproducibly from the seed."""

    name = "single"
    Settings = SingleSettings
    settings: SingleSettings

    def on_task_start(self, task_id: int) -> None:
        if task_id == 0:
            return  # the learner is fresh already
        learner = self.learner
        reinitialise(networks(learner), self.task_seed(task_id))
        if hasattr(learner, "critic_target"):  # SAC, TD3: targets start as copies
            learner.critic_target.load_state_dict(learner.critic.state_dict())
        if hasattr(learner, "actor_target"):
            learner.actor_target.load_state_dict(learner.actor.state_dict())
        if getattr(learner, "log_ent_coef", None) is not None:  # ContinualSAC's log-alphas
            with torch.no_grad():
                learner.log_ent_coef.fill_(initial_log_alpha(learner.ent_coef))
        buffer = getattr(learner, "replay_buffer", None)
        if buffer is not None and hasattr(buffer, "reset"):  # kept when reset_buffer=False
            buffer.reset()
        learner.reset_optimizers()

    def task_seed(self, task_id: int) -> int:
        """The torch seed of ``task_id``'s initialisation."""
        seed = self.settings.seed
        if seed is None:
            seed = getattr(self.learner, "seed", None) or 0
        return seed * 1000 + task_id


def networks(learner: Any) -> list[torch.nn.Module]:
    """Every distinct module held by the learner's attributes, in a fixed order."""
    seen: set[int] = set()
    modules = []
    for value in vars(learner).values():
        if isinstance(value, torch.nn.Module):
            for m in value.modules():
                if id(m) not in seen:
                    seen.add(id(m))
                    modules.append(m)
    return modules


def reinitialise(modules: list[torch.nn.Module], seed: int) -> None:
    """``reset_parameters()`` of every module that has one, from ``seed``, leaving the global
    random state as it was; warns about parameters that no such module covers."""
    covered: set[int] = set()
    devices = sorted(
        {p.device.index or 0 for m in modules for p in m.parameters(recurse=False) if p.is_cuda}
    )
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        for d in devices:  # only the devices whose state fork_rng restores
            with torch.cuda.device(d):
                torch.cuda.manual_seed(seed)
        for m in modules:
            if callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()
                covered.update(id(p) for p in m.parameters())
    missed = [
        name
        for m in modules
        for name, p in m.named_parameters(recurse=False)
        if id(p) not in covered
    ]
    if missed:
        warnings.warn(f"single: parameters without reset_parameters() kept: {missed}", stacklevel=2)


def initial_log_alpha(ent_coef: Any) -> float:
    """SB3's initial log entropy coefficient for ``ent_coef`` "auto" or "auto_<value>"."""
    value = 1.0
    if isinstance(ent_coef, str) and "_" in ent_coef:
        value = float(ent_coef.split("_")[1])
    return math.log(value)
