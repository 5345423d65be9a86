"""The list and show commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from robotcl.cli import main


def test_list_names_suites_tasks_strategies_and_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dclaw10: 10 tasks: T0 T1 T2 T3 T4 T5 T6 T7 T8 T9" in out
    assert "finetune" in out and "quick" in out and "corl-gap" in out and "sac" in out


def test_show_writes_a_contact_sheet_of_the_suite(tmp_path, gl_ok, monkeypatch):
    # show sets MUJOCO_GL=egl when unset; keep that from leaking into later tests' workers
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    out = tmp_path / "sheet.png"
    assert main(["show", "dclaw10", "--order", "c", "--out", str(out)]) == 0
    from matplotlib.image import imread

    image = imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 1000 and image.std() > 0.05


@pytest.mark.parametrize("size", ["5", "big", "2000"])
def test_show_a_frame_size_out_of_range_is_a_one_line_error(tmp_path, capsys, size):
    assert main(["show", "dclaw10", "--size", size, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size" in err[0] and repr(size) in err[0]
    assert not (tmp_path / "x.png").exists()


def test_show_unknown_suite_is_a_one_line_error(tmp_path, capsys):
    assert main(["show", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "suite 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["run", "corl-gap", "seed=7", f"runs_dir={runs}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "seed: 7" in out and "steps_per_task: 80000" in out and "ent_coef: 0.2" in out
    assert not runs.exists()


def test_run_help_lists_every_key_with_its_default_including_strategies(capsys):
    import pytest

    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "agent.batch_size" in out and "(default 128)" in out
    assert "ewc.coef" in out and "packnet.retrain_steps" in out


def test_a_run_folder_names_a_learner_other_than_sac_and_the_run_directory_is_said_once(
    tiny, capsys
):
    assert main(["run", "quick", *tiny, "agent.name=td3", "probe.samples=0"]) == 0
    captured = capsys.readouterr()
    said = [line for line in (captured.out + captured.err).splitlines() if "run directory" in line]
    assert len(said) == 1
    (run,) = (Path(tiny[-1].partition("=")[2]) / "quick").iterdir()
    assert run.name.startswith("dclaw10-td3-finetune-s0-")
