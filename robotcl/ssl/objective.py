"""The base of the contrastive objectives: what an objective gets, gives back and declares.

An objective holds (a reference to) the online encoder it trains, any key / target encoder and
head of its own, and turns a :class:`SSLBatch` into an :class:`SSLOutput` (loss and contrastive
top-1 accuracy, logged as ``train/ssl/<name>/loss`` and ``.../accuracy``). ``after_update`` runs
after the optimizer step (momentum updates, queues).

A subclass registers itself (``@register_objective("name")``, or the entry-point group
``robotcl.ssl``) and declares its typed ``Settings`` (``agent.encoder.<name>.*``, published
defaults) and the batch fields beyond ``obs`` it ``needs`` (:data:`INPUTS`); the learners wire it
in through :mod:`robotcl.ssl.wiring`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

Augment = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]

#: what an objective may need beyond ``obs``, as a learner offers it (``ssl_inputs``)
INPUTS = {
    "later": "the observations a step later in the same trajectory (next observations)",
    "proprio": "the state beside the frames (observation=pixels+proprio)",
    "target_encoder": "the encoder of a target critic (an off-policy actor-critic's)",
}


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


class ObjectiveSettings(BaseModel):
    """Settings of an objective; subclasses add fields with published defaults."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def momentum_rate(default: float, copy: str, source: str) -> Any:
    """The setting ``tau`` of an objective with a momentum copy of the encoder: after each
    update ``copy += tau (online - copy)``; ``source`` cites the default."""
    return Field(
        default,
        gt=0,
        le=1,
        description=f"the {copy} encoder's momentum rate, {copy} += tau (online - {copy}) after "
        f"each update ({source})",
    )


class SSLObjective(nn.Module):
    """Base class: a contrastive objective over an online encoder. Keyword arguments are its
    ``Settings`` (validated; ``self.settings``)."""

    name: ClassVar[str] = "base"
    Settings: ClassVar[type[ObjectiveSettings]] = ObjectiveSettings
    #: the :data:`INPUTS` it needs beyond ``obs``; a learner that cannot offer them is refused
    needs: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        generator: torch.Generator | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.generator = generator
        self.settings = self.Settings(**settings)
        self.build()

    @classmethod
    def needs_for(cls, settings: dict[str, Any]) -> frozenset[str]:
        """What the objective needs with these settings (default: :attr:`needs`)."""
        return cls.needs

    @classmethod
    def encoder_problem(cls, settings: dict[str, Any], encoder: dict[str, Any]) -> str | None:
        """What in these settings (``agent.encoder.<name>``) cannot work with the rest of
        ``agent.encoder`` (``encoder``), in one line; None if nothing (the default)."""
        return None

    def build(self) -> None:
        """Add the objective's own modules (heads, key encoders, queues); called once the
        encoder, augmentation, generator and settings are set."""

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """One augmented view of ``x``."""
        return self.augment(x, self.generator)

    def forward(self, batch: SSLBatch) -> SSLOutput:
        raise NotImplementedError

    def use_target_encoder(self, target: nn.Module) -> None:
        """The learner offers the encoder of its target critic (a view of it on pixels), which it
        owns, saves and moves; an objective may take it as its key encoder (default: not)."""

    def after_update(self) -> None:
        """After the optimizer step: momentum updates, queues."""

    def own_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the objective beyond the encoder (heads, W)."""
        encoder = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in encoder]
