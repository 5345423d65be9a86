"""Cross-modal contrast (CMC, Tian et al. 2020): one encoder per modality; the pixel view and
the proprioceptive view of the same state are positives, other states' views negatives.

Both views are projected to a common space, L2-normalised and compared over a temperature; the
loss is symmetric (pixels -> proprio and proprio -> pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from robotcl.registry import register_objective
from robotcl.ssl.encoders import StateEncoder
from robotcl.ssl.losses import info_nce, top1_accuracy
from robotcl.ssl.objective import Augment, ObjectiveSettings, SSLBatch, SSLObjective, SSLOutput


class CrossModalSettings(ObjectiveSettings):
    temperature: float = Field(0.07, gt=0, description="softmax temperature (Tian et al.: 0.07)")
    projection_dim: PositiveInt = Field(
        64,
        description="width of the common space both modalities are projected to (Tian et al. "
        "embed in 128; robotcl's default 64)",
    )


@register_objective("crossmodal")
class CrossModal(SSLObjective):
    """``proprio_dim``: the second modality's width (given by the learner, not a setting)."""

    name = "crossmodal"
    Settings = CrossModalSettings
    settings: CrossModalSettings
    needs = frozenset({"proprio"})

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        proprio_dim: int = 1,
        **settings: float,
    ) -> None:
        super().__init__(encoder, augment, generator, **settings)
        d, out = encoder.feature_dim, self.settings.projection_dim
        self.proprio_encoder = StateEncoder(proprio_dim, d)
        self.head = nn.Linear(d, out)
        self.proprio_head = nn.Linear(d, out)

    def forward(self, batch: SSLBatch) -> SSLOutput:
        if batch.proprio is None:
            raise ValueError("cross-modal contrast needs batch.proprio (the second modality)")
        a = F.normalize(self.head(self.encoder(self.view(batch.obs))), dim=1)
        b = F.normalize(self.proprio_head(self.proprio_encoder(batch.proprio)), dim=1)
        logits = a @ b.T / self.settings.temperature
        loss = (info_nce(logits) + info_nce(logits.T)) / 2
        return SSLOutput(loss, top1_accuracy(logits))
