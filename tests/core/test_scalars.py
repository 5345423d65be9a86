"""Training scalars outlive the event files: a run leaves scalars.json (its train/ curves,
thinned, kilobytes), and `robotcl plot --scalars` draws them from it or from tb/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from robotcl.cli import main
from robotcl.config import load_config
from robotcl.experiment import run
from robotcl.scalars import SCALARS_FILE, load_scalars, thin


def test_thinning_keeps_the_ends_and_spaces_the_rest_evenly():
    points = [[k, float(k)] for k in range(1001)]
    kept = thin(points, 11)
    assert [p[0] for p in kept] == list(range(0, 1001, 100))
    assert thin(points[:5], 11) == points[:5]


def test_a_run_leaves_its_training_curves_small_and_plot_draws_them(tiny, tmp_path, capsys):
    items = [
        "agent.encoder.type=mlp",
        "agent.encoder.feature_dim=16",
        "agent.encoder.objective=curl",
    ]
    run_dir, _ = run(load_config("quick", [*tiny, *items]))
    path = Path(run_dir.path) / SCALARS_FILE
    scalars = json.loads(path.read_text())
    assert path.stat().st_size < 100_000
    loss = scalars["train/ssl/curl/loss"]
    assert len(loss) >= 2 and all(a[0] < b[0] for a, b in zip(loss, loss[1:], strict=False))
    assert all(tag.startswith("train/") for tag in scalars)
    # the same curves from the event files of a run without scalars.json
    copy = tmp_path / "copy"
    shutil.copytree(run_dir.path, copy)
    (copy / SCALARS_FILE).unlink()
    assert load_scalars(copy)["train/ssl/curl/loss"] == loss
    out = tmp_path / "ssl.png"
    argv = ["plot", str(run_dir.path), str(copy), "--scalars", "train/ssl/*", "--out", str(out)]
    assert main([*argv, "--labels", "record", "events"]) == 0 and out.stat().st_size > 5000
    assert main([*argv[:-2], "--out", str(tmp_path / "x.png"), "--labels", "one"]) == 2
    assert "--labels: 1 labels for 2 runs" in capsys.readouterr().err
    assert (
        main(["plot", str(copy), "--scalars", "train/nope", "--out", str(tmp_path / "y.png")]) == 2
    )
    assert "no run logged train/nope" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
