"""The Strategy base class: a continual-learning method that acts only through hooks.

A learner calls the hooks from its own update step, so one strategy serves every learner:

    on_task_start(i) -> [sample -> loss + penalty -> backward -> adjust_gradients -> step
    -> after_step]* -> on_task_end(i, data)

Evaluation and data collection run inside ``acting(i)``. Every hook is optional.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
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


@dataclass
class MemoryUsage:
    """What a strategy keeps beyond the learner itself (the gap evaluation's memory column):
    stored transitions, and extra values (anchors, importances, masks, frozen columns,
    gradients) with their bytes; ``by_kind`` names where the bytes are."""

    transitions: int = 0
    transition_bytes: int = 0
    values: int = 0
    value_bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return self.transition_bytes + self.value_bytes

    def __add__(self, other: MemoryUsage) -> MemoryUsage:
        kinds = dict(self.by_kind)
        for kind, n in other.by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + n
        return MemoryUsage(
            self.transitions + other.transitions,
            self.transition_bytes + other.transition_bytes,
            self.values + other.values,
            self.value_bytes + other.value_bytes,
            kinds,
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bytes": self.bytes}

    @classmethod
    def of_values(cls, kind: str, tensors: Iterable[torch.Tensor | None]) -> MemoryUsage:
        """Extra values: every element of ``tensors`` (None entries hold nothing)."""
        held = [t for t in tensors if t is not None]
        n = sum(t.numel() for t in held)
        nbytes = sum(t.numel() * t.element_size() for t in held)
        return cls(values=n, value_bytes=nbytes, by_kind={kind: nbytes} if held else {})

    @classmethod
    def of_transitions(cls, kind: str, rows: int, nbytes: int) -> MemoryUsage:
        """``rows`` stored transitions taking ``nbytes``."""
        return cls(
            transitions=rows, transition_bytes=nbytes, by_kind={kind: nbytes} if rows else {}
        )


def batch_bytes(batch: Any) -> int:
    """Bytes of the tensor fields of a NamedTuple batch (None fields hold nothing)."""
    return sum(f.numel() * f.element_size() for f in batch if f is not None)


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
        params = [p for g in groups for p in available[g]]
        if not params:  # e.g. the trunks of agent.net_arch=[]: nothing to anchor, mask or project
            filled = sorted(g for g, ps in available.items() if list(ps))
            raise UserInputError(
                f"{self.name}.groups={list(groups)}",
                "hold no parameters in this learner (agent.net_arch=[] leaves its trunks empty)",
                f"choose groups that have some: {', '.join(filled)}",
            )
        return params

    # -- what it costs -------------------------------------------------------------------
    def memory_usage(self) -> MemoryUsage:
        """What the strategy keeps beyond the learner now (fine-tuning: nothing)."""
        return MemoryUsage()

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

    def memory_usage(self) -> MemoryUsage:
        total = MemoryUsage()
        for m in self.members:
            total = total + m.memory_usage()
        return total

    def state_dict(self) -> dict[str, Any]:
        return {f"{i}:{m.name}": m.state_dict() for i, m in enumerate(self.members)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, m in enumerate(self.members):
            m.load_state_dict(state[f"{i}:{m.name}"])
