"""ContinualSAC: stable-baselines3's SAC extended for task sequences.

What it adds to SB3's SAC (the defaults follow Continual World, Wolczyk et al. 2021):

- a multi-head policy (:mod:`robotcl.agents.networks`): shared trunk, one actor and one critic head
  per task chosen by the one-hot, which the trunk does not see;
- a log-alpha per task when the entropy coefficient is tuned (``ent_coef="auto"``);
- task switches (:meth:`start_task`) that may reset the replay buffer and the optimizers
  (Continual World resets both and keeps the critic);
- ``random_steps`` uniform-random actions at each task's start, updates from ``update_after``;
- one update step that calls the strategy hooks: ``sample`` -> loss + ``penalty`` -> backward ->
  ``adjust_gradients`` -> optimizer steps -> ``after_step``.

Saving and loading go through SB3 (``save`` / ``ContinualSAC.load``); the strategy is saved
separately by the experiment's checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import get_device, polyak_update
from stable_baselines3.common.vec_env import DummyVecEnv

from robotcl.agents.networks import ACTIVATIONS, MultiHeadSACPolicy, task_index
from robotcl.registry import register_agent
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


class _ActorDistribution(torch.nn.Module):
    """The actor seen as obs -> (mean, log-std), before tanh squashing."""

    def __init__(self, actor: torch.nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std, _ = self.actor.get_action_dist_params(obs)
        return mean, log_std


@register_agent("sac")
class ContinualSAC(SAC):
    """Multi-head SAC for a sequence of tasks, with continual-strategy hooks.

    :param num_tasks: length of the suite (the one-hot length, the number of heads)
    :param random_steps: uniform-random actions at the start of every task
    :param update_after: env steps into a task before gradient updates begin
    :param net_arch: hidden widths of the actor and critic trunks
    :param activation: "relu", "leaky_relu", "tanh" or "elu"
    :param layer_norm: LayerNorm + tanh after the first layer (Continual World)
    :param reset_buffer: start every task with an empty replay buffer
    :param reset_optimizer: start every task with fresh optimizer state
    :param log_every_updates: how often training losses are recorded
    Other parameters are SB3's SAC ones.
    """

    def __init__(
        self,
        policy: Any = MultiHeadSACPolicy,
        env: gym.Env | None = None,
        num_tasks: int = 1,
        learning_rate: float = 1e-3,
        buffer_size: int = 1_000_000,
        batch_size: int = 128,
        tau: float = 0.005,
        gamma: float = 0.99,
        ent_coef: str | float = "auto",
        train_freq: int = 50,
        gradient_steps: int = 50,
        random_steps: int = 10_000,
        update_after: int = 1_000,
        net_arch: list[int] | tuple[int, ...] = (256, 256, 256, 256),
        activation: str = "leaky_relu",
        layer_norm: bool = True,
        reset_buffer: bool = True,
        reset_optimizer: bool = True,
        log_every_updates: int = 200,
        task_names: list[str] | None = None,
        tensorboard_log: str | None = None,
        seed: int | None = None,
        device: str = "auto",
        verbose: int = 0,
        _init_setup_model: bool = True,
    ) -> None:
        self.num_tasks = num_tasks
        self.random_steps, self.update_after = random_steps, update_after
        self.reset_buffer, self.reset_optimizer = reset_buffer, reset_optimizer
        self.log_every_updates = log_every_updates
        self.task_names = list(task_names) if task_names else [str(i) for i in range(num_tasks)]
        self.current_task = 0
        self._task_start_step = 0
        self.strategy: Strategy = Strategy()
        policy_kwargs = dict(
            net_arch=list(net_arch),
            activation_fn=ACTIVATIONS[activation],
            num_tasks=num_tasks,
            layer_norm=layer_norm,
        )
        # Adam over all parameters at once: fused kernels on CUDA, multi-tensor ops on CPU
        fast = "fused" if get_device(device).type == "cuda" else "foreach"
        policy_kwargs["optimizer_kwargs"] = {fast: True}
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=0,  # warm-up is per task, see _sample_action and train
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            ent_coef=ent_coef,
            policy_kwargs=policy_kwargs,
            tensorboard_log=tensorboard_log,
            seed=seed,
            device=device,
            verbose=verbose,
            _init_setup_model=_init_setup_model,
        )

    # -- set-up ---------------------------------------------------------------------------
    def _setup_model(self) -> None:
        super()._setup_model()
        prepare = self.__dict__.pop("prepare", None)  # ContinualSAC.load(..., prepare=fn)
        if prepare is not None:
            prepare(self)
        if self.log_ent_coef is not None:  # one log-alpha per task
            init = float(self.log_ent_coef.detach()[0])
            self.log_ent_coef = torch.full(
                (self.num_tasks,), init, device=self.device, requires_grad=True
            )
            self.ent_coef_optimizer = torch.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))

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
        """Fresh optimizer state for the actor, the critic and the log-alphas."""
        policy = self.policy
        for net in (self.actor, self.critic):
            net.optimizer = policy.optimizer_class(
                [p for p in net.parameters() if p.requires_grad],
                lr=self.lr_schedule(1),
                **policy.optimizer_kwargs,
            )
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer = torch.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))

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
        warm_up = self.task_steps < self.random_steps
        return super()._sample_action(
            self.num_timesteps + 1 if warm_up else 0, action_noise, n_envs
        )

    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for a batch of observations (used by the evaluator)."""
        actions, _ = self.predict(observations, deterministic=deterministic)
        return actions

    # -- parameters -----------------------------------------------------------------------
    def policy_distribution(self) -> torch.nn.Module:
        """obs -> (mean, log-std) of the Gaussian actor: what EWC and MAS differentiate."""
        return _ActorDistribution(self.actor)

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """Named groups a strategy may touch: trunks and heads of the actor and the critic."""
        critic_nets = self.critic.q_networks
        return {
            "actor_trunk": list(self.actor.latent_pi.parameters()),
            "actor_heads": [*self.actor.mu.parameters(), *self.actor.log_std.parameters()],
            "critic_trunk": [p for q in critic_nets for p in q[0].parameters()],
            "critic_heads": [p for q in critic_nets for p in q[1].parameters()],
        }

    # -- the update -----------------------------------------------------------------------
    def _alpha(self, tasks: torch.Tensor) -> torch.Tensor:
        if self.log_ent_coef is None:
            return self.ent_coef_tensor
        return self.log_ent_coef.detach()[tasks].exp().unsqueeze(1)

    def losses(self, batch: ReplayBufferSamples) -> dict[str, torch.Tensor]:
        """Critic and actor losses on ``batch`` (no optimizer step); also the log-probs."""
        obs = batch.observations
        tasks = task_index(obs, self.num_tasks)
        alpha = self._alpha(tasks)
        actions_pi, log_prob = self.actor.action_log_prob(obs)
        log_prob = log_prob.reshape(-1, 1)
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
            next_q = torch.min(
                torch.cat(self.critic_target(batch.next_observations, next_actions), dim=1),
                dim=1,
                keepdim=True,
            ).values
            next_q = next_q - alpha * next_log_prob.reshape(-1, 1)
            target_q = batch.rewards + (1 - batch.dones) * self.gamma * next_q
        current_q = self.critic(obs, batch.actions)
        critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)
        with frozen(self.critic):
            q_pi = torch.min(torch.cat(self.critic(obs, actions_pi), dim=1), dim=1, keepdim=True)
        actor_loss = (alpha * log_prob - q_pi.values).mean()
        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "log_prob": log_prob,
            "tasks": tasks,
        }

    def reference_loss(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """The training loss on ``batch``, for strategies that need gradients on a memory."""
        out = self.losses(batch)
        return out["critic_loss"] + out["actor_loss"]

    def update(self, batch: ReplayBufferSamples) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch`` through the strategy hooks."""
        task = self.current_task
        batch = self.strategy.sample(batch, task)
        out = self.losses(batch)
        if self.ent_coef_optimizer is not None:
            log_alpha = self.log_ent_coef[out["tasks"]]
            alpha_loss = -(log_alpha * (out["log_prob"].squeeze(1) + self.target_entropy).detach())
            self.ent_coef_optimizer.zero_grad()
            alpha_loss.mean().backward()
            self.ent_coef_optimizer.step()
        loss = out["critic_loss"] + out["actor_loss"]
        penalty = self.strategy.penalty(task)
        if penalty is not None:
            loss = loss + penalty
            out["penalty"] = penalty
        self.actor.optimizer.zero_grad()
        self.critic.optimizer.zero_grad()
        loss.backward()
        self.strategy.adjust_gradients(task)
        self.actor.optimizer.step()
        self.critic.optimizer.step()
        self.strategy.after_step()
        self._n_updates += 1
        if self._n_updates % self.target_update_interval == 0:
            self._update_target()
        return out

    @torch.no_grad()
    def _update_target(self) -> None:
        """Polyak averaging of the target critic, as a few multi-tensor kernels."""
        targets = list(self.critic_target.parameters())
        sources = list(self.critic.parameters())
        if len(targets) != len(sources):
            raise RuntimeError("critic and target critic no longer have matching parameters")
        torch._foreach_lerp_(targets, sources, self.tau)
        if self.batch_norm_stats:
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.task_steps < self.update_after or self.replay_buffer.size() < batch_size:
            return
        self.policy.set_training_mode(True)
        for _ in range(gradient_steps):
            out = self.update(self.replay_buffer.sample(batch_size, env=self._vec_normalize_env))
            if self._n_updates % self.log_every_updates == 0:
                self._record(out)
        self.policy.set_training_mode(False)

    def _record(self, out: dict[str, torch.Tensor]) -> None:
        self.logger.record("train/critic_loss", out["critic_loss"].item())
        self.logger.record("train/actor_loss", out["actor_loss"].item())
        if "penalty" in out:
            self.logger.record("train/penalty", out["penalty"].item())
        name = self.task_names[self.current_task]
        alpha = self._alpha(torch.tensor([self.current_task], device=self.device))
        self.logger.record(f"train/alpha/{name}", float(alpha.reshape(-1)[0]))
        self.logger.record("train/n_updates", self._n_updates)
        self.logger.dump(self.num_timesteps)
