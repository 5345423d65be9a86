"""SimCLR (Chen et al., ICML 2020): two augmented views, a projection head, NT-Xent.

The loss is taken after a 2-layer MLP projection; the encoder's features before it are what the
agent uses.
"""

from __future__ import annotations

from pydantic import Field, PositiveInt
from torch import nn

from robotcl.registry import register_objective
from robotcl.ssl.losses import nt_xent
from robotcl.ssl.objective import ObjectiveSettings, SSLBatch, SSLObjective, SSLOutput


class SimCLRSettings(ObjectiveSettings):
    temperature: float = Field(
        0.1, gt=0, description="NT-Xent temperature (Chen et al. 2020 ablate 0.1-0.5: 0.1)"
    )
    projection_dim: PositiveInt = Field(
        64,
        description="output width of the 2-layer projection head (Chen et al. project to 128; "
        "robotcl's default 64)",
    )


@register_objective("simclr")
class SimCLR(SSLObjective):
    """NT-Xent between two projected views of each observation."""

    name = "simclr"
    Settings = SimCLRSettings
    settings: SimCLRSettings

    def build(self) -> None:
        encoder = self.encoder
        d, out = encoder.feature_dim, self.settings.projection_dim
        self.projection = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, out))

    def forward(self, batch: SSLBatch) -> SSLOutput:
        z1 = self.projection(self.encoder(self.view(batch.obs)))
        z2 = self.projection(self.encoder(self.view(batch.obs)))
        loss, accuracy = nt_xent(z1, z2, self.settings.temperature)
        return SSLOutput(loss, accuracy)
