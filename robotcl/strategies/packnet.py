"""PackNet (Mallya and Lazebnik, CVPR 2018): iterative pruning gives each task its own weights.

Every weight matrix of the selected groups carries an owner map (a task id per entry). Training
task t may change only the entries owned by t (at first: all). At the end of every task but the
last, the entries owned by t are pruned by magnitude: the largest fraction stays with t, the rest
are zeroed and handed to t + 1 (released for later tasks); then the kept entries are retrained
for ``retrain_steps`` gradient steps with everything else fixed. Acting on task j uses only the
entries owned by tasks <= j (the rest are zeroed for that moment), so an old task's outputs are
exactly what they were after its own retraining.

Settings follow Continual World (Wolczyk et al., NeurIPS 2021, methods/packnet.py of
awarelab/continual_world): an equal share of the weights per task (prune fraction
left / (left + 1), ``left`` = tasks after this one), 100k retrain steps with the optimizer reset
before and after, biases and LayerNorm parameters (every 1-d parameter) trained on the first task
only, heads not pruned, and the actor only (``regularize_critic=False``): the critic is
fine-tuned, since acting never uses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from pydantic import Field, NonNegativeInt

from robotcl.registry import register_strategy
from robotcl.strategies.base import MemoryUsage, Strategy, StrategySettings, TaskData


class PackNetSettings(StrategySettings):
    """PackNet settings; defaults from Continual World (Wolczyk et al. 2021)."""

    groups: list[str] = Field(
        ["actor_trunk"],
        description="parameter groups to pack; Continual World: the actor's trunk (heads not "
        "pruned, regularize_critic=False); add critic_trunk to pack the critic too",
    )
    retrain_steps: NonNegativeInt = Field(
        100_000,
        description="gradient steps retraining the kept weights after each pruning "
        "(Continual World: 100k; LIBERO: 50 epochs)",
    )
    prune_fraction: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="fraction of a task's weights released at its end; None: an equal share "
        "per task, left/(left+1) with left = tasks after this one (Continual World); "
        "LIBERO uses 0.75",
    )


@register_strategy("packnet")
class PackNet(Strategy):
    """Per-task weight ownership by magnitude pruning, with a per-task acting view."""

    name = "packnet"
    Settings = PackNetSettings
    settings: PackNetSettings
    needs = frozenset({"update"})  # retraining after pruning

    def __init__(self, settings: PackNetSettings | None = None) -> None:
        super().__init__(settings)
        self.params: list[torch.nn.Parameter] = []
        # int16 owner per entry of each weight matrix; None for 1-d parameters (biases, norms)
        self.owners: list[torch.Tensor | None] = []
        # the values frozen entries must keep (None until the first pruning: nothing is frozen)
        self.saved: list[torch.Tensor] | None = None
        self.freeze_1d = False
        self._pending: dict[str, Any] | None = None
        self._masks: tuple[int, list[torch.Tensor | None]] | None = None

    # -- life cycle -----------------------------------------------------------------------
    def setup(self, learner: Any, suite: Any) -> None:
        super().setup(learner, suite)
        self.params = self.selected_parameters(self.settings.groups)
        self.owners = [
            torch.zeros_like(p, dtype=torch.int16) if p.dim() > 1 else None for p in self.params
        ]
        self.saved, self.freeze_1d, self._masks = None, False, None
        if self._pending is not None:  # a checkpoint was loaded before setup
            self._apply_state(self._pending)
            self._pending = None

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        """Prune, then retrain the kept weights (every task but the last, which keeps the rest)."""
        learner = self.learner
        left = learner.num_tasks - 1 - task_id
        if left <= 0:
            return
        fraction = self.settings.prune_fraction
        if fraction is None:
            fraction = left / (left + 1)
        self.freeze_1d = True  # biases and norms keep their values from the first task
        with torch.no_grad():
            for p, owner in zip(self.params, self.owners, strict=True):
                if owner is not None:
                    _prune(p, owner, task_id, fraction)
        self._masks = None
        self._snapshot()
        learner.reset_optimizers()
        for _ in range(self.settings.retrain_steps):
            learner.update(data.buffer.sample(learner.batch_size))
        learner.reset_optimizers()
        self._snapshot()

    # -- inside the update step -----------------------------------------------------------
    def adjust_gradients(self, task_id: int) -> None:
        """Zero the gradient of every entry the current task does not own."""
        if self.saved is None:
            return
        for p, mask in zip(self.params, self._trainable(task_id), strict=True):
            if p.grad is None:
                continue
            if mask is None:
                if self.freeze_1d:
                    p.grad.zero_()
            else:
                p.grad.mul_(mask)

    @torch.no_grad()
    def after_step(self) -> None:
        """Write frozen entries back exactly (Adam's momentum moves even zero-gradient weights)."""
        if self.saved is None:
            return
        masks = self._trainable(self.learner.current_task)
        for p, mask, saved in zip(self.params, masks, self.saved, strict=True):
            if mask is None:
                if self.freeze_1d:
                    p.copy_(saved)
            else:
                p.copy_(torch.where(mask, p, saved))

    # -- acting ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def acting(self, task_id: int) -> Iterator[None]:
        """Act with the weights owned by tasks <= ``task_id``; restored exactly afterwards."""
        hidden = []
        with torch.no_grad():
            for p, owner in zip(self.params, self.owners, strict=True):
                if owner is not None:
                    later = owner > task_id
                    if bool(later.any()):
                        hidden.append((p, p.detach().clone()))
                        p.masked_fill_(later, 0.0)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in hidden:
                    p.copy_(value)

    # -- helpers --------------------------------------------------------------------------
    def _trainable(self, task_id: int) -> list[torch.Tensor | None]:
        """Per weight matrix, the entries ``task_id`` owns (cached until the next pruning)."""
        if self._masks is None or self._masks[0] != task_id:
            masks = [None if o is None else o == task_id for o in self.owners]
            self._masks = (task_id, masks)
        return self._masks[1]

    def _snapshot(self) -> None:
        self.saved = [p.detach().clone() for p in self.params]

    # -- checkpoints ----------------------------------------------------------------------
    def memory_usage(self) -> MemoryUsage:
        """The owner map of each weight matrix (int16) and the frozen values it restores."""
        return MemoryUsage.of_values("owner masks", self.owners) + MemoryUsage.of_values(
            "frozen values", self.saved or []
        )

    def state_dict(self) -> dict[str, Any]:
        """Owner maps, frozen values and the bias freeze (weights live in the learner)."""
        if self._pending is not None:
            return self._pending
        return {
            "owners": [None if o is None else o.clone() for o in self.owners],
            "saved": None if self.saved is None else [s.clone() for s in self.saved],
            "freeze_1d": self.freeze_1d,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.params:
            self._apply_state(state)
        else:  # the checkpoint loads the strategy before setup
            self._pending = state

    def _apply_state(self, state: dict[str, Any]) -> None:
        owners, saved = state["owners"], state["saved"]
        shapes = [tuple(p.shape) for p in self.params]
        if [None if o is None else tuple(o.shape) for o in owners] != [
            s if len(s) > 1 else None for s in shapes
        ]:
            raise ValueError("packnet state does not match the learner's selected parameters")
        self.owners = [
            None if o is None else o.to(p.device, torch.int16)
            for o, p in zip(owners, self.params, strict=True)
        ]
        self.saved = (
            None
            if saved is None
            else [s.to(p.device, p.dtype) for s, p in zip(saved, self.params, strict=True)]
        )
        self.freeze_1d = bool(state["freeze_1d"])
        self._masks = None


def _prune(p: torch.Tensor, owner: torch.Tensor, task_id: int, fraction: float) -> None:
    """Release the smallest-magnitude ``fraction`` of the entries ``task_id`` owns: zero them
    and give them to ``task_id + 1``."""
    candidates = (owner == task_id).flatten().nonzero().squeeze(1)
    n_release = int(round(len(candidates) * fraction))
    if n_release == 0:
        return
    magnitudes = p.detach().flatten()[candidates].abs()
    release = candidates[torch.topk(magnitudes, n_release, largest=False).indices]
    owner.view(-1)[release] = task_id + 1
    p.data.view(-1)[release] = 0.0
