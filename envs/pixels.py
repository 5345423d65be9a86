"""Pixel observations for any task that renders: stacked RGB frames, optionally with the state.

:class:`PixelObservation` renders a ``size`` x ``size`` frame after every reset and step (CURL:
100 x 100, three stacked frames) and returns one flat float32 vector laid out as
:class:`PixelLayout` says: the stacked frames (channel-first, values 0-255), then the state
observation when ``proprio`` is set. Kept flat, it passes through the suite's one-hot wrapper,
the evaluator and the memories like a state observation; encoders read the layout back, and
:class:`~robotcl.agents.frame_buffer.FrameReplayBuffer` stores each frame once, as uint8.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class PixelLayout:
    """Where the parts of a flat pixel observation are."""

    frames: int
    size: int
    proprio: int  # state features after the pixels (0 for pixels only)

    @property
    def frame_values(self) -> int:
        """Values of one RGB frame."""
        return 3 * self.size * self.size

    @property
    def pixel_values(self) -> int:
        return self.frames * self.frame_values

    @property
    def width(self) -> int:
        return self.pixel_values + self.proprio

    def images(self, obs: Any) -> Any:
        """(..., frames * 3, size, size) view of the pixel part of flat observations."""
        return obs[..., : self.pixel_values].reshape(
            *obs.shape[:-1], 3 * self.frames, self.size, self.size
        )


class PixelObservation(gym.Wrapper):
    """Stacked rendered frames (and the state) as a flat observation; see the module docstring.

    The wrapped env must have been made with ``render_mode="rgb_array"`` at ``size`` x ``size``.
    """

    def __init__(self, env: gym.Env, frames: int = 3, size: int = 100, proprio: bool = False):
        super().__init__(env)
        state = env.observation_space
        self.layout = PixelLayout(frames, size, int(state.shape[0]) if proprio else 0)
        low = np.zeros(self.layout.width, np.float32)
        high = np.full(self.layout.width, 255.0, np.float32)
        if proprio:
            low[self.layout.pixel_values :] = state.low
            high[self.layout.pixel_values :] = state.high
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._frames: deque[np.ndarray] = deque(maxlen=frames)

    def _frame(self) -> np.ndarray:
        frame = self.env.render()
        if frame.shape != (self.layout.size, self.layout.size, 3):
            raise ValueError(
                f"rendered {frame.shape}, expected ({self.layout.size}, {self.layout.size}, 3): "
                "make the env with render_mode='rgb_array' at that size"
            )
        return np.ascontiguousarray(frame.transpose(2, 0, 1))  # channel-first

    def _observation(self, state: np.ndarray) -> np.ndarray:
        out = np.empty(self.layout.width, np.float32)
        out[: self.layout.pixel_values] = np.concatenate(self._frames).ravel()
        if self.layout.proprio:
            out[self.layout.pixel_values :] = state
        return out

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        state, info = self.env.reset(**kwargs)
        frame = self._frame()
        for _ in range(self.layout.frames):  # the first observation repeats the reset frame
            self._frames.append(frame)
        return self._observation(state), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        state, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(self._frame())
        return self._observation(state), reward, terminated, truncated, info
