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
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import get_device, polyak_update
from stable_baselines3.common.vec_env import DummyVecEnv

from robotcl.agents.networks import ACTIVATIONS
from robotcl.errors import TrainingDiverged
from robotcl.strategies.base import Strategy, TaskData


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


#: the losses of an update that must stay finite
_CHECKED = ("critic_loss", "actor_loss", "penalty")

# (source, target) attribute names of SB3's batch-norm running statistics: SAC, then TD3
_BATCH_NORM_STATS = (
    ("batch_norm_stats", "batch_norm_stats_target"),
    ("critic_batch_norm_stats", "critic_batch_norm_stats_target"),
    ("actor_batch_norm_stats", "actor_batch_norm_stats_target"),
)


class ContinualOffPolicy:
    """Task switches, per-task warm-up, the training loop and the learner protocol for an SB3
    off-policy algorithm with a multi-head ``actor`` (trunk ``latent_pi``) and ``critic``."""

    #: the actor's per-task output layers, for ``parameter_groups()["actor_heads"]``
    actor_head_names: ClassVar[tuple[str, ...]] = ("mu",)

    # set by the SB3 algorithm this is mixed into (annotations only: nothing is shadowed)
    actor: Any
    critic: Any
    policy: Any
    replay_buffer: Any
    num_timesteps: int
    _n_updates: int

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
        self.num_tasks = num_tasks
        self.random_steps, self.update_after = random_steps, update_after
        self.reset_buffer, self.reset_optimizer = reset_buffer, reset_optimizer
        self.log_every_updates = log_every_updates
        self.task_names = list(task_names) if task_names else [str(i) for i in range(num_tasks)]
        self.current_task = 0
        self._task_start_step = 0
        self.strategy: Strategy = Strategy()

    @staticmethod
    def multi_head_policy_kwargs(
        num_tasks: int,
        net_arch: list[int] | tuple[int, ...],
        activation: str,
        layer_norm: bool,
        device: str,
    ) -> dict[str, Any]:
        """Keyword arguments of the multi-head SB3 policies in :mod:`robotcl.agents.networks`."""
        # Adam over all parameters at once: fused kernels on CUDA, multi-tensor ops on CPU
        fast = "fused" if get_device(device).type == "cuda" else "foreach"
        return dict(
            net_arch=list(net_arch),
            activation_fn=ACTIVATIONS[activation],
            num_tasks=num_tasks,
            layer_norm=layer_norm,
            optimizer_kwargs={fast: True},
        )

    # -- set-up ---------------------------------------------------------------------------
    def _setup_model(self) -> None:
        super()._setup_model()
        prepare = self.__dict__.pop("prepare", None)  # Learner.load(..., prepare=fn)
        if prepare is not None:
            prepare(self)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "strategy"]

    def attach(self, strategy: Strategy) -> None:
        """Use ``strategy``'s hooks from now on."""
        self.strategy = strategy

    @staticmethod
    def wrap_env(env: gym.Env, seed: int | None = None) -> DummyVecEnv:
        """The vectorised, monitored form SB3 trains on."""
        vec = DummyVecEnv([lambda: Monitor(env)])
        if seed is not None:
            vec.seed(seed)
        return vec

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

    def learn_task(self, steps: int, callback: BaseCallback | None = None) -> None:
        """Train the current task for ``steps`` env steps."""
        self.learn(steps, callback=callback, reset_num_timesteps=False, log_interval=10)

    def task_data(self) -> TaskData:
        """What the finished task leaves to strategies."""
        return TaskData(self.current_task, buffer=self.replay_buffer, env=self.env)

    @property
    def task_steps(self) -> int:
        return self.num_timesteps - self._task_start_step

    # -- acting ---------------------------------------------------------------------------
    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform-random actions for the task's first ``random_steps`` (no exploration noise
        on them, as Fujimoto et al. 2018), then the policy (plus ``action_noise`` if any)."""
        if self.task_steps < self.random_steps:
            return super()._sample_action(self.num_timesteps + 1, None, n_envs)
        return super()._sample_action(0, action_noise, n_envs)

    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for a batch of observations (used by the evaluator)."""
        actions, _ = self.predict(observations, deterministic=deterministic)
        return actions

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
                self._record(out)
        self.policy.set_training_mode(False)
        self.check_finite(out)

    def check_finite(self, out: dict[str, torch.Tensor]) -> None:
        """Stop the run (:class:`~robotcl.errors.TrainingDiverged`) when the last update's
        losses or any network parameter are NaN or infinite (one host sync per round)."""
        losses = {k: out[k].detach().reshape(()) for k in _CHECKED if k in out}
        params = [p.detach() for p in self.policy.parameters()]
        norms = torch.stack([*losses.values(), *torch._foreach_norm(params)])
        if bool(torch.isfinite(norms).all()):
            return
        bad = [f"{k}={v.item()}" for k, v in losses.items() if not torch.isfinite(v)]
        raise TrainingDiverged(self.num_timesteps, ", ".join(bad) or "a network parameter")

    def _record(self, out: dict[str, torch.Tensor]) -> None:
        logger = self.logger
        for key in ("critic_loss", "actor_loss", "penalty"):
            if key in out:
                logger.record(f"train/{key}", out[key].item())
        self._record_extra(out)
        logger.record("train/n_updates", self._n_updates)
        logger.dump(self.num_timesteps)

    def _record_extra(self, out: dict[str, torch.Tensor]) -> None:
        """Learner-specific scalars to log next to the losses."""
