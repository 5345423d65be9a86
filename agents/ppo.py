"""ContinualPPO: stable-baselines3's PPO for task sequences, an on-policy continual learner.

Neither Continual World nor the CoRL 2021 code has one. What it adds to SB3's PPO:

- :class:`MultiHeadActorCriticPolicy`: shared actor and value trunks that never see the task
  one-hot, and per-task heads (action mean, a state-independent log-std per task, value);
- task switches (a new env; fresh optimizer state unless ``reset_optimizer=False``);
- one update step per minibatch through the strategy hooks: ``sample`` -> clipped surrogate +
  value + entropy loss + ``penalty`` -> backward -> ``adjust_gradients`` -> gradient clipping ->
  optimizer step -> ``after_step``.

On-policy data cannot be replayed, so memory strategies (replay, GEM, A-GEM, ...) are refused with
it; the ones that act on parameters apply: finetune, l2, ewc, mas, packnet (retraining on the
task's last rollout), progressive, single. ``steps_per_task`` is a multiple of ``n_steps``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from torch import nn

from robotcl.agents.networks import StateExtractor, TaskHeads, task_index
from robotcl.agents.sb3 import ContinualSB3
from robotcl.registry import register_agent
from robotcl.strategies.base import TaskData


class TaskLogStd(nn.Module):
    """A state-independent log-std per task (SB3's PPO has one for all inputs)."""

    def __init__(self, num_tasks: int, action_dim: int, init: float) -> None:
        super().__init__()
        self.init = init
        self.weight = nn.Parameter(torch.full((num_tasks, action_dim), float(init)))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(self.init)

    def forward(self, tasks: torch.Tensor) -> torch.Tensor:
        return self.weight[tasks]


class MultiHeadActorCriticPolicy(ActorCriticPolicy):
    """SB3's Gaussian actor-critic with per-task heads chosen by the trailing one-hot."""

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Any,
        *args: Any,
        num_tasks: int = 1,
        **kwargs: Any,
    ) -> None:
        self.num_tasks = num_tasks
        kwargs.setdefault("features_extractor_class", StateExtractor)
        kwargs.setdefault("features_extractor_kwargs", {"num_tasks": num_tasks})
        if kwargs.get("use_sde") or not isinstance(action_space, spaces.Box):
            raise ValueError("MultiHeadActorCriticPolicy supports Box actions without gSDE")
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(num_tasks=self.num_tasks)
        return data

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        assert isinstance(self.action_dist, DiagGaussianDistribution)
        action_dim = int(np.prod(self.action_space.shape))
        del self.log_std  # SB3's one log-std; one per task below
        self.action_net = TaskHeads(self.mlp_extractor.latent_dim_pi, action_dim, self.num_tasks)
        self.value_net = TaskHeads(self.mlp_extractor.latent_dim_vf, 1, self.num_tasks)
        self.task_log_std = TaskLogStd(self.num_tasks, action_dim, self.log_std_init)
        if self.ortho_init:  # SB3's gains for these layers
            self.action_net.apply(partial(self.init_weights, gain=0.01))
            self.value_net.apply(partial(self.init_weights, gain=1))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def action_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-std) of each row's task."""
        latent_pi = self.mlp_extractor.forward_actor(self.extract_features(obs))
        tasks = task_index(obs, self.num_tasks)
        return self.action_net(latent_pi, tasks), self.task_log_std(tasks)

    def _distribution(self, latent_pi: torch.Tensor, tasks: torch.Tensor) -> Any:
        mean = self.action_net(latent_pi, tasks)
        return self.action_dist.proba_distribution(mean, self.task_log_std(tasks))

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent_pi, latent_vf = self.mlp_extractor(self.extract_features(obs))
        tasks = task_index(obs, self.num_tasks)
        distribution = self._distribution(latent_pi, tasks)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        values = self.value_net(latent_vf, tasks)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent_pi, latent_vf = self.mlp_extractor(self.extract_features(obs))
        tasks = task_index(obs, self.num_tasks)
        distribution = self._distribution(latent_pi, tasks)
        values = self.value_net(latent_vf, tasks)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor) -> Any:
        latent_pi = self.mlp_extractor.forward_actor(self.extract_features(obs))
        return self._distribution(latent_pi, task_index(obs, self.num_tasks))

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        latent_vf = self.mlp_extractor.forward_critic(self.extract_features(obs))
        return self.value_net(latent_vf, task_index(obs, self.num_tasks))


class _ActionParams(nn.Module):
    """The policy seen as obs -> (mean, log-std): what EWC and MAS differentiate."""

    def __init__(self, policy: MultiHeadActorCriticPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy.action_params(obs)


class RolloutData:
    """The finished task's last rollout, sampled as minibatches (what EWC's Fisher, MAS and
    PackNet's retraining read); NumPy's global generator, as SB3's buffers."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def size(self) -> int:
        return self.buffer.buffer_size * self.buffer.n_envs if self.buffer.full else 0

    def rows(self, index: Any) -> RolloutBufferSamples:
        if not self.buffer.generator_ready:  # SB3 flattens the arrays on the first get()
            next(self.buffer.get(self.size()))
        return self.buffer._get_samples(np.asarray(index))

    def sample(self, n: int, env: Any = None) -> RolloutBufferSamples:
        return self.rows(np.random.randint(0, self.size(), size=n))


@register_agent("ppo")
class ContinualPPO(ContinualSB3, PPO):
    """Multi-head PPO for a sequence of tasks, with continual-strategy hooks.

    :param num_tasks: length of the suite (the one-hot length, the number of heads)
    :param n_steps: env steps per rollout (SB3: 2048)
    :param n_epochs: passes over each rollout (SB3: 10)
    :param ent_coef: entropy bonus weight; "auto" (the SAC default of the config) means 0
    :param net_arch: hidden widths of the actor and value trunks
    :param activation: "relu", "leaky_relu", "tanh" or "elu"
    :param reset_optimizer: start every task with fresh optimizer state
    :param log_every_updates: how often training losses are recorded (in minibatch updates)
    Other parameters are SB3's PPO ones.
    """

    capabilities = frozenset({"policy_distribution", "update", "trunks", "features"})

    def __init__(
        self,
        policy: Any = MultiHeadActorCriticPolicy,
        env: gym.Env | None = None,
        num_tasks: int = 1,
        learning_rate: float = 3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        ent_coef: str | float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        net_arch: list[int] | tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        reset_optimizer: bool = True,
        log_every_updates: int = 200,
        task_names: list[str] | None = None,
        tensorboard_log: str | None = None,
        seed: int | None = None,
        device: str = "auto",
        verbose: int = 0,
        _init_setup_model: bool = True,
    ) -> None:
        self.init_tasks(num_tasks, task_names, log_every_updates)
        self.reset_optimizer = reset_optimizer
        arch = list(net_arch)
        policy_kwargs = dict(
            net_arch=dict(pi=arch, vf=arch),
            activation_fn=self.activation(activation),
            num_tasks=num_tasks,
        )
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            ent_coef=0.0 if isinstance(ent_coef, str) else ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            policy_kwargs=policy_kwargs,
            tensorboard_log=tensorboard_log,
            seed=seed,
            device=device,
            verbose=verbose,
            _init_setup_model=_init_setup_model,
        )

    @classmethod
    def config_problem(cls, config: Any) -> str | None:
        """Whole rollouts per task, and minibatches no larger than a rollout."""
        agent = config.agent
        if config.steps_per_task % agent.n_steps:
            return (
                f"steps_per_task={config.steps_per_task} must be a multiple of "
                f"agent.n_steps={agent.n_steps} (PPO trains on whole rollouts)"
            )
        if agent.batch_size > agent.n_steps:
            return f"agent.batch_size={agent.batch_size} exceeds agent.n_steps={agent.n_steps}"
        return None

    # -- task switches --------------------------------------------------------------------
    def start_task(self, task_id: int, env: gym.Env, seed: int | None = None) -> None:
        """Switch to ``task_id``: new env, fresh optimizer state if the settings ask for it."""
        self.set_env(self.wrap_env(env, seed))
        self.current_task = task_id
        self._task_start_step = self.num_timesteps
        if self.reset_optimizer:
            self.reset_optimizers()

    def reset_optimizers(self) -> None:
        policy = self.policy
        policy.optimizer = policy.optimizer_class(
            [p for p in policy.parameters() if p.requires_grad],
            lr=self.lr_schedule(1),
            **policy.optimizer_kwargs,
        )

    def task_data(self) -> TaskData:
        """The finished task's last rollout (on-policy data: no replay)."""
        return TaskData(self.current_task, buffer=RolloutData(self.rollout_buffer), env=self.env)

    # -- parameters -----------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trunks and heads of the actor (mean and per-task log-std) and of the value."""
        policy = self.policy
        return {
            "actor_trunk": list(policy.mlp_extractor.policy_net.parameters()),
            "actor_heads": [*policy.action_net.parameters(), *policy.task_log_std.parameters()],
            "critic_trunk": list(policy.mlp_extractor.value_net.parameters()),
            "critic_heads": list(policy.value_net.parameters()),
        }

    def policy_distribution(self) -> nn.Module:
        """obs -> (mean, log-std) of the Gaussian policy."""
        return _ActionParams(self.policy)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor trunk's output: the representation its per-task heads read."""
        return self.policy.mlp_extractor.forward_actor(self.policy.extract_features(obs))

    def trunk_slots(self, group: str) -> list[tuple[str, tuple[nn.Module, Any], Any]]:
        """Where the actor and value trunks sit (progressive columns replace them)."""
        names = {"actor_trunk": ("actor", "policy_net"), "critic_trunk": ("critic", "value_net")}
        name, key = names[group]
        return [(name, (self.policy.mlp_extractor, key), None)]

    def optimizer_holders(self) -> list[tuple[Any, nn.Module]]:
        return [(self.policy, self.policy)]

    # -- the update -----------------------------------------------------------------------
    def losses(self, batch: RolloutBufferSamples, clip_range: float) -> dict[str, torch.Tensor]:
        """PPO's clipped surrogate, value and entropy losses on a minibatch (SB3's formulas)."""
        values, log_prob, entropy = self.policy.evaluate_actions(batch.observations, batch.actions)
        advantages = batch.advantages
        if self.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        ratio = torch.exp(log_prob - batch.old_log_prob)
        clipped = torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
        return {
            "actor_loss": -torch.min(advantages * ratio, advantages * clipped).mean(),
            "critic_loss": F.mse_loss(batch.returns, values.flatten()),
            "entropy": entropy.mean(),
        }

    def update(
        self, batch: RolloutBufferSamples, clip_range: float | None = None
    ) -> dict[str, torch.Tensor]:
        """One gradient step on a minibatch through the strategy hooks."""
        task = self.current_task
        batch = self.strategy.sample(batch, task)
        if clip_range is None:
            clip_range = self.clip_range(self._current_progress_remaining)
        out = self.losses(batch, clip_range)
        loss = (
            out["actor_loss"] - self.ent_coef * out["entropy"] + self.vf_coef * out["critic_loss"]
        )
        penalty = self.strategy.penalty(task)
        if penalty is not None:
            loss = loss + penalty
            out["penalty"] = penalty
        self.policy.optimizer.zero_grad()
        loss.backward()
        self.strategy.adjust_gradients(task)
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self.strategy.after_step()
        self._n_updates += 1
        return out

    def train(self) -> None:
        """``n_epochs`` passes over the rollout in minibatches of ``batch_size``."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)
        for _ in range(self.n_epochs):
            for batch in self.rollout_buffer.get(self.batch_size):
                out = self.update(batch, clip_range)
                if self._n_updates % self.log_every_updates == 0:
                    self.record(out)
        self.policy.set_training_mode(False)
        self.check_finite(out)
