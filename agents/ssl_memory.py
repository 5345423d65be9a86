"""The SSL memory: observations of finished tasks that the contrastive loss may rehearse.

Each kept row is one transition's observation and the next one. With a :class:`PixelLayout`
the rows are stored compactly: the observation's frame stack and the next observation's newest
frame as uint8 (the next stack is the observation's last F-1 frames and that one), the non-pixel
tails (state, one-hot) as float32; without one (state observations) both observations are kept
as float32. Rows are drawn uniformly over every task but the one being trained.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from robotcl.envs.pixels import PixelLayout


class ObservationMemory:
    """Observation pairs of finished tasks, stored once per row (see the module docstring)."""

    def __init__(self, layout: PixelLayout | None = None) -> None:
        self.layout = layout
        self.pixels = self.tails = self.task = None  # type: torch.Tensor | None
        self._eligible: tuple[int, int, torch.Tensor] | None = None  # (task, rows, indices)

    @property
    def _widths(self) -> tuple[int, int]:
        """Values of the pixel stack and of one frame (0, 0 without a layout)."""
        if self.layout is None:
            return 0, 0
        return self.layout.pixel_values, self.layout.frame_values

    def __len__(self) -> int:
        return 0 if self.task is None else len(self.task)

    def tasks(self) -> list[int]:
        return [] if self.task is None else sorted(set(self.task.tolist()))

    def add(self, task: int, chunks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Keep the rows of every ``(obs, next_obs)`` chunk (float, (N, width)) for ``task``;
        each chunk is compacted as it comes, the memory grows once."""
        parts = [self._compact(obs, next_obs) for obs, next_obs in chunks]
        if not parts:
            return
        pixels, tails = (torch.cat(column) for column in zip(*parts, strict=True))
        task_ids = torch.full((len(pixels),), task, dtype=torch.int64)
        if self.task is None:
            self.pixels, self.tails, self.task = pixels, tails, task_ids
        else:
            self.pixels = torch.cat([self.pixels, pixels])
            self.tails = torch.cat([self.tails, tails])
            self.task = torch.cat([self.task, task_ids])

    def _compact(
        self, obs: torch.Tensor, next_obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 frame stack + the next newest frame, float32 tails of both) of some rows."""
        stack, frame = self._widths
        obs, next_obs = obs.detach().cpu(), next_obs.detach().cpu()
        pixels = torch.cat([obs[:, :stack], next_obs[:, stack - frame : stack]], dim=1)
        tails = torch.stack([obs[:, stack:], next_obs[:, stack:]], dim=1).float()
        return pixels.round().to(torch.uint8), tails

    def sample(
        self, n: int, generator: torch.Generator, exclude: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``n`` (observation, next observation) rows drawn uniformly from tasks other than
        ``exclude``, as float32; None when there are none."""
        if self.task is None:
            return None
        if self._eligible is None or self._eligible[:2] != (exclude, len(self.task)):
            self._eligible = (exclude, len(self.task), (self.task != exclude).nonzero()[:, 0])
        rows = self._eligible[2]
        if len(rows) == 0:
            return None
        pick = rows[torch.randint(0, len(rows), (n,), generator=generator)]
        stack, frame = self._widths
        pixels, tails = self.pixels[pick].float(), self.tails[pick]
        obs = torch.cat([pixels[:, :stack], tails[:, 0]], dim=1)
        next_obs = torch.cat([pixels[:, frame:], tails[:, 1]], dim=1)
        return obs, next_obs

    @staticmethod
    def bytes_per_row(layout: PixelLayout | None, obs_dim: int) -> int:
        """Bytes one kept row takes (what :meth:`nbytes` counts per row)."""
        stack, frame = (layout.pixel_values, layout.frame_values) if layout else (0, 0)
        return stack + frame + 2 * 4 * (obs_dim - stack) + 8

    def nbytes(self) -> int:
        if self.task is None:
            return 0
        return sum(t.numel() * t.element_size() for t in (self.pixels, self.tails, self.task))
