"""Rollout videos: at each chosen task end every task is rendered; the stages side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robotcl.cli import main
from robotcl.videos import gif_bytes, read_gif, side_by_side


def test_a_gif_keeps_its_frames_and_side_by_side_puts_stages_in_columns(tmp_path):
    frames = [np.full((8, 10, 3), 40 * k, np.uint8) for k in (0, 1, 1, 1, 2, 3)]
    path = tmp_path / "a.gif"
    path.write_bytes(gif_bytes(frames, fps=10))
    back = read_gif(path, fps=10)  # a held frame comes back once per time step
    assert len(back) == 6 and back[0].shape == (8, 10, 3)
    assert [int(f[0, 0, 0]) for f in back] == [0, 40, 40, 40, 80, 120]
    video = side_by_side([frames, frames[:2]], ["after T0", "after T1"])
    assert len(video) == 6 and video[0].shape == (8 + 14, 20, 3)  # a title strip over each
    assert (video[5][14:, 10:] == frames[1]).all()  # the shorter column holds its last frame


def test_videos_of_every_task_at_each_stage_in_files_and_tensorboard(tiny, tmp_path, gl_ok):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = [*tiny, "video.enabled=true", "video.size=32", "probe.samples=0", "name=vid"]
    assert main(["run", "quick", *args, "steps_per_task=60", "eval.every_steps=60"]) == 0
    (run_dir,) = (tmp_path / "runs" / "vid").iterdir()
    videos = run_dir / "videos"
    for stage in ("stage00", "stage01"):
        for task in ("T0", "T1"):
            frames = read_gif(videos / stage / f"{task}.gif", fps=10)
            assert len(frames) == 41 and frames[0].shape == (32, 32, 3)  # reset + 40 steps
    final = read_gif(videos / "T0.gif", fps=10)
    assert len(final) == 41 and final[0].shape == (32 + 14, 2 * 32, 3)  # two stages
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert {"video/T0", "video/T1"} <= set(events.Tags()["images"])
    assert len(events.Images("video/T1")) == 2  # one per stage
    assert json.loads((run_dir / "results.json").read_text())["completed_tasks"] == 2


@pytest.mark.parametrize(
    ("items", "culprit"),
    [(["video.stages=[5]"], "video.stages"), (["video.episodes=0"], "video.episodes")],
)
def test_bad_video_settings_are_refused(tmp_path, capsys, items, culprit):
    args = ["run", "quick", "video.enabled=true", *items, f"runs_dir={tmp_path}/r", "--dry-run"]
    assert main(args) == 2
    assert culprit in capsys.readouterr().err
