"""Cross-modal contrast (CMC, Tian et al. 2020): one encoder per modality; the pixel view and
the proprioceptive view of the same state are positives, other states' views negatives.

Both views are projected to a common space, L2-normalised and compared over a temperature; the
loss is symmetric (pixels -> proprio and proprio -> pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robotcl.ssl.encoders import StateEncoder
from robotcl.ssl.losses import info_nce, top1_accuracy
from robotcl.ssl.objective import Augment, SSLBatch, SSLObjective, SSLOutput


class CrossModal(SSLObjective):
    """``proprio_dim``: the second modality's width; ``temperature`` 0.07 (CMC)."""

    name = "crossmodal"

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        proprio_dim: int = 1,
        temperature: float = 0.07,
        projection_dim: int = 64,
    ) -> None:
        super().__init__(encoder, augment, generator)
        d = encoder.feature_dim
        self.proprio_encoder = StateEncoder(proprio_dim, d)
        self.head = nn.Linear(d, projection_dim)
        self.proprio_head = nn.Linear(d, projection_dim)
        self.temperature = temperature

    def forward(self, batch: SSLBatch) -> SSLOutput:
        if batch.proprio is None:
            raise ValueError("cross-modal contrast needs batch.proprio (the second modality)")
        a = F.normalize(self.head(self.encoder(self.view(batch.obs))), dim=1)
        b = F.normalize(self.proprio_head(self.proprio_encoder(batch.proprio)), dim=1)
        logits = a @ b.T / self.temperature
        loss = (info_nce(logits) + info_nce(logits.T)) / 2
        return SSLOutput(loss, top1_accuracy(logits))
