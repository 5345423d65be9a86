"""CURL (Laskin, Srinivas, Abbeel, ICML 2020): contrast two augmentations of one observation.

The query comes from the online encoder, the key from a momentum encoder without gradient; logits
are bilinear, q W k^T with a learned W; InfoNCE against the diagonal (in-batch negatives).

The key encoder is CURL's: the critic target's encoder (``key_encoder=target``, the default
where the learner has a target critic), which the learner's target update moves at this
objective's ``tau`` (CURL's encoder tau, 0.05) while the rest of the target critic moves at
``agent.tau``; ``key_encoder=own`` keeps a separate momentum copy of the encoder beside the
target (robotcl before 0.3), the only choice for a learner without a target critic (bc).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
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
    key_encoder: Literal["auto", "target", "own"] = Field(
        "auto",
        description="target: the critic target's encoder, moved at tau (CURL's); own: a "
        "separate momentum copy of the encoder; auto: target where the learner has a target "
        "critic (sac, td3), own otherwise (bc)",
    )


@register_objective("curl")
class CURL(SSLObjective):
    """Bilinear InfoNCE between an observation's query and its momentum key (no temperature,
    no projection: CURL's own form)."""

    name = "curl"
    Settings = CURLSettings
    settings: CURLSettings

    @classmethod
    def needs_for(cls, settings: dict[str, Any]) -> frozenset[str]:
        key = settings.get("key_encoder", "auto")
        return cls.needs | ({"target_encoder"} if key == "target" else frozenset())

    def build(self) -> None:
        encoder = self.encoder
        self.key_encoder = momentum_copy(encoder)  # until the learner offers its target's
        #: whether the key encoder is the learner's target encoder (moved by the learner)
        self.key_is_target = False
        self.W = nn.Parameter(torch.rand(encoder.feature_dim, encoder.feature_dim))

    def use_target_encoder(self, target: nn.Module) -> None:
        """CURL's arrangement (unless ``key_encoder=own``): the key encoder is the learner's
        target encoder, not a module of the objective (neither trained nor saved by it)."""
        if self.settings.key_encoder == "own":
            return
        del self.key_encoder  # the separate copy goes
        object.__setattr__(self, "key_encoder", target)
        self.key_is_target = True

    def key_input(self, batch: SSLBatch) -> torch.Tensor:
        """What the key encoder sees: another view of the same observation."""
        return batch.obs

    def project_query(self, features: torch.Tensor) -> torch.Tensor:
        """The query from the online encoder's features (CURL: the features themselves)."""
        return features

    def project_key(self, features: torch.Tensor) -> torch.Tensor:
        """The key from the key encoder's features, without gradient (CURL: themselves)."""
        return features

    def forward(self, batch: SSLBatch) -> SSLOutput:
        key_input = self.key_input(batch)
        query = self.project_query(self.encoder(self.view(batch.obs)))
        with torch.no_grad():
            key = self.project_key(self.key_encoder(self.view(key_input)))
        logits = query @ self.W @ key.T
        return SSLOutput(info_nce(logits), top1_accuracy(logits))

    def after_update(self) -> None:
        if not self.key_is_target:  # the target encoder moves with the learner's target update
            momentum_update(self.key_encoder, self.encoder, self.settings.tau)
