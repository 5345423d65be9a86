"""Temporal contrast (ATC, Stooke et al. ICML 2021; CPC, van den Oord et al. 2018): an
observation's positive is the observation ``k`` steps later in the same trajectory.

CURL's machinery with another key: the anchor goes through the online encoder, the later
observation through the momentum target encoder without gradient; bilinear logits and InfoNCE
against the diagonal. ``k = 1`` takes the batch's next observations; ``k > 1`` draws its own
pairs from the replay (agents/later_pairs.py). ``head=atc`` adds ATC's heads: a linear
compressor to ``latent_dim`` on both sides (the key's a momentum copy) and, on the anchor side,
a residual predictor MLP (``predictor_hidden``). Defaults are ATC's DMControl settings (the
authors' rlpyt configuration: k 1, target tau 0.01, latent 128, predictor hidden 512; Atari and
DMLab used k 3).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from robotcl.registry import register_objective
from robotcl.ssl.curl import CURL, CURLSettings
from robotcl.ssl.encoders import momentum_copy, momentum_update
from robotcl.ssl.objective import SSLBatch, momentum_rate


class TemporalSettings(CURLSettings):
    tau: float = momentum_rate(0.01, "target", "ATC, Stooke et al. 2021: 0.01")
    key_encoder: Literal["auto", "target", "own"] = Field(
        "own",
        description="own: a momentum copy of the encoder (ATC's target encoder); target: the "
        "critic target's encoder, moved at tau; auto: target where the learner has one",
    )
    k: PositiveInt = Field(
        1,
        description="steps from anchor to positive, within one episode (ATC: 1 on DMControl, "
        "3 on Atari and DMLab); k > 1 draws its own pairs from the replay and keeps no SSL "
        "memory (memory_ratio 0)",
    )
    head: Literal["none", "atc"] = Field(
        "none",
        description="none: CURL's bilinear logits on the encoder's features; atc: ATC's linear "
        "compressor (its momentum copy on the key side) and residual predictor on the anchor side",
    )
    latent_dim: PositiveInt = Field(128, description="head=atc: the compressor's width (ATC: 128)")
    predictor_hidden: PositiveInt = Field(
        512, description="head=atc: the residual predictor's hidden width (ATC: 512)"
    )


@register_objective("temporal")
class Temporal(CURL):
    """CURL's loss with the observation ``k`` steps on as the key; ATC's heads as an option."""

    name = "temporal"
    Settings = TemporalSettings
    settings: TemporalSettings
    needs = frozenset({"later"})

    @classmethod
    def encoder_problem(cls, settings: dict[str, Any], encoder: dict[str, Any]) -> str | None:
        if settings.get("k", 1) > 1 and encoder.get("memory_ratio", 0) > 0:
            return (
                "temporal.k > 1 keeps no SSL memory of earlier tasks (it holds one-step pairs); "
                "set agent.encoder.memory_ratio=0 or agent.encoder.temporal.k=1"
            )
        return None

    @property
    def k(self) -> int:
        return self.settings.k

    def build(self) -> None:
        super().build()
        if self.settings.head != "atc":
            return
        latent, width = self.settings.latent_dim, self.encoder.feature_dim
        self.compressor = nn.Linear(width, latent)
        self.key_compressor = momentum_copy(self.compressor)
        hidden = self.settings.predictor_hidden
        self.predictor = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, latent)
        )
        self.W = nn.Parameter(torch.rand(latent, latent))

    def key_input(self, batch: SSLBatch) -> torch.Tensor:
        """The observations ``k`` steps on."""
        if batch.later is None:
            raise ValueError("temporal contrast needs batch.later (observations k steps on)")
        return batch.later

    def project_query(self, features: torch.Tensor) -> torch.Tensor:
        if self.settings.head != "atc":
            return features
        compressed = self.compressor(features)
        return compressed + self.predictor(compressed)  # ATC's residual predictor

    def project_key(self, features: torch.Tensor) -> torch.Tensor:
        return self.key_compressor(features) if self.settings.head == "atc" else features

    def after_update(self) -> None:
        super().after_update()
        if self.settings.head == "atc":
            momentum_update(self.key_compressor, self.compressor, self.settings.tau)
