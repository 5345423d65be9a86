"""What every continual off-policy learner on stable-baselines3 shares (SAC, TD3).

:class:`ContinualOffPolicy` is a mixin placed before the SB3 algorithm in the bases
(``class ContinualSAC(ContinualOffPolicy, SAC)``). It adds, independently of the losses:

- task switches (:meth:`~ContinualOffPolicy.start_task`) that may reset the replay buffer and
  the optimizers (Continual World, Wolczyk et al. 2021, resets both and keeps the networks);
- ``random_steps`` uniform-random actions at each task's start (SB3's ``learning_starts`` counts
  from the first step of the run, these count from the task's), updates from ``update_after``;
- the training loop over :meth:`update`, which the learner defines: one gradient step through
  the strategy hooks;
- the learner protocol the experiment and strategies use (``wrap_env``, ``act``, ``attach``,
  ``task_data``, ``parameter_groups``) and the polyak update of every target network.

A subclass sets up its multi-head policy with :meth:`multi_head_policy_kwargs`, calls
:meth:`init_continual` before the SB3 constructor and implements ``update(batch)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.utils import polyak_update

from robotcl.agents.sb3 import ContinualSB3
from robotcl.strategies.base import TaskData


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Compute through ``module`` without giving its parameters any gradient."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


# (source, target) attribute names of SB3's batch-norm running statistics: SAC, then TD3
_BATCH_NORM_STATS = (
    ("batch_norm_stats", "batch_norm_stats_target"),
    ("critic_batch_norm_stats", "critic_batch_norm_stats_target"),
    ("actor_batch_norm_stats", "actor_batch_norm_stats_target"),
)


class ContinualOffPolicy(ContinualSB3):
    """Task switches, per-task warm-up, the training loop and the learner protocol for an SB3
    off-policy algorithm with a multi-head ``actor`` (trunk ``latent_pi``) and ``critic``."""

    capabilities = frozenset(
        {
            "replay_data",
            "reference_loss",
            "policy_distribution",
            "update",
            "trunks",
            "off_policy",
            "features",
        }
    )

    #: the actor's per-task output layers, for ``parameter_groups()["actor_heads"]``
    actor_head_names: ClassVar[tuple[str, ...]] = ("mu",)

    # set by the SB3 algorithm this is mixed into (annotations only: nothing is shadowed)
    actor: Any
    critic: Any
    replay_buffer: Any

    def init_continual(
        self,
        num_tasks: int,
        random_steps: int,
        update_after: int,
        reset_buffer: bool,
        reset_optimizer: bool,
        log_every_updates: int,
        task_names: list[str] | None,
    ) -> None:
        """The continual settings; call before the SB3 constructor (which may set up the model)."""
        self.init_tasks(num_tasks, task_names, log_every_updates)
        self.random_steps, self.update_after = random_steps, update_after
        self.reset_buffer, self.reset_optimizer = reset_buffer, reset_optimizer

    @classmethod
    def config_problem(cls, config: Any) -> str | None:
        """What in ``config`` this learner cannot run, or None: steps per task in whole update
        rounds, and at least one gradient update per task."""
        agent = config.agent
        if config.steps_per_task % agent.train_freq:
            return (
                f"steps_per_task={config.steps_per_task} must be a multiple of "
                f"agent.train_freq={agent.train_freq}"
            )
        if agent.batch_size > agent.buffer_size:
            return (
                f"agent.batch_size={agent.batch_size} exceeds agent.buffer_size="
                f"{agent.buffer_size}: no batch can be drawn"
            )
        first = max(agent.update_after, agent.batch_size)
        if config.steps_per_task < first:
            return (
                f"steps_per_task={config.steps_per_task} gives no gradient update: updates start "
                f"after max(agent.update_after, agent.batch_size)={first} steps of each task"
            )
        return None

    @classmethod
    def multi_head_policy_kwargs(
        cls,
        num_tasks: int,
        net_arch: list[int] | tuple[int, ...],
        activation: str,
        layer_norm: bool,
        device: str,
    ) -> dict[str, Any]:
        """Keyword arguments of the multi-head SB3 policies in :mod:`robotcl.agents.networks`."""
        return dict(
            net_arch=list(net_arch),
            activation_fn=cls.activation(activation),
            num_tasks=num_tasks,
            layer_norm=layer_norm,
            optimizer_kwargs=cls.optimizer_kwargs(device),
        )

    # -- task switches --------------------------------------------------------------------
    def start_task(self, task_id: int, env: gym.Env, seed: int | None = None) -> None:
        """Switch to ``task_id``: new env, and the resets the settings ask for."""
        self.set_env(self.wrap_env(env, seed))
        self.current_task = task_id
        self._task_start_step = self.num_timesteps
        if self.reset_buffer or self.replay_buffer is None:
            self.replay_buffer = ReplayBuffer(
                self.buffer_size,
                self.observation_space,
                self.action_space,
                device=self.device,
                n_envs=1,
                handle_timeout_termination=True,
            )
        if self.reset_optimizer:
            self.reset_optimizers()

    def reset_optimizers(self) -> None:
        """Fresh optimizer state for the actor and the critic (over their trainable parameters)."""
        policy = self.policy
        for net in (self.actor, self.critic):
            net.optimizer = policy.optimizer_class(
                [p for p in net.parameters() if p.requires_grad],
                lr=self.lr_schedule(1),
                **policy.optimizer_kwargs,
            )

    def task_data(self) -> TaskData:
        """What the finished task leaves to strategies."""
        return TaskData(self.current_task, buffer=self.replay_buffer, env=self.env)

    # -- acting ---------------------------------------------------------------------------
    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform-random actions for the task's first ``random_steps`` (no exploration noise
        on them, as Fujimoto et al. 2018), then the policy (plus ``action_noise`` if any)."""
        if self.task_steps < self.random_steps:
            return super()._sample_action(self.num_timesteps + 1, None, n_envs)
        return super()._sample_action(0, action_noise, n_envs)

    # -- parameters -----------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Named groups a strategy may touch: trunks and heads of the actor and the critic."""
        critic_nets = self.critic.q_networks
        heads = [getattr(self.actor, name) for name in self.actor_head_names]
        return {
            "actor_trunk": list(self.actor.latent_pi.parameters()),
            "actor_heads": [p for head in heads for p in head.parameters()],
            "critic_trunk": [p for q in critic_nets for p in q[0].parameters()],
            "critic_heads": [p for q in critic_nets for p in q[1].parameters()],
        }

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor trunk's output: the representation its per-task heads read."""
        actor = self.actor
        return actor.latent_pi(actor.extract_features(obs, actor.features_extractor))

    def trunk_slots(self, group: str) -> list[tuple[str, tuple[torch.nn.Module, Any], Any]]:
        """Where ``group``'s trunk modules sit, as (name, (owner, key), mirrored name or None):
        the actor's ``latent_pi`` and each Q network's first block; target networks mirror."""
        if group == "actor_trunk":
            slots = [("actor", (self.actor, "latent_pi"), None)]
            if getattr(self, "actor_target", None) is not None:  # TD3
                slots.append(("actor_target", (self.actor_target, "latent_pi"), "actor"))
            return slots
        if group == "critic_trunk":
            slots = [(f"critic.{i}", (q, 0), None) for i, q in enumerate(self.critic.q_networks)]
            target = getattr(self, "critic_target", None)
            if target is not None:
                slots += [
                    (f"critic_target.{i}", (q, 0), f"critic.{i}")
                    for i, q in enumerate(target.q_networks)
                ]
            return slots
        raise KeyError(group)

    def optimizer_holders(self) -> list[tuple[Any, torch.nn.Module]]:
        """(object whose ``.optimizer`` trains ``module``, module) pairs."""
        return [(self.actor, self.actor), (self.critic, self.critic)]

    # -- the update -----------------------------------------------------------------------
    def update(self, batch: Any) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch`` through the strategy hooks (defined by the learner)."""
        raise NotImplementedError

    @torch.no_grad()
    def _update_target(self) -> None:
        """Polyak averaging of the target critic, and of the target actor where there is one
        (TD3), as a few multi-tensor kernels."""
        pairs = [("critic", "critic_target"), ("actor", "actor_target")]
        for source, target in pairs:
            target_net = getattr(self, target, None)
            if target_net is None:
                continue
            targets = list(target_net.parameters())
            sources = list(getattr(self, source).parameters())
            if len(targets) != len(sources):
                raise RuntimeError(f"{source} and {target} no longer have matching parameters")
            torch._foreach_lerp_(targets, sources, self.tau)
        for source, target in _BATCH_NORM_STATS:
            stats = getattr(self, source, None)
            if stats:
                polyak_update(stats, getattr(self, target), 1.0)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.task_steps < self.update_after or self.replay_buffer.size() < batch_size:
            return
        self.policy.set_training_mode(True)
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            out = self.update(batch)
            if self._n_updates % self.log_every_updates == 0:
                self.record(out)
        self.policy.set_training_mode(False)
        self.check_finite(out)
