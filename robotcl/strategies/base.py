"""The Strategy base class: a continual-learning method that acts only through hooks.

A learner calls the hooks from its own update step, so one strategy serves every learner:

    on_task_start(i) -> [sample -> loss + penalty -> backward -> adjust_gradients -> step
    -> after_step]* -> on_task_end(i, data)

Evaluation and data collection run inside ``acting(i)``. Every hook is optional.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from robotcl.errors import UserInputError


class StrategySettings(BaseModel):
    """Settings of a strategy; subclasses add fields with published defaults."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class TaskData:
    """What a finished task leaves to the strategy: its replay buffer (RL) or dataset."""

    task_id: int
    buffer: Any = None
    env: Any = None


class Strategy:
    """Base class: does nothing, which is exactly fine-tuning."""

    name: ClassVar[str] = "base"
    Settings: ClassVar[type[StrategySettings]] = StrategySettings
    #: capabilities the learner must offer (see robotcl.learner.CAPABILITIES)
    needs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: StrategySettings | None = None) -> None:
        self.settings = settings if settings is not None else self.Settings()
        self.learner: Any = None
        self.suite: Any = None

    # -- life cycle -----------------------------------------------------------------------
    def prepare(self, learner: Any) -> None:
        """Reshape a learner before saved weights load into it (progressive columns); called on
        resume after ``load_state_dict`` and before the learner's weights are restored."""

    def setup(self, learner: Any, suite: Any) -> None:
        """Once, before the first task."""
        self.learner, self.suite = learner, suite

    def training_env(self, task_id: int, env: Any) -> Any:
        """The env the learner collects ``task_id``'s data from (default: the task's own;
        multitask interleaves every task of the suite)."""
        return env

    def on_task_start(self, task_id: int) -> None:
        """Before training on ``task_id`` starts."""

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        """After training on ``task_id``: take memories, Fisher information, masks from ``data``."""

    # -- inside the update step -----------------------------------------------------------
    def sample(self, batch: Any, task_id: int) -> Any:
        """Return the training batch, possibly mixed with memory (replay)."""
        return batch

    def penalty(self, task_id: int) -> torch.Tensor | None:
        """A scalar added to the loss (L2, EWC, MAS); ``None`` for no penalty."""
        return None

    def adjust_gradients(self, task_id: int) -> None:
        """Between backward and the optimizer step: project or mask ``.grad`` in place."""

    def after_step(self) -> None:
        """After the optimizer step: restore frozen or pruned weights."""

    # -- acting ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def acting(self, task_id: int) -> Iterator[None]:
        """Context in which the learner acts on ``task_id`` (PackNet's weight view, columns)."""
        yield

    # -- helpers for subclasses -----------------------------------------------------------
    def selected_parameters(self, groups: list[str]) -> list[torch.nn.Parameter]:
        """The learner's parameters in the named groups (see ``learner.parameter_groups()``)."""
        available = self.learner.parameter_groups()
        unknown = [g for g in groups if g not in available]
        if unknown:
            raise UserInputError(
                f"{self.name}.groups", f"unknown group(s) {unknown}", f"one of {sorted(available)}"
            )
        return [p for g in groups for p in available[g]]

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly after a resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def concat_batches(first: Any, second: Any) -> Any:
    """Row-wise concatenation of two batches of the same NamedTuple type; ``None`` fields
    (SB3's optional ``discounts``) stay ``None``."""
    return type(first)(
        *(None if a is None else torch.cat([a, b]) for a, b in zip(first, second, strict=True))
    )


def index_batch(batch: Any, index: torch.Tensor) -> Any:
    """The rows ``index`` of a NamedTuple batch (``None`` fields stay ``None``)."""
    return type(batch)(*(None if field is None else field[index] for field in batch))


class StrategyStack(Strategy):
    """Several strategies composed in order (``strategy=[replay,ewc]``): every hook calls each."""

    name = "stack"

    def __init__(self, members: list[Strategy]) -> None:
        super().__init__()
        self.members = members
        self.needs = frozenset().union(*(m.needs for m in members))  # type: ignore[misc]

    def prepare(self, learner: Any) -> None:
        for m in self.members:
            m.prepare(learner)

    def setup(self, learner: Any, suite: Any) -> None:
        super().setup(learner, suite)
        for m in self.members:
            m.setup(learner, suite)

    def training_env(self, task_id: int, env: Any) -> Any:
        for m in self.members:
            env = m.training_env(task_id, env)
        return env

    def on_task_start(self, task_id: int) -> None:
        for m in self.members:
            m.on_task_start(task_id)

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        for m in self.members:
            m.on_task_end(task_id, data)

    def sample(self, batch: Any, task_id: int) -> Any:
        for m in self.members:
            batch = m.sample(batch, task_id)
        return batch

    def penalty(self, task_id: int) -> torch.Tensor | None:
        terms = [p for m in self.members if (p := m.penalty(task_id)) is not None]
        return torch.stack(terms).sum() if terms else None

    def adjust_gradients(self, task_id: int) -> None:
        for m in self.members:
            m.adjust_gradients(task_id)

    def after_step(self) -> None:
        for m in self.members:
            m.after_step()

    @contextlib.contextmanager
    def acting(self, task_id: int) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for m in self.members:
                stack.enter_context(m.acting(task_id))
            yield

    def state_dict(self) -> dict[str, Any]:
        return {f"{i}:{m.name}": m.state_dict() for i, m in enumerate(self.members)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, m in enumerate(self.members):
            m.load_state_dict(state[f"{i}:{m.name}"])
