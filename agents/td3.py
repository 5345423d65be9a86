"""ContinualTD3: stable-baselines3's TD3 extended for task sequences.

TD3 (Fujimoto, van Hoof, Meger 2018, "Addressing Function Approximation Error in Actor-Critic
Methods") as a second learner next to :class:`~robotcl.agents.sac.ContinualSAC`, with the same
continual machinery (:class:`~robotcl.agents.offpolicy.ContinualOffPolicy`) and the same hooks:

- a multi-head deterministic actor (shared trunk on the state without the one-hot, one head per
  task, tanh) and the twin multi-head critic of SAC, each with a target copy
  (:class:`~robotcl.agents.networks.MultiHeadTD3Policy`);
- the critic learns every update against min(Q1', Q2') of the target networks at the target
  actor's action plus clipped Gaussian noise (target policy smoothing: std
  ``target_policy_noise`` 0.2, clipped at ``target_noise_clip`` 0.5); the actor (-Q1 at its own
  action) and both target networks move every ``policy_delay`` (2) updates: the paper's values,
  which are SB3's defaults;
- exploration adds Gaussian noise of std ``action_noise`` (0.1, the paper's) to the actor's
  action, in SB3's [-1, 1] action scale, clipped; none during the uniform warm-up.

One update (:meth:`ContinualTD3.update`) calls the hooks in ContinualSAC's order: ``sample`` ->
critic loss (+ actor loss every ``policy_delay`` updates) + ``penalty`` -> one backward ->
``adjust_gradients`` -> actor step (delayed updates only), critic step -> ``after_step`` ->
targets (delayed updates only). The critic loss is the sum of both Q networks' MSE, as in the
paper's code and SB3's TD3.

The shared settings keep ContinualSAC's (Continual World) defaults, so that SAC and TD3 runs of
one config differ only in the algorithm.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from robotcl.agents.networks import MultiHeadTD3Policy, encoder_gradients
from robotcl.agents.offpolicy import ContinualOffPolicy, frozen
from robotcl.registry import register_agent


class _DeterministicPolicy(torch.nn.Module):
    """The actor seen as obs -> (mean action after tanh, None).

    TD3 explores with N(mu(s), sigma^2) around the squashed action mu(s) (the noise is added
    after tanh), so the post-tanh action is the mean of its behaviour policy. Without a log-std
    EWC's Fisher is sum_a (d mu_a / d theta)^2: that policy's Fisher times sigma^2, a constant the
    coefficient absorbs; MAS differentiates the same output.
    """

    def __init__(self, actor: torch.nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, None]:
        with encoder_gradients(self.actor):
            return self.actor(obs), None


@register_agent("td3")
class ContinualTD3(ContinualOffPolicy, TD3):
    """Multi-head TD3 for a sequence of tasks, with continual-strategy hooks.

    :param num_tasks: length of the suite (the one-hot length, the number of heads)
    :param policy_delay: critic updates per actor and target update (Fujimoto et al. 2018: 2)
    :param target_policy_noise: std of the target policy smoothing noise (paper: 0.2)
    :param target_noise_clip: bound of that noise (paper: 0.5)
    :param action_noise: std of the Gaussian exploration noise, actions in [-1, 1] (paper: 0.1);
        0 explores with the deterministic policy alone
    :param random_steps: uniform-random actions at the start of every task
    :param update_after: env steps into a task before gradient updates begin
    :param net_arch: hidden widths of the actor and critic trunks
    :param activation: "relu", "leaky_relu", "tanh" or "elu"
    :param layer_norm: LayerNorm + tanh after the first layer (Continual World)
    :param reset_buffer: start every task with an empty replay buffer
    :param reset_optimizer: start every task with fresh optimizer state
    :param log_every_updates: how often training losses are recorded
    :param encoder: the ``agent.encoder`` settings (robotcl.config.EncoderConfig); None or
        type "none": the trunks read the state
    Other parameters are SB3's TD3 ones.
    """

    actor_head_names = ("mu",)

    def __init__(
        self,
        policy: Any = MultiHeadTD3Policy,
        env: gym.Env | None = None,
        num_tasks: int = 1,
        learning_rate: float = 1e-3,
        buffer_size: int = 1_000_000,
        batch_size: int = 128,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int = 50,
        gradient_steps: int = 50,
        policy_delay: int = 2,
        target_policy_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        action_noise: float = 0.1,
        random_steps: int = 10_000,
        update_after: int = 1_000,
        net_arch: list[int] | tuple[int, ...] = (256, 256, 256, 256),
        activation: str = "leaky_relu",
        layer_norm: bool = True,
        reset_buffer: bool = True,
        reset_optimizer: bool = True,
        log_every_updates: int = 200,
        encoder: dict[str, Any] | None = None,
        pixel_layout: Any = None,
        task_names: list[str] | None = None,
        tensorboard_log: str | None = None,
        seed: int | None = None,
        device: str = "auto",
        verbose: int = 0,
        _init_setup_model: bool = True,
    ) -> None:
        self.init_continual(
            num_tasks,
            random_steps,
            update_after,
            reset_buffer,
            reset_optimizer,
            log_every_updates,
            task_names,
            encoder,
            pixel_layout,
        )
        self.action_noise_std = float(action_noise)  # the noise object is made in _setup_model
        policy_kwargs = self.multi_head_policy_kwargs(
            num_tasks, net_arch, activation, layer_norm, device
        )
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
            policy_delay=policy_delay,
            target_policy_noise=target_policy_noise,
            target_noise_clip=target_noise_clip,
            policy_kwargs=policy_kwargs,
            tensorboard_log=tensorboard_log,
            seed=seed,
            device=device,
            verbose=verbose,
            _init_setup_model=_init_setup_model,
        )

    # -- set-up ---------------------------------------------------------------------------
    def _setup_model(self) -> None:
        super()._setup_model()  # SB3's TD3, then the strategy's prepare (ContinualOffPolicy)
        dim = int(self.action_space.shape[0])
        self.action_noise = (
            NormalActionNoise(np.zeros(dim), np.full(dim, self.action_noise_std))
            if self.action_noise_std > 0
            else None
        )

    # -- acting ---------------------------------------------------------------------------
    def act(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for a batch of observations: the actor's, or with ``deterministic=False``
        the behaviour policy's (plus N(0, action_noise^2) in [-1, 1] scale, clipped; NumPy's
        global generator, as SB3's action noise)."""
        actions, _ = self.predict(observations, deterministic=True)
        if deterministic or self.action_noise_std == 0:
            return actions
        scaled = self.policy.scale_action(actions)
        noise = np.random.normal(0.0, self.action_noise_std, size=scaled.shape)
        return self.policy.unscale_action(np.clip(scaled + noise, -1, 1))

    # -- parameters -----------------------------------------------------------------------
    def policy_distribution(self) -> torch.nn.Module:
        """obs -> (action after tanh, None): the mean of TD3's Gaussian exploration policy,
        what EWC and MAS differentiate (see :class:`_DeterministicPolicy`)."""
        return _DeterministicPolicy(self.actor)

    # -- the update -----------------------------------------------------------------------
    def losses(self, batch: ReplayBufferSamples, actor: bool = True) -> dict[str, torch.Tensor]:
        """Critic loss on ``batch``, and with ``actor`` the actor loss (no optimizer step)."""
        obs = batch.observations
        with torch.no_grad():
            noise = torch.randn_like(batch.actions) * self.target_policy_noise
            noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
            next_actions = (self.actor_target(batch.next_observations) + noise).clamp(-1, 1)
            next_q = torch.min(
                torch.cat(self.critic_target(batch.next_observations, next_actions), dim=1),
                dim=1,
                keepdim=True,
            ).values
            target_q = batch.rewards + (1 - batch.dones) * self.gamma * next_q
        current_q = self.critic(obs, batch.actions)
        out = {"critic_loss": sum(F.mse_loss(q, target_q) for q in current_q)}
        if actor:
            with frozen(self.critic):  # the actor's term moves only the actor
                out["actor_loss"] = -self.critic.q1_forward(obs, self.actor(obs)).mean()
        return out

    def policy_value_loss(self, obs: torch.Tensor, critic: torch.nn.Module) -> torch.Tensor:
        """Minus ``critic``'s first Q-value at the policy's action (TD3's actor loss)."""
        return -critic.q1_forward(obs, self.actor(obs)).mean()

    def reference_loss(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """The training loss on ``batch`` (critic + actor), for strategies that need gradients
        on a memory."""
        out = self.losses(batch)
        return out["critic_loss"] + out["actor_loss"]

    def update(self, batch: ReplayBufferSamples) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch`` through the strategy hooks; the actor and the targets
        move on every ``policy_delay``-th update only (SB3 counts from 1, so do we)."""
        task = self.current_task
        batch = self.strategy.sample(batch, task)
        delayed = (self._n_updates + 1) % self.policy_delay == 0
        out = self.losses(batch, actor=delayed)
        loss = out["critic_loss"] + out["actor_loss"] if delayed else out["critic_loss"]
        self.hooked_step(loss, out, batch, step_actor=delayed)
        if delayed:
            self._update_target()
        return out
