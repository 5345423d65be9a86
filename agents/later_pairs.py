"""Pairs of observations ``k`` steps apart in one episode, drawn from a replay buffer: the
anchors and positives of a temporal contrast with ``k > 1`` (ATC, Stooke et al. 2021: k = 3 on
Atari and DMLab; ``k = 1`` is a batch's own next observations).

The positive of the transition in slot ``s`` is the next observation of slot ``s + k - 1``; the
pair is kept only where slots ``s .. s + k - 1`` hold consecutive steps of one episode, stored
after one another (the ring's write position is not crossed). Works with stable-baselines3's
ReplayBuffer (one env; an episode continues where an observation equals the previous
transition's next one, so a reset without a done also ends it) and with
:class:`~robotcl.agents.frame_buffer.FrameReplayBuffer` (its own episode bookkeeping).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robotcl.agents.frame_buffer import FrameReplayBuffer
from robotcl.strategies.memory import buffer_rows

#: rounds of candidate draws before giving up (each draws twice the rows still missing)
ROUNDS = 50


def _capacity(buffer: Any) -> int:
    return buffer.capacity if isinstance(buffer, FrameReplayBuffer) else buffer.buffer_size


def _chronological(buffer: Any, slots: np.ndarray, k: int) -> np.ndarray:
    """Whether slot ``s + k - 1`` was written after slot ``s`` (and is still held)."""
    size, pos = buffer.size(), buffer.pos
    age = (slots - pos) % size if buffer.full else slots  # 0: the oldest row held
    return age + k - 1 < size


def _one_episode(buffer: Any, slots: np.ndarray, k: int) -> np.ndarray:
    """Whether slots ``s .. s + k - 1`` are consecutive steps of one episode."""
    capacity = _capacity(buffer)
    last = (slots + k - 1) % capacity
    if isinstance(buffer, FrameReplayBuffer):
        return buffer.episode_start[last] == buffer.episode_start[slots]
    ok = np.ones(len(slots), bool)
    for j in range(k - 1):  # each observation continues the previous transition's next one
        now, after = (slots + j) % capacity, (slots + j + 1) % capacity
        ok &= (buffer.observations[after, 0] == buffer.next_observations[now, 0]).all(axis=-1)
    return ok


def later_pairs(
    buffer: Any, n: int, k: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (observations, observations ``k`` steps later in the same episode), uniformly over
    the valid anchors the buffer holds. Raises ValueError when there are too few."""
    size = buffer.size()
    chosen: list[np.ndarray] = []
    missing = n
    for _ in range(ROUNDS):
        if missing <= 0 or size == 0:
            break
        slots = torch.randint(0, size, (2 * missing,), generator=generator).numpy()
        slots = slots[_chronological(buffer, slots, k)]
        slots = slots[_one_episode(buffer, slots, k)][:missing]
        chosen.append(slots)
        missing -= len(slots)
    if missing > 0:
        raise ValueError(
            f"the replay holds too few observations {k} steps apart within one episode "
            f"({n - missing} of {n} found): episodes shorter than k={k}?"
        )
    slots = np.concatenate(chosen)
    capacity = _capacity(buffer)
    anchors = buffer_rows(buffer, torch.as_tensor(slots)).observations
    later = buffer_rows(buffer, torch.as_tensor((slots + k - 1) % capacity)).next_observations
    return anchors, later
