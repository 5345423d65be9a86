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
import copy
from collections.abc import Iterator
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.save_util import load_from_pkl
from stable_baselines3.common.utils import polyak_update

from robotcl.agents.networks import EncoderExtractor, ImageView, PixelExtractor, SharedCrops
from robotcl.agents.sb3 import ContinualSB3
from robotcl.agents.ssl_memory import ObservationMemory
from robotcl.ssl.augment import state_augment
from robotcl.ssl.wiring import SSLWiring
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
            "critic_snapshot",
        }
    )

    #: what a contrastive objective may need that these learners give (robotcl.ssl.objective):
    #: next observations from the replay buffer, the state beside the frames on pixels+proprio
    ssl_inputs: ClassVar[frozenset[str]] = frozenset({"later", "proprio", "target_encoder"})

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
        encoder: dict[str, Any] | None = None,
        pixel_layout: Any = None,
    ) -> None:
        """The continual settings; call before the SB3 constructor (which may set up the model).
        ``encoder``: the ``agent.encoder`` settings (see robotcl.config.EncoderConfig);
        ``pixel_layout``: the layout of rendered observations (robotcl.envs.pixels)."""
        self.pixel_layout = pixel_layout
        self.init_tasks(num_tasks, task_names, log_every_updates)
        self.random_steps, self.update_after = random_steps, update_after
        self.reset_buffer, self.reset_optimizer = reset_buffer, reset_optimizer
        self.encoder_settings = (
            encoder if encoder and encoder.get("type", "none") != "none" else None
        )
        self.ssl_wiring: SSLWiring | None = None
        self.ssl_memory = ObservationMemory(pixel_layout)

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

    def multi_head_policy_kwargs(
        self,
        num_tasks: int,
        net_arch: list[int] | tuple[int, ...],
        activation: str,
        layer_norm: bool,
        device: str,
    ) -> dict[str, Any]:
        """Keyword arguments of the multi-head SB3 policies in :mod:`robotcl.agents.networks`;
        with an encoder, one :class:`EncoderExtractor` shared by actor and critic."""
        kwargs: dict[str, Any] = dict(
            net_arch=list(net_arch),
            activation_fn=self.activation(activation),
            num_tasks=num_tasks,
            layer_norm=layer_norm,
            optimizer_kwargs=self.optimizer_kwargs(device),
        )
        settings = getattr(self, "encoder_settings", None)
        if settings and settings["type"] == "pixels":
            kwargs.update(
                features_extractor_class=PixelExtractor,
                features_extractor_kwargs=dict(
                    num_tasks=num_tasks,
                    layout=self.pixel_layout,
                    feature_dim=settings["feature_dim"],
                    crop=settings.get("crop", 84),
                ),
                share_features_extractor=True,
            )
        elif settings:
            kwargs.update(
                features_extractor_class=EncoderExtractor,
                features_extractor_kwargs=dict(
                    num_tasks=num_tasks,
                    feature_dim=settings["feature_dim"],
                    hidden=settings["hidden"],
                ),
                share_features_extractor=True,
            )
        return kwargs

    # -- the encoder and its contrastive objective ---------------------------------------
    def _setup_model(self) -> None:
        if self.pixel_layout is not None and self.replay_buffer is None:
            # frames stored once, as uint8; made first, so SB3 never allocates its float stacks
            self.replay_buffer = self.make_replay_buffer()
        super()._setup_model()  # the SB3 algorithm's, then the strategy's prepare
        settings = self.encoder_settings
        if not settings:
            return
        for net in (self.actor, getattr(self, "actor_target", None)):
            if net is not None:
                net.encoder_gradients = settings["actor_gradients"]
        for net in (self.critic, self.critic_target):
            net.encoder_gradients = settings["critic_gradients"]
        layout = self.pixel_layout
        target = self.critic_target.features_extractor
        if layout is None:
            encoder, augment = self.encoder, state_augment
        else:  # the frames' features; the pixel encoder crops at random itself
            encoder, augment = ImageView(self.encoder), FrameViews(layout)
            target = ImageView(target, random=True)  # CURL's key: a random crop
        self.ssl_wiring = SSLWiring.build(
            settings,
            encoder,
            augment,
            seed=int(self.seed or 0),
            device=self.device,
            provides=frozenset({"later"} | ({"proprio"} if layout and layout.proprio else set())),
            memory=self.ssl_memory,
            proprio_dim=layout.proprio if layout is not None else None,
            learner=type(self).__name__,
            target_encoder=target,
        )
        if layout is not None and settings.get("crops", "shared") == "shared":
            crops = SharedCrops()  # CURL's: one crop of a batch for every network in an update
            for module in self.policy.modules():
                if isinstance(module, PixelExtractor):
                    module.shared = crops
        states = getattr(self, "_ssl_rng_states", None)  # from a saved learner
        if self.ssl_wiring is not None and states is not None:
            self.ssl_wiring.set_random_states(states)
        self.reset_optimizers()

    def save(self, path: Any, exclude: Any = None, include: Any = None) -> None:
        """SB3's save, with the SSL random states (memory draws, augmentations) kept."""
        if self.ssl_wiring is not None:
            self._ssl_rng_states = self.ssl_wiring.random_states()
        super().save(path, exclude, include)  # type: ignore[misc]

    @property
    def ssl(self) -> Any:
        """The contrastive objective (robotcl.ssl), or None."""
        return self.ssl_wiring.objective if self.ssl_wiring is not None else None

    @property
    def ssl_optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer of the objective's own parameters (and of the encoder where only the
        objective trains it), or None."""
        return self.ssl_wiring.optimizer if self.ssl_wiring is not None else None

    @property
    def encoder(self) -> torch.nn.Module | None:
        """The shared observation encoder (None without one)."""
        return self.actor.features_extractor if self.encoder_settings else None

    def _encoder_owner(self) -> str | None:
        """Which optimizer steps the encoder: the critic's, the actor's, the SSL one's, or none."""
        settings = self.encoder_settings
        if not settings:
            return None
        if settings["critic_gradients"]:
            return "critic"
        if settings["actor_gradients"]:
            return "actor"
        return "ssl" if self.ssl_wiring is not None else None

    def end_task(self) -> None:
        """At the task's end: keep observations for the SSL memory of earlier tasks."""
        if self.ssl_wiring is None:
            return
        from robotcl.strategies.memory import buffer_rows

        def rows(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            picked = buffer_rows(self.replay_buffer, index)
            return picked.observations, picked.next_observations

        self.ssl_wiring.remember(self.current_task, self.replay_buffer.size(), rows)

    def ssl_term(self, batch: Any, out: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The weighted SSL loss of this update (see :meth:`SSLWiring.term`), or None."""
        if self.ssl_wiring is None:
            return None
        proprio = self.encoder.proprio if self.pixel_layout is not None else None
        obs, later = batch.observations, batch.next_observations
        k = getattr(self.ssl, "k", 1)
        if k > 1 and self.ssl_wiring.active(self._n_updates):  # pairs k steps apart
            from robotcl.agents.later_pairs import later_pairs

            obs, later = later_pairs(self.replay_buffer, len(obs), k, self.ssl_wiring.generator)
        return self.ssl_wiring.term(self._n_updates, self.current_task, obs, later, out, proprio)

    def hooked_step(
        self, loss: torch.Tensor, out: dict[str, torch.Tensor], batch: Any, step_actor: bool = True
    ) -> None:
        """The tail every update shares: the strategy's penalty added to ``loss``, one backward
        pass, the strategy's gradient adjustment, the optimizer steps (the actor's only with
        ``step_actor``), ``after_step``; counts the update. The contrastive loss is either added
        to ``loss`` (``agent.encoder.ssl_update=joint``) or stepped after it on its own
        (``separate``, CURL's: :meth:`ssl_update`)."""
        task = self.current_task
        penalty = self.strategy.penalty(task)
        if penalty is not None:
            loss = loss + penalty
            out["penalty"] = penalty
        joint = self.ssl_wiring is not None and self.ssl_wiring.joint
        ssl = self.ssl_term(batch, out) if joint else None
        if ssl is not None:
            loss = loss + ssl
        self.actor.optimizer.zero_grad()
        self.critic.optimizer.zero_grad()
        loss.backward()
        if self.pixel_layout is not None:
            self.encoder.anchor = None  # no graph kept past the update
        self.strategy.adjust_gradients(task)
        if step_actor:
            self.actor.optimizer.step()
        self.critic.optimizer.step()
        if joint:
            self.ssl_wiring.step(self._n_updates)  # type: ignore[union-attr]
        self.strategy.after_step()
        self._n_updates += 1
        if self.ssl_wiring is not None and not joint:
            self.ssl_update(batch, out)

    def ssl_update(self, batch: Any, out: dict[str, torch.Tensor]) -> None:
        """CURL's own update (Laskin et al. 2020, ``update_cpc``), on the updates whose count is a
        multiple of ``ssl_every`` (so logged ones include it): the contrastive loss (and the
        strategy's penalty) through its own backward pass and its own Adam over the encoder and
        the objective's parameters, the strategy's gradient adjustment and ``after_step``, then
        the momentum encoders. Its gradient is normalised on its own: summed into the critic's
        loss, it is drowned wherever rewards are large (D'Claw's are about -10 a step, DMC's lie
        in [0, 1]), and the encoder never follows it."""
        wiring = self.ssl_wiring
        if wiring is None or not wiring.active(self._n_updates):
            return
        task = self.current_task
        loss = self.ssl_term(batch, out)  # zeroes the SSL optimizer's grads
        if loss is None:
            return
        penalty = self.strategy.penalty(task)
        if penalty is not None:
            loss = loss + penalty
        self.actor.optimizer.zero_grad()
        self.critic.optimizer.zero_grad()
        loss.backward()
        if self.pixel_layout is not None:
            self.encoder.anchor = None  # no graph kept past the update
        self.strategy.adjust_gradients(task)
        if wiring.optimizer is not None:
            wiring.optimizer.step()
        wiring.objective.after_update()
        self.strategy.after_step()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "ssl_wiring"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.ssl is not None:
            state_dicts = [*state_dicts, "ssl"]
            if self.ssl_optimizer is not None:
                state_dicts.append("ssl_optimizer")
        return state_dicts, variables

    # -- task switches --------------------------------------------------------------------
    def start_task(self, task_id: int, env: gym.Env, seed: int | None = None) -> None:
        """Switch to ``task_id``: new env, and the resets the settings ask for."""
        self.set_env(self.wrap_env(env, seed))
        self.current_task = task_id
        self._task_start_step = self.num_timesteps
        if self.reset_buffer or self.replay_buffer is None:
            self.replay_buffer = self.make_replay_buffer()
        if self.reset_optimizer:
            self.reset_optimizers()

    def resume_task(
        self, task_id: int, env: gym.Env, steps_done: int, seed: int | None = None
    ) -> None:
        """Continue ``task_id`` after ``steps_done`` of its steps (a partial checkpoint): new
        env, the loaded replay buffer and optimizers kept; the next step starts an episode.
        (The checkpoint's own step is not in its buffer: SB3 stores a transition after the
        callback that saved it.)"""
        self.set_env(self.wrap_env(env, seed))
        self.current_task = task_id
        self._task_start_step = self.num_timesteps - steps_done

    def load_replay_buffer(self, path: Any, truncate_last_traj: bool = True) -> None:
        """Load a saved replay buffer: SB3's or the frame replay (SB3's own loader refuses any
        buffer that is not its ReplayBuffer)."""
        self.replay_buffer = load_from_pkl(path, self.verbose)
        self.replay_buffer.device = self.device

    def make_replay_buffer(self) -> Any:
        """An empty replay buffer: SB3's, or for rendered frames one that stores each frame once."""
        if self.pixel_layout is not None:
            from robotcl.agents.frame_buffer import FrameReplayBuffer

            return FrameReplayBuffer(
                self.buffer_size,
                self.pixel_layout,
                int(self.observation_space.shape[0]),
                int(self.action_space.shape[0]),
                device=self.device,
            )
        return ReplayBuffer(
            self.buffer_size,
            self.observation_space,
            self.action_space,
            device=self.device,
            n_envs=1,
            handle_timeout_termination=True,
        )

    def reset_optimizers(self) -> None:
        """Fresh optimizer state for the actor and the critic (over their trainable parameters;
        a shared encoder in exactly one optimizer: see ``_encoder_owner``) and the SSL heads."""
        policy = self.policy
        encoder = {id(p) for p in self.encoder.parameters()} if self.encoder is not None else set()
        owner = self._encoder_owner()
        for name, net in (("actor", self.actor), ("critic", self.critic)):
            net.optimizer = policy.optimizer_class(
                [
                    p
                    for p in net.parameters()
                    if p.requires_grad and (id(p) not in encoder or owner == name)
                ],
                lr=self.lr_schedule(1),
                **policy.optimizer_kwargs,
            )
        if self.ssl_wiring is not None:  # separate: CURL's own Adam over the encoder too
            own = owner == "ssl" or not self.ssl_wiring.joint
            self.ssl_wiring.reset_optimizer(self.lr_schedule(1), self.encoder if own else None)

    def critic_snapshot(self) -> torch.nn.Module:
        """A frozen copy of the critic as it values the tasks now (its encoder copied with it;
        no optimizer, no gradients, evaluation mode)."""
        optimizer, self.critic.optimizer = self.critic.optimizer, None
        try:
            snapshot = copy.deepcopy(self.critic)
        finally:
            self.critic.optimizer = optimizer
        return snapshot.requires_grad_(False).eval()

    def policy_value_loss(self, obs: torch.Tensor, critic: torch.nn.Module) -> torch.Tensor:
        """The actor's loss against ``critic`` on ``obs``: minus its value of the policy's action,
        without an entropy term (the learner defines which of the critic's Q-values count)."""
        raise NotImplementedError

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
        groups = {
            "actor_trunk": list(self.actor.latent_pi.parameters()),
            "actor_heads": [p for head in heads for p in head.parameters()],
            "critic_trunk": [p for q in critic_nets for p in q[0].parameters()],
            "critic_heads": [p for q in critic_nets for p in q[1].parameters()],
        }
        if self.encoder is not None:
            groups["encoder"] = list(self.encoder.parameters())
        return groups

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The representation: the encoder's output where there is one, else the actor trunk's
        output (what the per-task heads read)."""
        actor = self.actor
        if self.pixel_layout is not None:
            return self.encoder.image_features(obs)  # the frames' features, without the state
        features = actor.extract_features(obs, actor.features_extractor)
        return features if self.encoder is not None else actor.latent_pi(features)

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

    def update_scope(self) -> contextlib.AbstractContextManager[None]:
        """What holds for the length of one update: the shared crops of pixel batches
        (``agent.encoder.crops=shared``)."""
        shared = getattr(self.encoder, "shared", None)
        return shared.update() if shared is not None else contextlib.nullcontext()

    @torch.no_grad()
    def _update_target(self) -> None:
        """Polyak averaging of the target critic, and of the target actor where there is one
        (TD3), as a few multi-tensor kernels."""
        pairs = [("critic", "critic_target"), ("actor", "actor_target")]
        targets, sources, seen = [], [], set()
        for source, target in pairs:
            target_net = getattr(self, target, None)
            if target_net is None:
                continue
            target_params = list(target_net.parameters())
            source_params = list(getattr(self, source).parameters())
            if len(target_params) != len(source_params):
                raise RuntimeError(f"{source} and {target} no longer have matching parameters")
            for t, s in zip(target_params, source_params, strict=True):
                if id(t) not in seen:  # a target encoder shared by both targets moves once
                    seen.add(id(t))
                    targets.append(t)
                    sources.append(s)
        key = self.ssl if getattr(self.ssl, "key_is_target", False) else None
        if key is None:
            torch._foreach_lerp_(targets, sources, self.tau)
        else:  # CURL: the target encoder (its key encoder) moves at its own rate
            encoder = {id(p) for p in self.critic_target.features_extractor.parameters()}
            for rate, inside in ((key.settings.tau, True), (self.tau, False)):
                pairs = [(t, s) for t, s in zip(targets, sources, strict=True)
                         if (id(t) in encoder) == inside]  # fmt: skip
                if pairs:
                    torch._foreach_lerp_([t for t, _ in pairs], [s for _, s in pairs], rate)
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
            with self.update_scope():
                out = self.update(batch)
            if self._n_updates % self.log_every_updates == 0:
                self.record(out)
        self.policy.set_training_mode(False)
        self.check_finite(out)


class FrameViews:
    """The SSL view of flat pixel observations: the observation itself (the pixel encoder crops
    it at random); :meth:`image_augment` adds MoCo v2's image augmentation of its frames before
    that crop (``agent.encoder.moco.augmentation=v2``)."""

    def __init__(self, layout: Any) -> None:
        self.layout = layout

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x

    def image_augment(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``x`` with its frames colour-jittered, grayed, blurred and flipped (MoCo v2)."""
        from robotcl.ssl.augment import moco_v2

        frames = moco_v2(self.layout.images(x), generator).reshape(len(x), -1)
        return torch.cat([frames, x[..., self.layout.pixel_values :]], dim=-1)
