"""CURL (Laskin, Srinivas, Abbeel, ICML 2020): contrast two augmentations of one observation.

The query comes from the online encoder, the key from a momentum copy without gradient; logits
are bilinear, q W k^T with a learned W; InfoNCE against the diagonal (in-batch negatives).
"""

from __future__ import annotations

import torch
from torch import nn

from robotcl.registry import register_objective
from robotcl.ssl.encoders import momentum_copy, momentum_update
from robotcl.ssl.losses import info_nce, top1_accuracy
from robotcl.ssl.objective import (
    ObjectiveSettings,
    SSLBatch,
    SSLObjective,
    SSLOutput,
    momentum_rate,
)


class CURLSettings(ObjectiveSettings):
    tau: float = momentum_rate(0.05, "key", "Laskin et al. 2020: encoder tau 0.05")


@register_objective("curl")
class CURL(SSLObjective):
    """Bilinear InfoNCE between an observation's query and its momentum key (no temperature,
    no projection: CURL's own form)."""

    name = "curl"
    Settings = CURLSettings
    settings: CURLSettings

    def build(self) -> None:
        encoder = self.encoder
        self.key_encoder = momentum_copy(encoder)
        self.W = nn.Parameter(torch.rand(encoder.feature_dim, encoder.feature_dim))

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
        momentum_update(self.key_encoder, self.encoder, self.settings.tau)
