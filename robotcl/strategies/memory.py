"""Episodic memories shared by the memory-based strategies (GEM, A-GEM, replay, perfect memory).

A memory is a NamedTuple batch of tensors (SB3's ``ReplayBufferSamples`` for SAC,
``SupervisedBatch`` for BC) on the learner's device, taken from ``TaskData.buffer`` when a task
ends. Per-task memories (:class:`EpisodicMemory`) hold a uniform subset of each finished task's
buffer, drawn without replacement; a :class:`Reservoir` holds a uniform sample of every transition
seen so far (Vitter's Algorithm R). All randomness comes from the strategy's own seeded
CPU ``torch.Generator``, whose state is part of the strategy's ``state_dict``; the state holds
the memories as CPU copies, moved back to the learner's device by ``setup``.

The memories assume one buffer per task (``agent.reset_buffer=true``, Continual World's default):
a buffer that keeps earlier tasks would put their transitions in the finished task's memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field, NonNegativeInt, PositiveInt

from robotcl.errors import UserInputError
from robotcl.strategies.base import (
    MemoryUsage,
    Strategy,
    StrategySettings,
    TaskData,
    batch_bytes,
    concat_batches,
    index_batch,
)

Batch = Any  # a NamedTuple whose fields are tensors with one row per transition


# -- buffers ----------------------------------------------------------------------------------
def stream_order(buffer: Any) -> torch.Tensor:
    """Indices of the buffer's valid rows in insertion order (a full SB3 buffer wraps at pos)."""
    size = buffer.size()
    if getattr(buffer, "full", False):
        pos = int(buffer.pos)
        return torch.cat([torch.arange(pos, size), torch.arange(0, pos)])
    return torch.arange(size)


def buffer_rows(buffer: Any, index: torch.Tensor) -> Batch:
    """The rows ``index`` of a task's buffer, as the batch type its ``sample`` returns.

    Knows SB3 replay buffers (through ``_get_samples``, which applies the timeout handling of
    ``sample``) and the BC learner's ``TransitionDataset``; any other buffer may offer
    ``rows(index) -> batch``.
    """
    rows = getattr(buffer, "rows", None)
    if callable(rows):
        return rows(index)
    from stable_baselines3.common.buffers import ReplayBuffer

    if isinstance(buffer, ReplayBuffer):
        if buffer.optimize_memory_usage:
            raise UserInputError("memory", "SB3 buffers with optimize_memory_usage are unsupported")
        return buffer._get_samples(index.cpu().numpy())
    from robotcl.agents.supervised import SupervisedBatch, TransitionDataset

    if isinstance(buffer, TransitionDataset):
        index = index.to(buffer.observations.device)
        return SupervisedBatch(buffer.observations[index], buffer.actions[index])
    raise TypeError(f"cannot read rows of a {type(buffer).__name__}: give it rows(index)")


# -- batches ---------------------------------------------------------------------------------
def map_batch(batch: Batch, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
    """``fn`` on every tensor field; None fields (SB3's optional ``discounts``) stay None."""
    return type(batch)(*(None if field is None else fn(field) for field in batch))


def to_device(batch: Batch, device: torch.device | str) -> Batch:
    """The batch with every field on ``device``."""
    return map_batch(batch, lambda field: field.to(device))


def clone_batch(batch: Batch) -> Batch:
    return map_batch(batch, torch.clone)


def cpu_copy(batch: Batch) -> Batch:
    """A copy on the CPU: checkpoints stay loadable on any machine and hold no GPU memory."""
    return map_batch(batch, lambda field: field.detach().to("cpu", copy=True))


def concat_all(batches: list[Batch]) -> Batch:
    """Row-wise concatenation of several batches of one type."""
    return functools.reduce(concat_batches, batches)


def batch_len(batch: Batch) -> int:
    return len(batch[0])


def draw_memory(buffer: Any, n: int, generator: torch.Generator, device: Any) -> Batch:
    """Up to ``n`` rows of ``buffer`` drawn uniformly without replacement, in stream order.

    When the buffer holds ``n`` rows or fewer, all of them are kept.
    """
    order = stream_order(buffer)
    if n < len(order):
        pick = torch.randperm(len(order), generator=generator)[:n]
        order = order[pick.sort().values]
    return to_device(buffer_rows(buffer, order), device)


def sample_rows(batch: Batch, n: int, generator: torch.Generator) -> Batch:
    """``n`` rows of ``batch`` uniformly with replacement (draws on the CPU generator)."""
    index = torch.randint(0, batch_len(batch), (n,), generator=generator)
    return index_batch(batch, index.to(batch[0].device))


def split_evenly(n: int, parts: int, generator: torch.Generator) -> list[int]:
    """``n`` split into ``parts`` counts differing by at most one (extras to random parts)."""
    counts = [n // parts] * parts
    for i in torch.randperm(parts, generator=generator)[: n % parts].tolist():
        counts[i] += 1
    return counts


# -- memories ---------------------------------------------------------------------------------
class EpisodicMemory:
    """One memory per finished task: ``tasks[i]`` is a batch of task i's transitions."""

    def __init__(self) -> None:
        self.tasks: dict[int, Batch] = {}

    def add(self, task: int, rows: Batch) -> None:
        self.tasks[task] = rows

    def past(self, current: int) -> list[int]:
        """Tasks with a memory other than ``current``, in increasing order."""
        return sorted(t for t in self.tasks if t != current)

    def sample_pooled(self, tasks: list[int], n: int, generator: torch.Generator) -> Batch:
        """``n`` rows uniformly over the union of the memories of ``tasks`` (with replacement)."""
        sizes = torch.tensor([batch_len(self.tasks[t]) for t in tasks])
        index = torch.randint(0, int(sizes.sum()), (n,), generator=generator)
        owner = torch.bucketize(index, sizes.cumsum(0), right=True)
        starts = sizes.cumsum(0) - sizes
        parts = []
        for k, t in enumerate(tasks):
            rows = index[owner == k] - starts[k]
            if len(rows):
                parts.append(index_batch(self.tasks[t], rows.to(self.tasks[t][0].device)))
        return concat_all(parts)

    def sample_even(self, tasks: list[int], n: int, generator: torch.Generator) -> Batch:
        """``n`` rows split evenly over ``tasks``, uniform with replacement within each memory."""
        counts = split_evenly(n, len(tasks), generator)
        parts = [
            sample_rows(self.tasks[t], c, generator)
            for t, c in zip(tasks, counts, strict=True)
            if c
        ]
        return concat_all(parts)

    def to(self, device: Any) -> None:
        self.tasks = {t: to_device(b, device) for t, b in self.tasks.items()}

    def state_dict(self) -> dict[int, Batch]:
        return {t: cpu_copy(b) for t, b in self.tasks.items()}

    def load_state_dict(self, state: dict[int, Batch]) -> None:
        self.tasks = {int(t): clone_batch(b) for t, b in state.items()}


def reservoir_assign(
    seen: int, n: int, capacity: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm R (Vitter 1985) for ``n`` new items after ``seen``: (slots, item positions).

    Item t of the stream (0-based) fills slot t while t < capacity; later it replaces slot
    j ~ U{0..t} when j < capacity. Vectorised: the draws are made for all items at once and a
    slot written several times keeps its last writer, exactly as the sequential algorithm.
    """
    t = torch.arange(seen, seen + n, dtype=torch.float64)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    draw = torch.minimum(torch.floor(u * (t + 1)), t)  # guard the rounding of u * (t + 1)
    slot = torch.where(t < capacity, t, draw).long()
    item = torch.arange(n)
    keep = slot < capacity
    slot, item = slot[keep], item[keep]
    last = torch.full((capacity,), -1, dtype=torch.long)
    last.scatter_reduce_(0, slot, item, reduce="amax")
    slots = torch.nonzero(last >= 0).squeeze(1)
    return slots, last[slots]


class Reservoir:
    """A uniform sample of at most ``capacity`` transitions of the whole stream."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seen = 0
        self.storage: Batch | None = None

    def __len__(self) -> int:
        return 0 if self.storage is None else batch_len(self.storage)

    def add(self, rows: Batch, generator: torch.Generator) -> None:
        """Stream the rows of ``rows`` (in order) through the reservoir."""
        n = batch_len(rows)
        self._write(n, lambda items: index_batch(rows, items.to(rows[0].device)), generator)

    def add_buffer(self, buffer: Any, generator: torch.Generator, device: Any) -> None:
        """Stream every row of ``buffer`` in insertion order, reading only the rows kept."""
        order = stream_order(buffer)

        def fetch(items: torch.Tensor) -> Batch:
            return to_device(buffer_rows(buffer, order[items]), device)

        self._write(len(order), fetch, generator)

    def _write(
        self, n: int, fetch: Callable[[torch.Tensor], Batch], generator: torch.Generator
    ) -> None:
        if n == 0:
            return
        slots, items = reservoir_assign(self.seen, n, self.capacity, generator)
        self.seen += n
        if len(slots) == 0:
            return
        rows = fetch(items)
        filled = min(self.seen, self.capacity)
        if self.storage is None:
            self.storage = map_batch(rows, lambda f: f.new_zeros((filled, *f.shape[1:])))
        elif filled > len(self):
            grow = filled - len(self)
            self.storage = map_batch(
                self.storage, lambda s: torch.cat([s, s.new_zeros((grow, *s.shape[1:]))])
            )
        slots = slots.to(self.storage[0].device)
        for store, new in zip(self.storage, rows, strict=True):
            if store is not None:
                store[slots] = new.to(store.dtype)

    def sample(self, n: int, generator: torch.Generator) -> Batch:
        return sample_rows(self.storage, n, generator)

    def to(self, device: Any) -> None:
        if self.storage is not None:
            self.storage = to_device(self.storage, device)

    def state_dict(self) -> dict[str, Any]:
        storage = None if self.storage is None else cpu_copy(self.storage)
        return {"capacity": self.capacity, "seen": self.seen, "storage": storage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity, self.seen = int(state["capacity"]), int(state["seen"])
        self.storage = None if state["storage"] is None else clone_batch(state["storage"])


# -- gradients --------------------------------------------------------------------------------
def current_gradient(params: list[torch.nn.Parameter]) -> torch.Tensor:
    """The parameters' ``.grad`` flattened into one vector (zeros where there is none)."""
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )


def loss_gradient(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> torch.Tensor:
    """d loss / d params flattened, without touching ``.grad`` (``torch.autograd.grad``)."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def write_gradient(params: list[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Write a flat vector back into the parameters' ``.grad``."""
    offset = 0
    for p in params:
        chunk = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
        if p.grad is None:
            p.grad = chunk.clone()
        else:
            p.grad.copy_(chunk)
        offset += p.numel()


# -- the strategy bases -----------------------------------------------------------------------
class BufferSettings(StrategySettings):
    """Settings of a strategy that draws from task buffers with its own generator."""

    seed: NonNegativeInt | None = Field(
        None, description="seed of the strategy's draws; none: the learner's seed"
    )


class BufferStrategy(Strategy):
    """Reads each finished task's buffer; owns a seeded CPU generator saved in ``state_dict``."""

    Settings = BufferSettings
    needs = frozenset({"replay_data"})

    def __init__(self, settings: StrategySettings | None = None) -> None:
        super().__init__(settings)
        self.generator = torch.Generator(device="cpu")
        self._seeded = False

    def setup(self, learner: Any, suite: Any) -> None:
        super().setup(learner, suite)
        if getattr(learner, "reset_buffer", True) is False:
            raise UserInputError(
                self.name,
                "takes its memories from each task's own buffer",
                "set agent.reset_buffer=true",
            )
        if not self._seeded:  # a restored generator keeps its state
            seed = self.settings.seed
            if seed is None:
                seed = getattr(learner, "seed", None) or 0
            self.generator.manual_seed(seed)
            self._seeded = True
        self.to(learner.device)

    def to(self, device: Any) -> None:
        """Move the memories to ``device``."""

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._seeded = True
        if self.learner is not None:
            self.to(self.learner.device)


class MemorySettings(BufferSettings):
    """Settings common to the strategies with per-task episodic memories."""

    memory_per_task: PositiveInt = Field(
        10_000,
        description="transitions kept per finished task, drawn uniformly from its buffer "
        "(Continual World's A-GEM: 10,000); the whole buffer when it holds fewer",
    )


class MemoryStrategy(BufferStrategy):
    """Keeps an :class:`EpisodicMemory` of every finished task; subclasses use it."""

    Settings = MemorySettings

    def __init__(self, settings: StrategySettings | None = None) -> None:
        super().__init__(settings)
        self.memory = EpisodicMemory()

    def to(self, device: Any) -> None:
        self.memory.to(device)

    def memory_usage(self) -> MemoryUsage:
        batches = self.memory.tasks.values()
        return MemoryUsage.of_transitions(
            "episodic memory", sum(map(batch_len, batches)), sum(map(batch_bytes, batches))
        )

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        rows = draw_memory(
            data.buffer, self.settings.memory_per_task, self.generator, self.learner.device
        )
        self.memory.add(task_id, rows)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "memory": self.memory.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory.load_state_dict(state["memory"])
        super().load_state_dict(state)


class GradientMemorySettings(MemorySettings):
    """Settings of the gradient-projection strategies (GEM, A-GEM)."""

    episodic_batch_size: PositiveInt = Field(
        128, description="memory rows per reference gradient (Continual World's A-GEM: 128)"
    )
    groups: list[str] | None = Field(
        None,
        min_length=1,
        description="parameter groups projected together; none: every group of the learner "
        "(actor and critic together, as Continual World's A-GEM; the actor for BC)",
    )


class GradientMemoryStrategy(MemoryStrategy):
    """Base of GEM and A-GEM: the flattened gradient over the selected parameter groups."""

    Settings = GradientMemorySettings
    needs = frozenset({"replay_data", "reference_loss"})

    def __init__(self, settings: StrategySettings | None = None) -> None:
        super().__init__(settings)
        self.stats = {"updates": 0, "projections": 0}

    def setup(self, learner: Any, suite: Any) -> None:
        super().setup(learner, suite)
        self.projected_parameters()  # unknown groups fail here, before any training

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "stats": dict(self.stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.stats = dict(state["stats"])

    #: reference gradients an update builds per past task (GEM: one each) or in all (A-GEM: 1)
    def gradients_per_update(self, past: int) -> int:
        return past

    def memory_usage(self) -> MemoryUsage:
        """The memories, and the reference gradients the next update builds (float32, one
        value per projected parameter each): transient, but held at every update."""
        past = len(self.memory.tasks)
        n = sum(p.numel() for p in self.projected_parameters()) if self.learner else 0
        rows = self.gradients_per_update(past) if past else 0
        gradients = MemoryUsage(
            values=rows * n, value_bytes=4 * rows * n, by_kind={"gradients": 4 * rows * n}
        )
        return super().memory_usage() + (gradients if rows else MemoryUsage())

    def projected_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters whose gradient is projected (``groups``; none given: all groups)."""
        groups = self.settings.groups or list(self.learner.parameter_groups())
        return [p for p in self.selected_parameters(groups) if p.requires_grad]

    def memory_gradient(self, batch: Batch, params: list[torch.nn.Parameter]) -> torch.Tensor:
        """Gradient of the learner's training loss on a memory batch."""
        return loss_gradient(self.learner.reference_loss(batch), params)
