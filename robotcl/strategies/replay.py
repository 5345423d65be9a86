"""Experience replay: earlier tasks' transitions mixed into every training batch.

Three strategies, because they keep or use their memories differently:

- ``replay``: one episodic memory per finished task (``memory_per_task`` transitions drawn
  uniformly from its buffer); each batch takes ``replay_ratio`` of its rows from the past tasks'
  memories, split evenly over those tasks. The mixed batch feeds every loss of the learner, the
  critic's included: on RL the shared critic then learns the past tasks' values from a fixed
  memory, off-policy with no new data, and those values can run away (docs/results.md
  measures it).
- ``replay_frozen``: the same memories as the CoRL 2021 gap study's experience replay
  (yangfanthu/ll_orthog, ``er.py``) used them: a critic a task, trained on its own task only, and
  each update adds to the actor's loss minus that critic's value of the policy on a batch of
  one past task's memory (drawn at random, as large as the current batch at ratio 0.5), without
  the entropy term; the critic's batch holds current rows only. Here the critic of a past task
  is a frozen copy of the learner's critic taken at that task's end (``critic_snapshot``).
- ``perfect_memory``: Continual World's Perfect Memory (Wolczyk et al. 2021): a reservoir of
  ``reservoir_size`` transitions over all tasks (Vitter's Algorithm R, seeded), fed at each
  task's end with every transition of its buffer in stream order, never reset. Continual World
  made it the agent's own buffer (20M transitions, all of CW20, batch 512 drawn over everything);
  here the current task's rows still come from the learner's buffer and ``replay_ratio`` of each
  batch from the reservoir. Set ``reservoir_size`` to the total number of steps to keep all.

By default the mixed batch keeps the learner's batch size: ``replay_ratio`` x B memory rows
replace as many current rows. With ``append=true`` the memory rows are added to the full current
batch instead, B x ratio / (1 - ratio) of them (ratio 0.5 doubles the batch; with
``replay_frozen`` the memory batch always has this size). Every memory row
carries its own one-hot, so the multi-head learners train its task's head (and, in SAC, its
entropy coefficient) on it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field, PositiveInt

from robotcl.registry import register_strategy
from robotcl.strategies.base import (
    MemoryUsage,
    StrategySettings,
    TaskData,
    batch_bytes,
    concat_batches,
    index_batch,
)
from robotcl.strategies.memory import (
    Batch,
    BufferSettings,
    BufferStrategy,
    MemorySettings,
    MemoryStrategy,
    Reservoir,
    batch_len,
    sample_rows,
)


class MixSettings(StrategySettings):
    """How memory rows enter the training batch."""

    replay_ratio: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="fraction of each training batch drawn from memory (CoRL ER: 0.5)",
    )
    append: bool = Field(
        False,
        description="add the memory rows to the full batch instead of replacing current rows",
    )


def appended_rows(size: int, ratio: float) -> int:
    """Memory rows beside a full batch of ``size`` so that they make ``ratio`` of the whole."""
    return round(size * ratio / (1.0 - ratio))


def mix_batch(batch: Batch, settings: MixSettings, draw: Callable[[int], Batch]) -> Batch:
    """``batch`` with ``settings.replay_ratio`` of its rows from ``draw(n)`` (see the module)."""
    size, ratio = batch_len(batch), settings.replay_ratio
    if settings.append:
        n_memory, keep = appended_rows(size, ratio), size
    else:
        n_memory = round(size * ratio)
        keep = size - n_memory
    if n_memory == 0:
        return batch
    current = index_batch(batch, slice(0, keep))  # the batch is already a random sample
    return concat_batches(current, draw(n_memory))


class ReplaySettings(MemorySettings, MixSettings):
    """Per-task episodic memories mixed into every batch."""


@register_strategy("replay")
class Replay(MemoryStrategy):
    """Experience replay from one episodic memory per finished task, drawn evenly over tasks."""

    name = "replay"
    Settings = ReplaySettings

    def sample(self, batch: Batch, task_id: int) -> Batch:
        past = self.memory.past(task_id)
        if not past:
            return batch
        return mix_batch(
            batch, self.settings, lambda n: self.memory.sample_even(past, n, self.generator)
        )


@register_strategy("replay_frozen")
class FrozenCriticReplay(Replay):
    """CoRL 2021's experience replay: one past task's memory an update in the actor's loss,
    valued by that task's critic frozen at its end; the critic trains on current rows only."""

    name = "replay_frozen"
    needs = Replay.needs | {"critic_snapshot"}

    def __init__(self, settings: StrategySettings | None = None) -> None:
        super().__init__(settings)
        self.critics: dict[int, torch.nn.Module] = {}  # a finished task's, frozen at its end

    def to(self, device: Any) -> None:
        super().to(device)
        self.critics = {t: critic.to(device) for t, critic in self.critics.items()}

    def memory_usage(self) -> MemoryUsage:
        usage = super().memory_usage()
        if not self.critics:
            return usage
        kept = (p for critic in self.critics.values() for p in critic.parameters())
        return usage + MemoryUsage.of_values("frozen critics", kept)

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        super().on_task_end(task_id, data)
        self.critics[task_id] = self.learner.critic_snapshot()

    def sample(self, batch: Batch, task_id: int) -> Batch:
        return batch  # the critic's batch holds current rows only

    def penalty(self, task_id: int) -> torch.Tensor | None:
        """The actor's loss on one past task's memory rows against that task's frozen critic
        (None before a task has ended)."""
        past = self.memory.past(task_id)
        if not past:
            return None
        task = past[int(torch.randint(len(past), (1,), generator=self.generator))]
        n = appended_rows(self.learner.batch_size, self.settings.replay_ratio)
        rows = sample_rows(self.memory.tasks[task], n, self.generator)
        return self.learner.policy_value_loss(rows.observations, self.critics[task])

    def state_dict(self) -> dict[str, Any]:
        critics = {t: copy.deepcopy(critic).cpu() for t, critic in self.critics.items()}
        return {**super().state_dict(), "critics": critics}  # CPU modules, pickled

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critics = {int(t): critic for t, critic in state["critics"].items()}
        super().load_state_dict(state)


class PerfectMemorySettings(BufferSettings, MixSettings):
    """A reservoir over all tasks mixed into every batch."""

    reservoir_size: PositiveInt = Field(
        1_000_000,
        description="transitions in the reservoir over all tasks (Continual World: 2e7, all of "
        "CW20; here one task's buffer, 1e6, by default)",
    )


@register_strategy("perfect_memory")
class PerfectMemory(BufferStrategy):
    """Continual World's Perfect Memory: a reservoir sample of every earlier transition."""

    name = "perfect_memory"
    Settings = PerfectMemorySettings

    def __init__(self, settings: StrategySettings | None = None) -> None:
        super().__init__(settings)
        self.reservoir = Reservoir(self.settings.reservoir_size)

    def to(self, device: Any) -> None:
        self.reservoir.to(device)

    def memory_usage(self) -> MemoryUsage:
        storage = self.reservoir.storage
        nbytes = 0 if storage is None else batch_bytes(storage)
        return MemoryUsage.of_transitions("reservoir", len(self.reservoir), nbytes)

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        self.reservoir.add_buffer(data.buffer, self.generator, self.learner.device)

    def sample(self, batch: Batch, task_id: int) -> Batch:
        if len(self.reservoir) == 0:
            return batch
        return mix_batch(batch, self.settings, lambda n: self.reservoir.sample(n, self.generator))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "reservoir": self.reservoir.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reservoir.load_state_dict(state["reservoir"])
        super().load_state_dict(state)
