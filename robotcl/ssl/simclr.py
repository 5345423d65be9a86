"""SimCLR (Chen et al., ICML 2020): two augmented views, a projection head, NT-Xent.

The loss is taken after a 2-layer MLP projection; the encoder's features before it are what the
agent uses.
"""

from __future__ import annotations

import torch
from torch import nn

from robotcl.ssl.losses import nt_xent
from robotcl.ssl.objective import Augment, SSLBatch, SSLObjective, SSLOutput


class SimCLR(SSLObjective):
    """``temperature``: 0.1, within the 0.1-0.5 of the paper's ablation."""

    name = "simclr"

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        temperature: float = 0.1,
        projection_dim: int = 64,
    ) -> None:
        super().__init__(encoder, augment, generator)
        d = encoder.feature_dim
        self.projection = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, projection_dim))
        self.temperature = temperature

    def forward(self, batch: SSLBatch) -> SSLOutput:
        z1 = self.projection(self.encoder(self.view(batch.obs)))
        z2 = self.projection(self.encoder(self.view(batch.obs)))
        loss, accuracy = nt_xent(z1, z2, self.temperature)
        return SSLOutput(loss, accuracy)
