"""Rollout videos at task ends: every task played by the policy of each stage, side by side.

After training task k (a *stage*), each task of the suite is rolled out with the deterministic
policy and rendered; the frames are kept as ``videos/stageKK/<task>.gif``. The video of a task,
``videos/<task>.gif`` and TensorBoard's ``video/<task>``, puts the stages recorded so far side
by side (one column per stage, titled "after <task>"), so forgetting shows as a column that
stops doing what the one before it did. GIFs are written with Pillow; TensorBoard shows them as
animated images.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from robotcl.outputs import atomic_write_bytes


def rollout_frames(actor: Any, env: Any, episodes: int, seed: int) -> list[np.ndarray]:
    """Frames of ``episodes`` deterministic episodes (the reset frame, then one a step)."""
    frames = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        frames.append(env.render())
        done = False
        while not done:
            action = actor.act(obs[None], deterministic=True)[0]
            obs, _, terminated, truncated, _ = env.step(action)
            frames.append(env.render())
            done = terminated or truncated
    return frames


def gif_bytes(frames: list[np.ndarray], fps: int) -> bytes:
    """An endlessly looping GIF of RGB ``frames``."""
    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8)) for f in frames]
    out = io.BytesIO()
    images[0].save(
        out, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0
    )
    return out.getvalue()


def read_gif(path: Path, fps: int) -> list[np.ndarray]:
    """The RGB frames of a GIF written by :func:`gif_bytes` at ``fps``, one per time step (the
    writer merges identical neighbours into one longer frame; they are repeated back)."""
    step = 1000 // fps
    with Image.open(path) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            repeat = max(1, round(image.info.get("duration", step) / step))
            frames += [np.asarray(image.convert("RGB"))] * repeat
    return frames


def side_by_side(columns: list[list[np.ndarray]], titles: list[str]) -> list[np.ndarray]:
    """One video of ``columns`` next to each other, each under its title; shorter columns hold
    their last frame."""
    length = max(len(c) for c in columns)
    out = []
    for t in range(length):
        tiles = []
        for frames, title in zip(columns, titles, strict=True):
            frame = frames[min(t, len(frames) - 1)]
            tile = Image.new("RGB", (frame.shape[1], frame.shape[0] + 14), "white")
            tile.paste(Image.fromarray(frame), (0, 14))
            ImageDraw.Draw(tile).text((2, 1), title, fill="black")
            tiles.append(np.asarray(tile))
        out.append(np.concatenate(tiles, axis=1))
    return out


class VideoRecorder:
    """Records the videos of a run (``video.*`` settings) into ``folder``."""

    def __init__(self, suite: Any, settings: Any, seed: int, folder: Path) -> None:
        self.suite, self.settings, self.seed, self.folder = suite, settings, seed, Path(folder)

    def wants(self, stage: int) -> bool:
        stages = self.settings.stages
        last = len(self.suite) - 1
        return (
            stages == "all"
            or (stages == "last" and stage == last)
            or (isinstance(stages, list) and stage in stages)
        )

    def record(self, actor: Any, strategy: Any, stage: int, step: int, writer: Any = None) -> None:
        """After training ``stage``: roll out every task, write its stage GIF and its
        side-by-side video of the stages so far (and to TensorBoard through ``writer``)."""
        if not self.wants(stage):
            return
        names = self.suite.task_names
        for task, name in enumerate(names):
            env = self.suite.make_env(task, render_mode="rgb_array", size=self.settings.size)
            try:
                with strategy.acting(task):
                    frames = rollout_frames(
                        actor, env, self.settings.episodes, self.seed + 7919 * task
                    )
            finally:
                env.close()
            atomic_write_bytes(self.stage_path(stage, name), gif_bytes(frames, self.settings.fps))
            done = [s for s in range(stage + 1) if self.stage_path(s, name).is_file()]
            video = side_by_side(
                [read_gif(self.stage_path(s, name), self.settings.fps) for s in done],
                [f"after {names[s]}" for s in done],
            )
            data = gif_bytes(video, self.settings.fps)
            atomic_write_bytes(self.folder / f"{name}.gif", data)
            if writer is not None:
                tensorboard_gif(writer, f"video/{name}", data, video[0].shape, step)

    def stage_path(self, stage: int, name: str) -> Path:
        return self.folder / f"stage{stage:02d}" / f"{name}.gif"


def tensorboard_gif(writer: Any, tag: str, data: bytes, shape: tuple, step: int) -> None:
    """An animated GIF as a TensorBoard image summary (what ``add_video`` writes, without
    moviepy)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    image = Summary.Image(
        height=int(shape[0]), width=int(shape[1]), colorspace=3, encoded_image_string=data
    )
    summary = Summary(value=[Summary.Value(tag=tag, image=image)])
    writer._get_file_writer().add_summary(summary, step)
