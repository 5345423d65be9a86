"""Rendering helpers: one frame of a task, and a titled contact sheet of frames as a PNG.

The sheet is drawn on a bare Agg canvas, so it never switches the process-wide matplotlib backend.
"""

from __future__ import annotations

import math
import os

import gymnasium as gym
import numpy as np


def contact_sheet(frames: list[np.ndarray], titles: list[str], path: str, columns: int = 5) -> str:
    """Write ``frames`` in a grid with ``titles`` under each image (no axes) to PNG ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(frames) != len(titles):
        raise ValueError(f"{len(frames)} frames but {len(titles)} titles")
    if not frames:
        raise ValueError("no frames to draw")
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    fig = Figure(figsize=(2.4 * columns, 2.6 * rows))
    FigureCanvasAgg(fig)
    for k, (frame, title) in enumerate(zip(frames, titles, strict=True)):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(frame)
        ax.set_axis_off()
        ax.text(0.5, -0.02, title, transform=ax.transAxes, ha="center", va="top", fontsize=9)
    fig.tight_layout()
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def render_task(
    env_id_or_env: str | gym.Env,
    seed: int = 0,
    width: int = 240,
    height: int = 240,
    **make_kwargs,
) -> np.ndarray:
    """Reset a task and return one RGB frame of it.

    A gymnasium id is made with ``render_mode="rgb_array"`` and closed afterwards; an env passed
    in is reset and rendered but left open (its caller owns it).
    """
    if isinstance(env_id_or_env, str):
        import robotcl.envs  # noqa: F401  (registers the robotcl ids)

        env = gym.make(
            env_id_or_env, render_mode="rgb_array", width=width, height=height, **make_kwargs
        )
        try:
            env.reset(seed=seed)
            return env.render()
        finally:
            env.close()
    env_id_or_env.reset(seed=seed)
    return env_id_or_env.render()


def suite_contact_sheet(suite, path: str, columns: int = 5, size: int = 240) -> str:
    """Contact sheet of every task of ``suite`` at its reset state, titled by position and name;
    frames of ``size`` x ``size`` pixels (a pixel agent's ``pixels.size`` shows what it sees)."""
    frames = [
        render_task(spec.env_id, width=size, height=size, **spec.kwargs) for spec in suite.tasks
    ]
    titles = [f"{i}: {spec.name}" for i, spec in enumerate(suite.tasks)]
    return contact_sheet(frames, titles, path, columns)
