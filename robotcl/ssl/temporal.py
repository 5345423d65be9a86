"""Temporal contrast (ATC, Stooke et al. ICML 2021; CPC, van den Oord et al. 2018): an
observation's positive is the observation ``k`` steps later in the same trajectory.

CURL's machinery with another key: the anchor goes through the online encoder, the later
observation through the momentum target encoder without gradient; bilinear logits and InfoNCE
against the diagonal.
"""

from __future__ import annotations

import torch
from torch import nn

from robotcl.ssl.curl import CURL
from robotcl.ssl.objective import Augment, SSLBatch


class Temporal(CURL):
    """``tau``: the target encoder's momentum rate (ATC: 0.01)."""

    name = "temporal"

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        tau: float = 0.01,
    ) -> None:
        super().__init__(encoder, augment, generator, tau)

    def key_input(self, batch: SSLBatch) -> torch.Tensor:
        """The observations ``k`` steps on."""
        if batch.later is None:
            raise ValueError("temporal contrast needs batch.later (observations k steps on)")
        return batch.later
