"""Temporal contrast (ATC, Stooke et al. ICML 2021; CPC, van den Oord et al. 2018): an
observation's positive is the observation ``k`` steps later in the same trajectory.

CURL's machinery with another key: the anchor goes through the online encoder, the later
observation through the momentum target encoder without gradient; bilinear logits and InfoNCE
against the diagonal. Here k = 1: the learner's next observations.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from robotcl.registry import register_objective
from robotcl.ssl.curl import CURL, CURLSettings
from robotcl.ssl.objective import SSLBatch, momentum_rate


class TemporalSettings(CURLSettings):
    tau: float = momentum_rate(0.01, "target", "ATC, Stooke et al. 2021: 0.01")
    key_encoder: Literal["auto", "target", "own"] = Field(
        "own",
        description="own: a momentum copy of the encoder (ATC's target encoder); target: the "
        "critic target's encoder, moved at tau; auto: target where the learner has one",
    )


@register_objective("temporal")
class Temporal(CURL):
    """CURL's loss with the next observation as the key."""

    name = "temporal"
    Settings = TemporalSettings
    needs = frozenset({"later"})

    def key_input(self, batch: SSLBatch) -> torch.Tensor:
        """The observations ``k`` steps on."""
        if batch.later is None:
            raise ValueError("temporal contrast needs batch.later (observations k steps on)")
        return batch.later
