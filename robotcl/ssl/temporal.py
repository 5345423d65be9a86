"""Temporal contrast (ATC, Stooke et al. ICML 2021; CPC, van den Oord et al. 2018): an
observation's positive is the observation ``k`` steps later in the same trajectory.

The anchor goes through the online encoder, the later observation through a momentum target
encoder without gradient; bilinear logits and InfoNCE against the diagonal, as CURL.
"""

from __future__ import annotations

import torch
from torch import nn

from robotcl.ssl.encoders import momentum_copy, momentum_update
from robotcl.ssl.losses import info_nce, top1_accuracy
from robotcl.ssl.objective import Augment, SSLBatch, SSLObjective, SSLOutput


class Temporal(SSLObjective):
    """``tau``: the target encoder's momentum rate (ATC: 0.01)."""

    name = "temporal"

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        tau: float = 0.01,
    ) -> None:
        super().__init__(encoder, augment, generator)
        self.key_encoder = momentum_copy(encoder)
        self.W = nn.Parameter(torch.rand(encoder.feature_dim, encoder.feature_dim))
        self.tau = tau

    def forward(self, batch: SSLBatch) -> SSLOutput:
        if batch.later is None:
            raise ValueError("temporal contrast needs batch.later (observations k steps on)")
        anchor = self.encoder(self.view(batch.obs))
        with torch.no_grad():
            positive = self.key_encoder(self.view(batch.later))
        logits = anchor @ self.W @ positive.T
        return SSLOutput(info_nce(logits), top1_accuracy(logits))

    def after_update(self) -> None:
        momentum_update(self.key_encoder, self.encoder, self.tau)
