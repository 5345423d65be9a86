"""MoCo (He et al., CVPR 2020): a momentum key encoder and a queue of negative keys.

Each query's positive is the key of another augmentation of the same observation; its negatives
are the ``queue_size`` most recent keys of earlier batches. Features are L2-normalised and
compared by dot product over a temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robotcl.ssl.encoders import momentum_copy, momentum_update
from robotcl.ssl.objective import Augment, SSLBatch, SSLObjective, SSLOutput


class MoCo(SSLObjective):
    """Defaults from the paper: momentum 0.999, 65,536 queued keys, temperature 0.07."""

    name = "moco"

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        queue_size: int = 65_536,
        temperature: float = 0.07,
        momentum: float = 0.999,
    ) -> None:
        super().__init__(encoder, augment, generator)
        self.key_encoder = momentum_copy(encoder)
        self.temperature, self.momentum = temperature, momentum
        start = F.normalize(
            torch.randn(queue_size, encoder.feature_dim, generator=generator), dim=1
        )
        self.register_buffer("queue", start)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self._keys: torch.Tensor | None = None

    def forward(self, batch: SSLBatch) -> SSLOutput:
        query = F.normalize(self.encoder(self.view(batch.obs)), dim=1)
        with torch.no_grad():
            key = F.normalize(self.key_encoder(self.view(batch.obs)), dim=1)
        positive = (query * key).sum(dim=1, keepdim=True)
        negatives = query @ self.queue.T
        logits = torch.cat([positive, negatives], dim=1) / self.temperature
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
        momentum_update(self.key_encoder, self.encoder, 1.0 - self.momentum)
        if self._keys is not None:
            self.enqueue(self._keys)
            self._keys = None
