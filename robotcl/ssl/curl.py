"""CURL (Laskin, Srinivas, Abbeel, ICML 2020): contrast two augmentations of one observation.

The query comes from the online encoder, the key from a momentum copy without gradient; logits
are bilinear, q W k^T with a learned W; InfoNCE against the diagonal (in-batch negatives).
"""

from __future__ import annotations

import torch
from torch import nn

from robotcl.ssl.encoders import momentum_copy, momentum_update
from robotcl.ssl.losses import info_nce, top1_accuracy
from robotcl.ssl.objective import Augment, SSLBatch, SSLObjective, SSLOutput


class CURL(SSLObjective):
    """``tau``: the key encoder's momentum rate (CURL: 0.05, the critic encoder's target)."""

    name = "curl"

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        tau: float = 0.05,
    ) -> None:
        super().__init__(encoder, augment, generator)
        self.key_encoder = momentum_copy(encoder)
        self.W = nn.Parameter(torch.rand(encoder.feature_dim, encoder.feature_dim))
        self.tau = tau

    def key_input(self, batch: SSLBatch) -> torch.Tensor:
        """What the key encoder sees: another view of the same observation."""
        return batch.obs

    def forward(self, batch: SSLBatch) -> SSLOutput:
        key_input = self.key_input(batch)
        query = self.encoder(self.view(batch.obs))
        with torch.no_grad():
            key = self.key_encoder(self.view(key_input))
        logits = query @ self.W @ key.T
        return SSLOutput(info_nce(logits), top1_accuracy(logits))

    def after_update(self) -> None:
        momentum_update(self.key_encoder, self.encoder, self.tau)
