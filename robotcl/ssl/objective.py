"""The base of the contrastive objectives: what an objective gets and gives back.

An objective holds (a reference to) the online encoder it trains, any key / target encoder and
head of its own, and turns a :class:`SSLBatch` into an :class:`SSLOutput` (loss and contrastive
top-1 accuracy, logged as ``train/ssl/<name>/loss`` and ``.../accuracy``). ``after_update`` runs
after the optimizer step (momentum updates, queues).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

Augment = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


@dataclass
class SSLBatch:
    """Observations for an objective: ``obs`` (anchors), ``later`` (the observations ``k`` steps
    later in the same trajectory, for temporal objectives) and ``proprio`` (a second modality of
    the same states, for cross-modal objectives)."""

    obs: torch.Tensor
    later: torch.Tensor | None = None
    proprio: torch.Tensor | None = None


@dataclass
class SSLOutput:
    loss: torch.Tensor
    accuracy: torch.Tensor


class SSLObjective(nn.Module):
    """Base class: a contrastive objective over an online encoder."""

    name: ClassVar[str] = "base"

    def __init__(self, encoder: nn.Module, augment: Augment, generator: torch.Generator | None):
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.generator = generator

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """One augmented view of ``x``."""
        return self.augment(x, self.generator)

    def forward(self, batch: SSLBatch) -> SSLOutput:
        raise NotImplementedError

    def after_update(self) -> None:
        """After the optimizer step: momentum updates, queues."""

    def own_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the objective beyond the encoder (heads, W)."""
        encoder = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in encoder]
