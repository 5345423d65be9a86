"""ContinualSAC: stable-baselines3's SAC extended for task sequences.

What it adds to SB3's SAC (the defaults follow Continual World, Wolczyk et al. 2021):

- a multi-head policy (:mod:`robotcl.agents.networks`): shared trunk, one actor and one critic head
  per task chosen by the one-hot, which the trunk does not see;
- a log-alpha per task when the entropy coefficient is tuned (``ent_coef="auto"``);
- from :class:`~robotcl.agents.offpolicy.ContinualOffPolicy`: task switches that may reset the
  replay buffer and the optimizers, ``random_steps`` uniform-random actions at each task's start,
  updates from ``update_after``, the learner protocol;
- one update step that calls the strategy hooks: ``sample`` -> loss + ``penalty`` -> backward ->
  ``adjust_gradients`` -> optimizer steps -> ``after_step``.

Saving and loading go through SB3 (``save`` / ``ContinualSAC.load``); the strategy is saved
separately by the experiment's checkpoint.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from robotcl.agents.networks import MultiHeadSACPolicy, encoder_gradients, task_index
from robotcl.agents.offpolicy import ContinualOffPolicy, frozen
from robotcl.registry import register_agent

__all__ = ["ContinualSAC", "PerTaskEntropy", "frozen"]


class _ActorDistribution(torch.nn.Module):
    """The actor seen as obs -> (mean, log-std), before tanh squashing."""

    def __init__(self, actor: torch.nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with encoder_gradients(self.actor):
            mean, log_std, _ = self.actor.get_action_dist_params(obs)
        return mean, log_std


class PerTaskEntropy:
    """The maximum-entropy update with a log-alpha per task, for SB3 algorithms of the SAC family
    (SAC, TQC, ...) under :class:`~robotcl.agents.offpolicy.ContinualOffPolicy`.

    Placed first in the bases (``class ContinualSAC(PerTaskEntropy, ContinualOffPolicy, SAC)``);
    the learner defines ``losses(batch)`` -> critic_loss, actor_loss, log_prob, tasks, using
    ``self._alpha(tasks)`` as each row's entropy coefficient.
    """

    # -- set-up ---------------------------------------------------------------------------
    def _setup_model(self) -> None:
        super()._setup_model()  # the SB3 algorithm's, then the strategy's prepare
        if self.log_ent_coef is not None:  # one log-alpha per task
            init = float(self.log_ent_coef.detach()[0])
            self.log_ent_coef = torch.full(
                (self.num_tasks,), init, device=self.device, requires_grad=True
            )
            self.ent_coef_optimizer = torch.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))

    def reset_optimizers(self) -> None:
        """Fresh optimizer state for the actor, the critic and the log-alphas."""
        super().reset_optimizers()
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer = torch.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))

    # -- parameters -----------------------------------------------------------------------
    def policy_distribution(self) -> torch.nn.Module:
        """obs -> (mean, log-std) of the Gaussian actor: what EWC and MAS differentiate."""
        return _ActorDistribution(self.actor)

    # -- the update -----------------------------------------------------------------------
    def _alpha(self, tasks: torch.Tensor) -> torch.Tensor:
        if self.log_ent_coef is None:
            return self.ent_coef_tensor
        return self.log_ent_coef.detach()[tasks].exp().unsqueeze(1)

    def reference_loss(self, batch: ReplayBufferSamples) -> torch.Tensor:
        """The training loss on ``batch``, for strategies that need gradients on a memory."""
        out = self.losses(batch)
        return out["critic_loss"] + out["actor_loss"]

    def policy_value_loss(self, obs: torch.Tensor, critic: torch.nn.Module) -> torch.Tensor:
        """Minus the smaller of ``critic``'s two Q-values at the policy's reparametrised action
        (SAC's actor loss without its entropy term)."""
        actions, _ = self.actor.action_log_prob(obs)
        return -torch.min(torch.cat(critic(obs, actions), dim=1), dim=1).values.mean()

    def update(self, batch: ReplayBufferSamples) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch`` through the strategy hooks."""
        task = self.current_task
        batch = self.strategy.sample(batch, task)
        out = self.losses(batch)
        # the actor (and its alpha) every actor_update_interval-th update, counted from 1
        step_actor = (self._n_updates + 1) % getattr(self, "actor_update_interval", 1) == 0
        if self.ent_coef_optimizer is not None and step_actor:
            log_alpha = self.log_ent_coef[out["tasks"]]
            alpha_loss = -(log_alpha * (out["log_prob"].squeeze(1) + self.target_entropy).detach())
            self.ent_coef_optimizer.zero_grad()
            alpha_loss.mean().backward()
            self.ent_coef_optimizer.step()
        loss = out["critic_loss"] + out["actor_loss"] if step_actor else out["critic_loss"]
        self.hooked_step(loss, out, batch, step_actor=step_actor)
        if self._n_updates % self.target_update_interval == 0:
            self._update_target()
        return out

    def _record_extra(self, out: dict[str, torch.Tensor]) -> None:
        name = self.task_names[self.current_task]
        alpha = self._alpha(torch.tensor([self.current_task], device=self.device))
        self.logger.record(f"train/alpha/{name}", float(alpha.reshape(-1)[0]))
        if "q" in out:
            record_by_task(self.logger, self.task_names, out["tasks"], out["q"], out["target_q"])


def record_by_task(
    logger: Any, names: list[str], tasks: torch.Tensor, q: torch.Tensor, target: torch.Tensor
) -> None:
    """Where a batch mixes tasks (replay, multitask): each task's rows' mean Q (the first
    critic) and squared TD error, ``train/by_task/<task>/{q,td_error}``, to see which task's rows
    drive the shared critic."""
    present = torch.unique(tasks)
    if len(present) < 2:
        return
    errors = (q - target).square().reshape(-1)
    q = q.reshape(-1)
    for task in present.tolist():
        rows = tasks == task
        logger.record(f"train/by_task/{names[task]}/q", float(q[rows].mean()))
        logger.record(f"train/by_task/{names[task]}/td_error", float(errors[rows].mean()))


@register_agent("sac")
class ContinualSAC(PerTaskEntropy, ContinualOffPolicy, SAC):
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
    :param actor_update_interval: update the actor and its alpha every N updates (CURL's DMC
        settings: 2)
    :param target_update_interval: move the target critic every N updates (CURL's: 2)
    :param encoder: the ``agent.encoder`` settings (robotcl.config.EncoderConfig); None or
        type "none": the trunks read the state
    Other parameters are SB3's SAC ones.
    """

    actor_head_names = ("mu", "log_std")

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
        actor_update_interval: int = 1,
        target_update_interval: int = 1,
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
        policy_kwargs = self.multi_head_policy_kwargs(
            num_tasks, net_arch, activation, layer_norm, device
        )
        self.actor_update_interval = actor_update_interval
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
            target_update_interval=target_update_interval,
            policy_kwargs=policy_kwargs,
            tensorboard_log=tensorboard_log,
            seed=seed,
            device=device,
            verbose=verbose,
            _init_setup_model=_init_setup_model,
        )

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
            "q": current_q[0].detach(),
            "target_q": target_q,
        }
