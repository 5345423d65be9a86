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

import contextlib
from concurrent.futures import ThreadPoolExecutor
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

    def gradients(
        self, batch: ReplayBufferSamples
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """The update's loss (backward left to ``hooked_step``) and :meth:`losses`' outputs; a
        learner may instead put the gradients in place itself and return None as the loss."""
        out = self.losses(batch)
        return out["critic_loss"] + out["actor_loss"], out

    def update(self, batch: ReplayBufferSamples) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch`` through the strategy hooks."""
        task = self.current_task
        batch = self.strategy.sample(batch, task)
        loss, out = self.gradients(batch)
        if self.ent_coef_optimizer is not None:
            log_alpha = self.log_ent_coef[out["tasks"]]
            alpha_loss = -(log_alpha * (out["log_prob"].squeeze(1) + self.target_entropy).detach())
            self.ent_coef_optimizer.zero_grad()
            alpha_loss.mean().backward()
            self.ent_coef_optimizer.step()
        self.hooked_step(loss, out, batch)
        if self._n_updates % self.target_update_interval == 0:
            self._update_target()
        return out

    def _record_extra(self, out: dict[str, torch.Tensor]) -> None:
        name = self.task_names[self.current_task]
        alpha = self._alpha(torch.tensor([self.current_task], device=self.device))
        self.logger.record(f"train/alpha/{name}", float(alpha.reshape(-1)[0]))


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
    :param encoder: the ``agent.encoder`` settings (robotcl.config.EncoderConfig); None or
        type "none": the trunks read the state
    :param parallel_update: compute the critic's and the actor's gradients in two threads
        ("auto": on a CPU with two or more torch threads and no encoder; see :meth:`gradients`)
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
        encoder: dict[str, Any] | None = None,
        parallel_update: bool | str = "auto",
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
        if parallel_update not in ("auto", True, False):
            raise ValueError(f"parallel_update must be 'auto', True or False: {parallel_update!r}")
        if parallel_update is True and self.encoder_settings:
            raise ValueError("parallel_update=True needs a learner without an encoder")
        self.parallel_update = parallel_update
        self._update_pool: ThreadPoolExecutor | None = None
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
            ent_coef=ent_coef,
            policy_kwargs=policy_kwargs,
            tensorboard_log=tensorboard_log,
            seed=seed,
            device=device,
            verbose=verbose,
            _init_setup_model=_init_setup_model,
        )

    def losses(self, batch: ReplayBufferSamples) -> dict[str, torch.Tensor]:
        """Critic and actor losses on ``batch`` (no optimizer step); also the log-probs."""
        tasks = task_index(batch.observations, self.num_tasks)
        alpha = self._alpha(tasks)
        critic_loss = self.critic_loss(batch, self.target_q(batch, alpha))
        actor_loss, log_prob = self.actor_loss(batch.observations, alpha)
        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "log_prob": log_prob,
            "tasks": tasks,
        }

    @classmethod
    def config_problem(cls, config: Any) -> str | None:
        """ContinualOffPolicy's checks, and a threaded update only without an encoder."""
        agent = config.agent
        if agent.parallel_update is True and agent.encoder.type != "none":
            return (
                "agent.parallel_update=true needs agent.encoder.type=none (a shared encoder "
                "would take gradients from both threads); use auto or false"
            )
        return super().config_problem(config)

    def threaded(self) -> bool:
        """Whether updates compute the critic's and the actor's gradients in two threads."""
        if self.parallel_update == "auto":
            return (
                self.device.type == "cpu"
                and not self.encoder_settings
                and torch.get_num_threads() >= 2
            )
        return bool(self.parallel_update)

    def gradients(
        self, batch: ReplayBufferSamples
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """With :meth:`threaded`: the critic's loss and backward pass in a second thread while
        this one does the actor's, each with one torch thread, so that two small networks keep
        two cores busy (one MLP's kernels at batch 256 scale poorly past one core). The same
        computation as one backward pass of the summed losses, up to the order of float sums:
        the actor's backward is restricted to its own parameters as the frozen critic makes
        it, and every random draw (the next actions, then the actor's) stays in this thread in
        the eager path's order. Gradients are left in place (the loss returned is None)."""
        if not self.threaded():
            return super().gradients(batch)
        if self._update_pool is None:
            self._update_pool = ThreadPoolExecutor(
                1,
                thread_name_prefix="robotcl-critic",
                initializer=torch.set_num_threads,
                initargs=(1,),
            )
        obs = batch.observations
        tasks = task_index(obs, self.num_tasks)
        alpha = self._alpha(tasks)
        target = self.target_q(batch, alpha)
        self.actor.optimizer.zero_grad()
        self.critic.optimizer.zero_grad()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            critic = self._update_pool.submit(self._critic_backward, batch, target)
            actor_params = [p for p in self.actor.parameters() if p.requires_grad]
            actor_loss, log_prob = self.actor_loss(obs, alpha, freeze_critic=False)
            actor_loss.backward(inputs=actor_params)
            critic_loss = critic.result()
        finally:
            torch.set_num_threads(threads)
        out = {"critic_loss": critic_loss, "actor_loss": actor_loss.detach(), "log_prob": log_prob}
        return None, {**out, "tasks": tasks}

    def _critic_backward(self, batch: ReplayBufferSamples, target: torch.Tensor) -> torch.Tensor:
        loss = self.critic_loss(batch, target)
        loss.backward()
        return loss.detach()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_update_pool"]

    @torch.no_grad()
    def target_q(self, batch: ReplayBufferSamples, alpha: torch.Tensor) -> torch.Tensor:
        """The soft Bellman target of each row (draws the next actions: before the actor's)."""
        next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
        next_q = torch.min(
            torch.cat(self.critic_target(batch.next_observations, next_actions), dim=1),
            dim=1,
            keepdim=True,
        ).values
        next_q = next_q - alpha * next_log_prob.reshape(-1, 1)
        return batch.rewards + (1 - batch.dones) * self.gamma * next_q

    def critic_loss(self, batch: ReplayBufferSamples, target_q: torch.Tensor) -> torch.Tensor:
        """Both Q networks' squared error against ``target_q``."""
        current_q = self.critic(batch.observations, batch.actions)
        return 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)

    def actor_loss(
        self, obs: torch.Tensor, alpha: torch.Tensor, freeze_critic: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's loss and the log-probs of its actions. Its gradient must not reach the
        critic: the critic is frozen for it, or (``freeze_critic=False``, where another thread
        uses the critic meanwhile) the caller restricts the backward pass to the actor."""
        actions_pi, log_prob = self.actor.action_log_prob(obs)
        log_prob = log_prob.reshape(-1, 1)
        with frozen(self.critic) if freeze_critic else contextlib.nullcontext():
            q_pi = torch.min(torch.cat(self.critic(obs, actions_pi), dim=1), dim=1, keepdim=True)
        return (alpha * log_prob - q_pi.values).mean(), log_prob
