"""Cumulative training: joint training over the stored data of every task seen so far.

(Avalanche calls this "Cumulative"; it is not Continual World's multi-task reference, which is
``multitask``.)

Every finished task's data is kept (an SB3 replay buffer is copied, cut to its content, since the
learner may reuse or drop it at the next task), and every training batch is replaced by an equal
share from each task seen so far: the current task's share from the incoming batch, each earlier
task's from its stored data. Each update thus trains jointly on all tasks so far.

This is joint training on stored data, not Continual World's multi-task baseline (Wolczyk et al.
2021; robotcl's ``multitask``), which interacts with all tasks' environments at once for the
whole run: here earlier tasks contribute only the transitions collected while they were trained,
the current task gets ``1/(i+1)`` of each batch, and the current task's data grows as usual.
The stored data is the strategy's checkpoint state, so checkpoints grow by about one replay
buffer per finished task (large).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer

from robotcl.registry import register_strategy
from robotcl.strategies.base import MemoryUsage, Strategy, TaskData

_REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


@register_strategy("cumulative")
class Cumulative(Strategy):
    """Equal shares of every seen task in each batch, from the tasks' stored data."""

    name = "cumulative"
    needs = frozenset({"replay_data"})

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.memories: dict[int, Any] = {}

    def on_task_end(self, task_id: int, data: TaskData) -> None:
        self.memories[task_id] = keep(data.buffer)

    def memory_usage(self) -> MemoryUsage:
        """Every finished task's stored data (rows and bytes of its arrays)."""
        rows = nbytes = 0
        for data in self.memories.values():
            rows += data.size() if callable(getattr(data, "size", None)) else len(data)
            for name in _REPLAY_ARRAYS:  # a BC dataset has observations and actions
                array = getattr(data, name, None)
                if array is not None and hasattr(array, "nbytes"):
                    nbytes += int(array.nbytes)
        return MemoryUsage.of_transitions("task data", rows, nbytes)

    def sample(self, batch: Any, task_id: int) -> Any:
        """The first ``n - (k - 1) * (n // k)`` rows of ``batch`` and ``n // k`` rows from each of
        the ``k - 1`` earlier tasks' data (``n`` rows in all)."""
        earlier = [m for t, m in sorted(self.memories.items()) if t != task_id and m.size() > 0]
        n = len(batch[0])
        share = n // (len(earlier) + 1)
        if not earlier or share == 0:
            return batch
        own = n - share * len(earlier)
        parts = [type(batch)(*(None if f is None else f[:own] for f in batch))]
        parts += [memory.sample(share) for memory in earlier]
        return type(batch)(*(_cat(fields) for fields in zip(*parts, strict=True)))

    def state_dict(self) -> dict[str, Any]:
        """The stored data of every finished task (large: a replay buffer per task)."""
        return {"memories": dict(self.memories)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memories = dict(state["memories"])


def _cat(fields: tuple[torch.Tensor | None, ...]) -> torch.Tensor | None:
    """Concatenate one field of several batches; optional fields (SB3's ``discounts``) that are
    None in every batch stay None."""
    if all(f is None for f in fields):
        return None
    return torch.cat(fields)


def keep(buffer: Any) -> Any:
    """What to store of a finished task's data: a trimmed copy of an SB3 replay buffer (same
    ``size()`` / ``sample(n)``), any other dataset by reference."""
    if isinstance(buffer, ReplayBuffer):
        return copy_replay_buffer(buffer)
    return buffer


def copy_replay_buffer(buffer: ReplayBuffer) -> ReplayBuffer:
    """A copy of ``buffer`` holding just its ``size()`` transitions, sampled by SB3's own code."""
    if buffer.optimize_memory_usage or not isinstance(buffer.observations, np.ndarray):
        raise ValueError("cumulative stores plain ReplayBuffers only (no optimize_memory_usage)")
    n = buffer.size()
    kept = copy.copy(buffer)
    for name in _REPLAY_ARRAYS:
        setattr(kept, name, getattr(buffer, name)[:n].copy())
    kept.buffer_size, kept.pos, kept.full = n, 0, True
    return kept
