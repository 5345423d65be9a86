"""MoCo (He et al., CVPR 2020): a momentum key encoder and a queue of negative keys.

Each query's positive is the key of another augmentation of the same observation; its negatives
are the ``queue_size`` most recent keys of earlier batches. Features are L2-normalised and
compared by dot product over a temperature.

This is MoCo v1 by default: the encoder's features are compared directly. ``head=mlp`` adds MoCo
v2's change (Chen, Fan, Girshick, He 2020, "Improved baselines with momentum contrastive
learning"): a 2-layer MLP projection head on the query side and its momentum copy on the key side
(v2 also raises the temperature to 0.2: set ``temperature``). v2's other change, its stronger
image augmentation, is ``augmentation=v2`` on pixels: colour jitter (brightness, contrast and
saturation 0.4, p 0.8; hue not taken), grayscale (p 0.2), Gaussian blur (p 0.5, sigma 0.1-2)
and a horizontal flip (p 0.5) before the pixel encoder's random crop, each stack of frames
alike; ``crop`` (the default) keeps the learner's own views (random crops of frames, noise on
states), the same for every objective.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from robotcl.registry import register_objective
from robotcl.ssl.encoders import momentum_copy, momentum_update
from robotcl.ssl.objective import ObjectiveSettings, SSLBatch, SSLObjective, SSLOutput


class MoCoSettings(ObjectiveSettings):
    queue_size: PositiveInt = Field(
        65_536,
        description="queued negative keys (He et al. 2020: K = 65,536; its cost grows with it)",
    )
    temperature: float = Field(0.07, gt=0, description="softmax temperature (He et al.: 0.07)")
    momentum: float = Field(
        0.999,
        ge=0,
        le=1,
        description="key encoder momentum m, key = m key + (1 - m) online (He et al.: 0.999)",
    )
    head: Literal["none", "mlp"] = Field(
        "none",
        description="none: MoCo v1; mlp: MoCo v2's 2-layer MLP projection head (Chen et al. "
        "2020), its momentum copy on the keys",
    )
    projection_dim: PositiveInt = Field(
        128, description="output width of the MLP head (Chen et al. 2020: 128); head=mlp only"
    )
    augmentation: Literal["crop", "v2"] = Field(
        "crop",
        description="crop: the learner's views (random crops on pixels); v2: MoCo v2's colour "
        "jitter, grayscale, blur and flip before the crop (Chen et al. 2020; pixels only)",
    )


@register_objective("moco")
class MoCo(SSLObjective):
    """InfoNCE over one positive key and the queue's negatives."""

    name = "moco"
    Settings = MoCoSettings
    settings: MoCoSettings

    @classmethod
    def encoder_problem(cls, settings: dict[str, Any], encoder: dict[str, Any]) -> str | None:
        if settings.get("augmentation") == "v2" and encoder.get("type") != "pixels":
            return "augmentation=v2 augments images; use it with agent.encoder.type=pixels"
        return None

    def build(self) -> None:
        encoder, generator, settings = self.encoder, self.generator, self.settings
        if settings.augmentation == "v2" and not hasattr(self.augment, "image_augment"):
            raise ValueError("moco.augmentation=v2: this learner gives no image augmentation")
        d = encoder.feature_dim
        if settings.head == "mlp":
            self.head: nn.Module = nn.Sequential(
                nn.Linear(d, d), nn.ReLU(), nn.Linear(d, settings.projection_dim)
            )
            d = settings.projection_dim
        else:
            self.head = nn.Identity()
        self.key_encoder = momentum_copy(encoder)
        self.key_head = momentum_copy(self.head)
        start = F.normalize(torch.randn(settings.queue_size, d, generator=generator), dim=1)
        self.register_buffer("queue", start)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self._keys: torch.Tensor | None = None

    def view(self, x: torch.Tensor) -> torch.Tensor:
        if self.settings.augmentation == "v2":
            return self.augment.image_augment(x, self.generator)  # type: ignore[attr-defined]
        return super().view(x)

    def forward(self, batch: SSLBatch) -> SSLOutput:
        query = F.normalize(self.head(self.encoder(self.view(batch.obs))), dim=1)
        with torch.no_grad():
            key = F.normalize(self.key_head(self.key_encoder(self.view(batch.obs))), dim=1)
        positive = (query * key).sum(dim=1, keepdim=True)
        negatives = query @ self.queue.T
        logits = torch.cat([positive, negatives], dim=1) / self.settings.temperature
        labels = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        self._keys = key
        accuracy = (logits.argmax(dim=1) == 0).float().mean()
        return SSLOutput(F.cross_entropy(logits, labels), accuracy)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest keys of the queue by ``keys`` (first in, first out)."""
        size = len(self.queue)
        index = (self.pointer + torch.arange(len(keys), device=keys.device)) % size
        self.queue[index] = keys
        self.pointer.copy_((self.pointer + len(keys)) % size)

    def after_update(self) -> None:
        momentum_update(self.key_encoder, self.encoder, 1.0 - self.settings.momentum)
        momentum_update(self.key_head, self.head, 1.0 - self.settings.momentum)
        if self._keys is not None:
            self.enqueue(self._keys)
            self._keys = None
