"""Multi-head actor and critic for task sequences, as SB3 policy parts.

The observation ends with a one-hot task id. The trunk sees only the state part; each task has
its own output head, chosen by the one-hot (Continual World's multi-head setting; the CoRL 2021
study's "shared trunk with a mean/log-std head and a critic per task"). Heads are stored as one
linear layer with ``num_tasks`` x outputs, which is equivalent and batches over mixed tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor, SACPolicy
from stable_baselines3.td3.policies import Actor as DeterministicActor
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
}


class StateExtractor(BaseFeaturesExtractor):
    """Drop the trailing one-hot: the trunk never sees which task it is on."""

    def __init__(self, observation_space: spaces.Box, num_tasks: int) -> None:
        super().__init__(observation_space, int(observation_space.shape[0]) - num_tasks)
        self.num_tasks = num_tasks

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return observations[..., : -self.num_tasks]


class EncoderExtractor(BaseFeaturesExtractor):
    """Drop the trailing one-hot, then encode the state (MLP + LayerNorm, robotcl.ssl): the
    encoder shared by actor and critic, which a contrastive objective may also train."""

    def __init__(
        self,
        observation_space: spaces.Box,
        num_tasks: int,
        feature_dim: int = 50,
        hidden: int = 256,
    ) -> None:
        super().__init__(observation_space, feature_dim)
        from robotcl.ssl.encoders import StateEncoder

        self.num_tasks = num_tasks
        self.encoder = StateEncoder(
            int(observation_space.shape[0]) - num_tasks, feature_dim, hidden
        )

    @property
    def feature_dim(self) -> int:
        """The output width (robotcl.ssl's name for SB3's ``features_dim``)."""
        return self.features_dim

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.encoder(observations[..., : -self.num_tasks])


class SharedCrops:
    """One random crop of each observation batch for the length of an update, shared by every
    network that encodes that batch (``agent.encoder.crops=shared``, CURL's arrangement: the
    batch is cropped once when sampled, so the critic, the actor and the contrastive query all
    see the anchor crop, and the actor and the critic target both see one random crop of the
    next observations). Batches are told apart by identity; outside :meth:`update` (acting,
    evaluation, the probe) nothing is shared."""

    def __init__(self) -> None:
        self._offsets: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @contextlib.contextmanager
    def update(self) -> Iterator[None]:
        """Share crops until the block ends."""
        self._offsets = []
        try:
            yield
        finally:
            self._offsets = None

    @property
    def active(self) -> bool:
        return self._offsets is not None

    def offsets(self, observations: torch.Tensor, draw: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The crop offsets of ``observations`` in this update: drawn (``draw()``) the first time
        the batch is encoded, the same ones after."""
        assert self._offsets is not None, "offsets are shared only inside update()"
        for seen, offsets in self._offsets:
            if seen is observations:
                return offsets
        offsets = draw()
        self._offsets.append((observations, offsets))
        return offsets


class PixelExtractor(BaseFeaturesExtractor):
    """Rendered frames (flat, see robotcl.envs.pixels.PixelLayout) through CURL's convolutional
    encoder: a random ``crop`` in training, the centre crop otherwise (CURL), values / 255; the
    state (pixels+proprio) is appended to the features. With :attr:`shared` set and active (an
    update of ``agent.encoder.crops=shared``), every encoding of one batch uses the same random
    crop, in training and eval mode alike (the critic target sits in eval mode)."""

    def __init__(
        self,
        observation_space: spaces.Box,
        num_tasks: int,
        layout: Any,
        feature_dim: int = 50,
        crop: int = 84,
    ) -> None:
        super().__init__(observation_space, feature_dim + layout.proprio)
        from robotcl.ssl.encoders import PixelEncoder

        self.num_tasks, self.layout, self.crop = num_tasks, layout, crop
        self.encoder = PixelEncoder(3 * layout.frames, crop, feature_dim)
        #: the update's crops, shared with the other extractors of the learner (None: each
        #: forward draws its own crop; set by the learner, not saved)
        self.shared: SharedCrops | None = None

    @property
    def feature_dim(self) -> int:
        return self.features_dim

    #: (observations, features) of the last training forward that gradients flow through: a
    #: contrastive objective takes them as its anchor (CURL's anchor is the critic's crop)
    anchor: tuple[torch.Tensor, torch.Tensor] | None = None

    def image_features(
        self, observations: torch.Tensor, random: bool | None = None
    ) -> torch.Tensor:
        """The convolutional encoder's features of the frames alone: the update's shared crop
        of ``observations`` (see :class:`SharedCrops`) when there is one and ``random`` is None;
        otherwise a new random crop (``random``; default: in training) or the centre one."""
        from robotcl.ssl.augment import center_crop, crop_at, crop_offsets, random_crop

        images = self.layout.images(observations) / 255.0
        shared = self.shared
        if random is None and shared is not None and shared.active:
            offsets = shared.offsets(observations, lambda: crop_offsets(images, self.crop))
            cropped = crop_at(images, offsets, self.crop)
        else:
            fresh = self.training if random is None else random
            cropped = (random_crop if fresh else center_crop)(images, self.crop)
        features = self.encoder(cropped)
        if self.training and features.requires_grad:
            self.anchor = (observations, features)
        return features

    def take_anchor(self, observations: torch.Tensor) -> torch.Tensor | None:
        """The features of ``observations`` (the same tensor) from the last training forward with
        gradients, once; None if that forward saw other observations or none was made."""
        anchor, self.anchor = self.anchor, None
        return anchor[1] if anchor is not None and anchor[0] is observations else None

    def proprio(self, observations: torch.Tensor) -> torch.Tensor:
        """The state riding along with the frames (pixels+proprio; empty otherwise)."""
        return observations[..., self.layout.pixel_values : self.layout.width]

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        features = self.image_features(observations)
        if self.layout.proprio:
            features = torch.cat([features, self.proprio(observations)], dim=-1)
        return features


class ImageView(nn.Module):
    """What a contrastive objective trains on pixels: the frames' features of a
    :class:`PixelExtractor`, without the state appended to them (which would make two views of
    one state trivially alike). The first view of a batch is its anchor: the critic's own
    features where the critic has just encoded it (one pass of the convolutional encoder
    forward and backward saved), else the update's shared crop (see :class:`SharedCrops`);
    further views of the same batch are new random crops (in training). ``random=True``: every
    view a new random crop (CURL's key, by the critic target's encoder, which is in eval
    mode)."""

    def __init__(self, extractor: PixelExtractor, random: bool | None = None) -> None:
        super().__init__()
        self.extractor = extractor
        self.feature_dim = extractor.encoder.feature_dim
        self.random = random  # None: random crops in training (as the extractor's own forward)
        self._anchored: torch.Tensor | None = None  # the last batch given its anchor view

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.random is not None:
            return self.extractor.image_features(observations, self.random)
        if self._anchored is observations:  # a further view: a crop of its own
            return self.extractor.image_features(observations, self.extractor.training)
        self._anchored = observations
        anchor = self.extractor.take_anchor(observations)
        return anchor if anchor is not None else self.extractor.image_features(observations)


@contextlib.contextmanager
def encoder_gradients(actor: nn.Module) -> Iterator[None]:
    """Let gradients through the actor's encoder (EWC and MAS weigh encoder parameters through
    the policy's outputs even when the actor's training loss does not reach them)."""
    flag = getattr(actor, "encoder_gradients", True)
    actor.encoder_gradients = True
    try:
        yield
    finally:
        actor.encoder_gradients = flag


def actor_features(actor: Any, obs: torch.Tensor) -> torch.Tensor:
    """The actor's features of ``obs``: without a graph while the actor does not train the
    encoder (CURL: detached features; computing them without autograd is cheaper)."""
    with torch.set_grad_enabled(actor.encoder_gradients and torch.is_grad_enabled()):
        return actor.extract_features(obs, actor.features_extractor)


def task_index(observations: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """The task index of each row, read from the trailing one-hot."""
    return observations[..., -num_tasks:].argmax(dim=-1)


def select_head(outputs: torch.Tensor, tasks: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """From (B, num_tasks * k) outputs, pick each row's task block: (B, k)."""
    blocks = outputs.view(outputs.shape[0], num_tasks, -1)
    return blocks[torch.arange(outputs.shape[0], device=outputs.device), tasks]


def _transformed(x: torch.Tensor) -> bool:
    """True inside torch.func transforms; also True where torch cannot tell (no fast path)."""
    check = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    return True if check is None else bool(check(x))


class TaskHeads(nn.Linear):
    """One linear output head per task, stored as a single (num_tasks * k)-wide layer.

    ``forward(x, tasks)`` gives each row its task's block. On the CPU a batch from one task
    (the usual case) computes only that block, which is exact and saves most of the head's
    work; on a GPU, where checking would cost a device sync, all blocks are computed.
    """

    def __init__(self, in_features: int, out_per_task: int, num_tasks: int) -> None:
        super().__init__(in_features, out_per_task * num_tasks)
        self.num_tasks, self.out_per_task = num_tasks, out_per_task

    def forward(self, x: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if (
            not x.is_cuda
            and not _transformed(x)  # vmap/jacrev (EWC, MAS) allow no data-dependent branch
            and len(tasks)
            and bool((tasks == tasks[0]).all())
        ):
            k = self.out_per_task
            block = slice(int(tasks[0]) * k, (int(tasks[0]) + 1) * k)
            return F.linear(x, self.weight[block], self.bias[block])
        return select_head(super().forward(x), tasks, self.num_tasks)


def make_trunk(
    in_dim: int, net_arch: list[int], activation: type[nn.Module], layer_norm: bool
) -> nn.Sequential:
    """MLP trunk; with ``layer_norm`` the first layer is followed by LayerNorm + tanh
    (Continual World's actor and critic)."""
    layers: list[nn.Module] = []
    dim = in_dim
    for i, width in enumerate(net_arch):
        layers.append(nn.Linear(dim, width))
        if i == 0 and layer_norm:
            layers += [nn.LayerNorm(width), nn.Tanh()]
        else:
            layers.append(activation())
        dim = width
    return nn.Sequential(*layers)


class MultiHeadActor(Actor):
    """SB3's squashed-Gaussian actor with a shared trunk and per-task mean/log-std heads."""

    def __init__(self, *args: Any, num_tasks: int = 1, layer_norm: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.num_tasks, self.layer_norm = num_tasks, layer_norm
        action_dim = int(self.action_space.shape[0])
        self.latent_pi = make_trunk(
            self.features_dim, self.net_arch, self.activation_fn, layer_norm
        )
        width = self.net_arch[-1] if self.net_arch else self.features_dim
        self.mu = TaskHeads(width, action_dim, num_tasks)
        self.log_std = TaskHeads(width, action_dim, num_tasks)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(num_tasks=self.num_tasks, layer_norm=self.layer_norm)
        return data

    #: False while the encoder is trained by the critic and SSL only (CURL): actor gradients
    #: stop at the features
    encoder_gradients = True

    def get_action_dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        tasks = task_index(obs, self.num_tasks)
        latent = self.latent_pi(actor_features(self, obs))
        mean, log_std = self.mu(latent, tasks), self.log_std(latent, tasks)
        return mean, torch.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX), {}


class MultiHeadCritic(ContinuousCritic):
    """Twin Q networks, each a shared trunk over (state, action) with a head per task of
    ``outputs`` values (1; or a distributional critic's quantiles, as TQC's)."""

    def __init__(
        self,
        *args: Any,
        num_tasks: int = 1,
        layer_norm: bool = False,
        outputs: int = 1,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.num_tasks, self.outputs = num_tasks, outputs
        action_dim = int(self.action_space.shape[0])
        net_arch: list[int] = kwargs["net_arch"]
        activation = kwargs.get("activation_fn", nn.ReLU)
        in_dim = kwargs["features_dim"] + action_dim
        width = net_arch[-1] if net_arch else in_dim
        self.q_networks = []
        for idx in range(self.n_critics):
            q_net = nn.Sequential(
                make_trunk(in_dim, net_arch, activation, layer_norm),
                TaskHeads(width, outputs, num_tasks),
            )
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)

    #: whether the critic's loss trains a shared features extractor (robotcl's encoders: yes;
    #: stable-baselines3's own sharing trains it through the actor instead)
    encoder_gradients = False

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        trains = self.encoder_gradients or not self.share_features_extractor
        with torch.set_grad_enabled(trains and torch.is_grad_enabled()):
            return self.extract_features(obs, self.features_extractor)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self._features(obs)
        tasks = task_index(obs, self.num_tasks)
        q_input = torch.cat([features, actions], dim=1)
        return tuple(q[1](q[0](q_input), tasks) for q in self.q_networks)

    def q1_forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The first Q network only (TD3's actor loss): the others are not computed."""
        features = self._features(obs)
        q = self.q_networks[0]
        return q[1](q[0](torch.cat([features, actions], dim=1)), task_index(obs, self.num_tasks))


class MultiHeadPolicyMixin:
    """What the multi-head SB3 off-policy policies share, placed before the SB3 policy in the
    bases: the task count and LayerNorm switch, kept for saving, the features extractor that
    strips the one-hot, and how actor (``actor_class``) and critic (:class:`MultiHeadCritic`, with
    ``n_quantiles`` outputs per task when the SB3 critic has quantiles) are made."""

    actor_class: type[nn.Module]

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Any,
        *args: Any,
        num_tasks: int = 1,
        layer_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        self.num_tasks, self.layer_norm = num_tasks, layer_norm
        kwargs.setdefault("features_extractor_class", StateExtractor)
        kwargs.setdefault("features_extractor_kwargs", {"num_tasks": num_tasks})
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(num_tasks=self.num_tasks, layer_norm=self.layer_norm)
        return data

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> nn.Module:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        actor = self.actor_class(**kwargs, num_tasks=self.num_tasks, layer_norm=self.layer_norm)
        return actor.to(self.device)

    def make_critic(
        self, features_extractor: BaseFeaturesExtractor | None = None
    ) -> ContinuousCritic:
        kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        outputs = kwargs.pop("n_quantiles", 1)
        critic = MultiHeadCritic(
            **kwargs, num_tasks=self.num_tasks, layer_norm=self.layer_norm, outputs=outputs
        )
        return critic.to(self.device)


class MultiHeadSACPolicy(MultiHeadPolicyMixin, SACPolicy):
    """SB3 SAC policy built from :class:`MultiHeadActor` and :class:`MultiHeadCritic`."""

    actor_class = MultiHeadActor


class MultiHeadTD3Actor(DeterministicActor):
    """SB3's deterministic TD3 actor with a shared trunk and a per-task head, then tanh."""

    def __init__(self, *args: Any, num_tasks: int = 1, layer_norm: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.num_tasks, self.layer_norm = num_tasks, layer_norm
        action_dim = int(self.action_space.shape[0])
        del self.mu  # SB3's single MLP; registered again below, after the trunk
        self.latent_pi = make_trunk(
            self.features_dim, self.net_arch, self.activation_fn, layer_norm
        )
        width = self.net_arch[-1] if self.net_arch else self.features_dim
        self.mu = TaskHeads(width, action_dim, num_tasks)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(num_tasks=self.num_tasks, layer_norm=self.layer_norm)
        return data

    encoder_gradients = True

    def pre_tanh(self, obs: torch.Tensor) -> torch.Tensor:
        """The head's output before the tanh squashing."""
        latent = self.latent_pi(actor_features(self, obs))
        return self.mu(latent, task_index(obs, self.num_tasks))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pre_tanh(obs))


class MultiHeadTD3Policy(MultiHeadPolicyMixin, TD3Policy):
    """SB3 TD3 policy built from :class:`MultiHeadTD3Actor` and :class:`MultiHeadCritic`
    (the target actor and target critic are copies made the same way)."""

    actor_class = MultiHeadTD3Actor
