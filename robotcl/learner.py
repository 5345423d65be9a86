"""The learner protocol: what the task loop, the checkpoints and the strategies use of a learner.

A learner is registered by name (``@register_agent("mine")`` or the entry-point group
``robotcl.agents``) and built by the experiment as::

    learner = cls(env=cls.wrap_env(suite.make_env(0)), num_tasks=T, task_names=[...], seed=s,
                  device=d, **agent settings its __init__ takes)

The agent settings are robotcl's shared ``agent.*`` keys that ``__init__`` names, and the
learner's own: a learner may declare them as ``Settings``, a :class:`LearnerSettings` subclass
(``agent.noise_std=0.2`` is then validated by it, listed by ``robotcl run --help`` and written
into the run's config.yaml with its defaults filled).

:class:`Learner` lists the members every learner has; registering a class that lacks one is a
one-line error naming them. Strategies need more of some learners; a learner says what it offers
in ``capabilities`` (names from :data:`CAPABILITIES`) and a strategy what it needs in ``needs``,
so a pairing that cannot work is refused before a run writes anything.

Optional: ``resume_task(task_id, env, steps_done, seed)`` (with SB3's ``save_replay_buffer`` and
``load_replay_buffer``) lets a run checkpoint inside a task (``checkpoint_every_steps``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

#: capability -> what a learner that offers it provides
CAPABILITIES: dict[str, str] = {
    "replay_data": "task_data().buffer holds the task's transitions (size(), sample(n), and "
    "rows(index) or an SB3 ReplayBuffer), batches with the fields of reference_loss's batch: "
    "what memories store and mix into training batches",
    "reference_loss": "reference_loss(batch) -> the training loss of a batch, for gradients on "
    "a memory",
    "policy_distribution": "policy_distribution() -> a module obs -> (mean, log-std or None), "
    "whose outputs weigh parameter importance",
    "update": "update(batch) -> one gradient step through the hooks on task_data().buffer's "
    "sample(batch_size), and batch_size, num_tasks (PackNet's retraining)",
    "trunks": "trunk_slots(group) and optimizer_holders(): where the trunk modules and the "
    "optimizers are, so columns can replace the trunks",
    "features": "features(obs) -> the representation the heads read (the actor's trunk "
    "output), for the linear probe of representation forgetting",
    "critic_snapshot": "critic_snapshot() -> a frozen copy of the critic, and "
    "policy_value_loss(obs, critic) -> minus that critic's value of the policy's action on obs "
    "(CoRL 2021's experience replay with a critic a task)",
    "off_policy": "collects its own data into a replay buffer that may persist across tasks "
    "(reset_buffer, reset_optimizer, random_steps, update_after attributes)",
}


class LearnerSettings(BaseModel):
    """A learner's own ``agent.*`` keys; subclasses add fields with defaults and descriptions.
    A field may not reuse a shared key's name (``learning_rate``, ``batch_size``...: see
    ``robotcl run --help``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@runtime_checkable
class Learner(Protocol):
    """The members every learner has (ContinualSAC, ContinualTD3, ContinualPPO, BCLearner)."""

    #: names from :data:`CAPABILITIES` this learner offers
    capabilities: ClassVar[frozenset[str]]
    #: env steps (or gradient steps, for a supervised learner) since the run began
    num_timesteps: int
    #: index of the task being trained
    current_task: int

    @staticmethod
    def wrap_env(env: gym.Env, seed: int | None = None) -> Any:
        """The form of ``env`` the learner trains on (e.g. a monitored VecEnv)."""

    def attach(self, strategy: Any) -> None:
        """Call ``strategy``'s hooks from now on (sample, penalty, adjust_gradients,
        after_step in each update; see robotcl.strategies.base)."""

    def set_logger(self, logger: Any) -> None:
        """Where training scalars go: ``logger.record(key, value)``, ``logger.dump(step)``
        (stable-baselines3's Logger, writing to the run's TensorBoard)."""

    def start_task(self, task_id: int, env: gym.Env, seed: int | None = None) -> None:
        """Switch to ``task_id``: train on ``env`` from now on (reset what the settings say)."""

    def learn_task(self, steps: int, on_step: Callable[[], None] | None = None) -> None:
        """Train the current task for ``steps`` steps, calling ``on_step()`` after each (the
        task loop evaluates and advances its progress there)."""

    @property
    def task_steps(self) -> int:
        """Steps into the current task."""

    def task_data(self) -> Any:
        """A :class:`~robotcl.strategies.base.TaskData` with the finished task's data: its
        ``buffer`` offers ``size()`` and ``sample(n)`` (batches with ``observations``)."""

    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for a batch of observations (evaluation)."""

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Named parameter groups strategies may target (actor_trunk, actor_heads, ...)."""

    def reset_optimizers(self) -> None:
        """Fresh optimizer state over the trainable parameters."""

    def save(self, path: Any) -> None:
        """Write weights, optimizer states and counters to ``path`` (the strategy is saved by
        the checkpoint)."""

    @classmethod
    def load(cls, path: Any, device: str = "auto", prepare: Callable | None = None) -> Any:
        """A learner from ``path``; ``prepare(learner)`` runs after it is built and before its
        weights load (a strategy that reshapes it, as progressive does)."""


#: the members checked when a learner is registered
REQUIRED = (
    "wrap_env",
    "attach",
    "set_logger",
    "start_task",
    "learn_task",
    "task_steps",
    "task_data",
    "act",
    "parameter_groups",
    "reset_optimizers",
    "save",
    "load",
    "capabilities",
)


def missing_members(cls: type) -> list[str]:
    """The protocol members ``cls`` lacks (and unknown capability names it declares, and a
    ``Settings`` that is not a :class:`LearnerSettings`; one that reuses a shared key's name is
    refused when it is used, by robotcl.config)."""
    missing = [name for name in REQUIRED if not hasattr(cls, name)]
    unknown = sorted(set(getattr(cls, "capabilities", ())) - set(CAPABILITIES))
    problems = missing + [f"capabilities: unknown {u!r}" for u in unknown]
    settings = getattr(cls, "Settings", None)
    if settings is None:
        return problems
    if not (isinstance(settings, type) and issubclass(settings, LearnerSettings)):
        return [*problems, "Settings: not a robotcl.learner.LearnerSettings subclass"]
    return problems


def unmet_needs(strategy: Any, learner: Any) -> list[str]:
    """What ``strategy`` needs (``needs``) that ``learner`` does not offer."""
    offered = set(getattr(learner, "capabilities", ()))
    return sorted(set(getattr(strategy, "needs", ())) - offered)
