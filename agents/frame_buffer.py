"""A replay buffer for flat pixel observations that stores every rendered frame once, as uint8.

A stacked observation of F frames shares F-1 frames with the one before it, and ``next_obs`` of a
transition is ``obs`` of the next one; stable-baselines3's ReplayBuffer stores both stacks, as
float32 here (2F frames of 4 bytes a value per transition). This buffer keeps the newest frame of
each observation (one uint8 frame per transition), the newest frame of the last ``next_obs`` of
every finished episode (one per episode), and the non-pixel tail (state, one-hot) as float32, and
rebuilds both stacks when sampling, clamped at the episode's first frame as the env's frame
stack repeats its reset frame. An episode starts after a done, and also where an observation does
not continue the previous transition's next one (a reset without a done: a task switch when
steps_per_task is not a multiple of the episode's length), so no stack crosses an episode
border. ``add`` takes stable-baselines3's arguments and ``sample`` returns
its ``ReplayBufferSamples``, so a learner can use it in place of SB3's buffer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from robotcl.envs.pixels import PixelLayout


class FrameReplayBuffer:
    """``capacity`` transitions of one env whose observations follow ``layout`` (then a tail)."""

    def __init__(
        self,
        capacity: int,
        layout: PixelLayout,
        obs_dim: int,
        action_dim: int,
        device: torch.device | str = "cpu",
        handle_timeout_termination: bool = True,
    ) -> None:
        self.capacity, self.layout, self.device = capacity, layout, torch.device(device)
        self.handle_timeouts = handle_timeout_termination
        frame = (3, layout.size, layout.size)
        tail = obs_dim - layout.pixel_values
        # newest frame of obs_i, by transition number; F spare slots keep the frames the oldest
        # stored transitions stack on after their predecessors were overwritten
        self.frame_capacity = capacity + layout.frames
        self.frames = np.zeros((self.frame_capacity, *frame), np.uint8)
        self.tails = np.zeros((capacity, tail), np.float32)
        self.next_tails = np.zeros((capacity, tail), np.float32)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros((capacity, 1), np.float32)
        self.dones = np.zeros((capacity, 1), np.float32)
        self.timeouts = np.zeros((capacity, 1), np.float32)
        self.absolute = np.zeros(capacity, np.int64)  # transition number stored in each slot
        self.episode_start = np.zeros(capacity, np.int64)
        self.last_frames: dict[int, np.ndarray] = {}  # episode end -> newest frame of next_obs
        self.count = 0
        self._start = 0
        self._latest_next: np.ndarray | None = None  # next frame of the newest transition

    # -- SB3's buffer interface -------------------------------------------------------------
    @property
    def pos(self) -> int:
        return self.count % self.capacity

    @property
    def full(self) -> bool:
        return self.count >= self.capacity

    def size(self) -> int:
        return min(self.count, self.capacity)

    def reset(self) -> None:
        self.count, self._start, self._latest_next = 0, 0, None
        self.last_frames.clear()

    def _newest_frame(self, obs: np.ndarray) -> np.ndarray:
        images = self.layout.images(np.asarray(obs, np.float32))
        return images[-3:].astype(np.uint8)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """One transition of a single env (SB3's shapes: a leading env axis of 1)."""
        obs, next_obs = np.asarray(obs)[0], np.asarray(next_obs)[0]
        i, slot, pixels = self.count, self.count % self.capacity, self.layout.pixel_values
        newest = self._newest_frame(obs)
        if self._start < i and not self._continues(newest, obs[pixels:]):
            # reset without a done: the previous transition's next frame is its own, and the
            # stacks of this episode begin here
            self.last_frames[i - 1] = self._latest_next  # type: ignore[assignment]
            self._start = i
        self.frames[i % self.frame_capacity] = newest
        self.tails[slot], self.next_tails[slot] = obs[pixels:], next_obs[pixels:]
        self.actions[slot] = np.asarray(action).reshape(-1)
        self.rewards[slot] = float(np.asarray(reward).reshape(-1)[0])
        ended = bool(np.asarray(done).reshape(-1)[0])
        self.dones[slot] = ended
        truncated = bool(infos[0].get("TimeLimit.truncated", False)) if infos else False
        self.timeouts[slot] = truncated and self.handle_timeouts
        self.absolute[slot], self.episode_start[slot] = i, self._start
        next_frame = self._newest_frame(next_obs)
        if ended:
            self.last_frames[i] = next_frame
            self._start = i + 1
        self._latest_next = next_frame
        self.count += 1
        oldest = self.count - self.capacity
        for key in [k for k in self.last_frames if k < oldest]:
            del self.last_frames[key]

    def _continues(self, newest: np.ndarray, tail: np.ndarray) -> bool:
        """Whether an observation (its newest frame and its tail) is the previous transition's
        next observation."""
        previous = (self.count - 1) % self.capacity
        return np.array_equal(newest, self._latest_next) and np.array_equal(
            tail, self.next_tails[previous]
        )

    # -- reading ------------------------------------------------------------------------------
    def _frame_at(self, index: int) -> np.ndarray:
        return self.frames[index % self.frame_capacity]

    def _stack(self, i: int, start: int, newest: np.ndarray | None) -> np.ndarray:
        """Frames i-F+1 .. i (clamped at ``start``), the last replaced by ``newest`` if given."""
        f = self.layout.frames
        picks = [self._frame_at(max(j, start)) for j in range(i - f + 1, i + 1)]
        if newest is not None:
            picks = picks[1:] + [newest]
        return np.concatenate(picks).reshape(-1)

    def rows(self, index: Any) -> ReplayBufferSamples:
        """The transitions in storage slots ``index``, both stacks rebuilt."""
        slots = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index).reshape(-1)
        obs, next_obs = [], []
        for slot in slots:
            i, start = int(self.absolute[slot]), int(self.episode_start[slot])
            obs.append(self._stack(i, start, None))
            if i in self.last_frames:
                newest = self.last_frames[i]
            elif i + 1 < self.count:
                newest = self._frame_at(i + 1)
            else:
                newest = self._latest_next
            next_obs.append(self._stack(i, start, newest))
        pixels = torch.as_tensor(np.stack(obs), dtype=torch.float32)
        next_pixels = torch.as_tensor(np.stack(next_obs), dtype=torch.float32)

        def cat(p: torch.Tensor, tail: np.ndarray) -> torch.Tensor:
            return torch.cat([p, torch.as_tensor(tail[slots])], dim=1).to(self.device)

        dones = self.dones[slots] * (1 - self.timeouts[slots])
        return ReplayBufferSamples(
            cat(pixels, self.tails),
            torch.as_tensor(self.actions[slots], device=self.device),
            cat(next_pixels, self.next_tails),
            torch.as_tensor(dones, device=self.device),
            torch.as_tensor(self.rewards[slots], device=self.device),
        )

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        return self.rows(np.random.randint(0, self.size(), size=batch_size))

    @staticmethod
    def bytes_needed(capacity: int, layout: PixelLayout, obs_dim: int, action_dim: int) -> int:
        """Bytes of a full buffer before any episode-end frames (at most one per episode):
        what :meth:`nbytes` counts, from the sizes alone."""
        tail = obs_dim - layout.pixel_values
        per_transition = 4 * (2 * tail + action_dim + 3) + 8 * 2  # floats; two int64 indices
        return (capacity + layout.frames) * layout.frame_values + capacity * per_transition

    def nbytes(self) -> int:
        """Bytes held: the frame store, the episode-end frames and the per-transition arrays."""
        arrays = (self.frames, self.tails, self.next_tails, self.actions, self.rewards)
        arrays += (self.dones, self.timeouts, self.absolute, self.episode_start)
        ends = sum(frame.nbytes for frame in self.last_frames.values())
        return sum(a.nbytes for a in arrays) + ends
