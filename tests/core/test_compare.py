"""robotcl compare: the grid, its comparison, and failed runs that lose nothing else."""

from __future__ import annotations

import json

import pytest

from robotcl.cli import main
from robotcl.compare import parse_grid
from robotcl.errors import UserInputError


def test_grid_compares_strategies_and_reports_a_failed_run(tiny, tmp_path, capsys):
    args = [
        "compare",
        "quick",
        *tiny,
        "strategies=[finetune,mas]",
        "seeds=2",
        "workers=1",  # worker processes, as on a real machine
        "mas.groups=[critic_trunk]",  # makes every mas run fail at set-up, inside the worker
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    root = next((tmp_path / "runs").rglob("comparison.json")).parent
    summary = json.loads((root / "comparison.json").read_text())
    runs = {(r["label"], r["seed"]): r for r in summary["runs"]}
    assert set(runs) == {("finetune", 0), ("finetune", 1), ("mas", 0), ("mas", 1)}
    assert runs[("finetune", 1)]["error"] is None and "mas.groups" in runs[("mas", 0)]["error"]
    assert summary["metrics"]["finetune"]["acc"]["n"] == 2  # both seeds made it into the table
    assert (root / "finetune-s1" / "results.json").is_file()
    assert (root / "mas-s0" / "error.txt").read_text().startswith("Traceback")
    assert (root / "final_success.png").stat().st_size > 0 and (root / "curves.png").is_file()
    assert (root / "return_curves.png").is_file()
    assert "failed runs" in out and "mas seed 0" in out
    assert list((root / "tb").glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    ("items", "culprit"),
    [(["seeds=0"], "seeds"), (["strategies=7"], "strategies"), (["workers=-1"], "workers")],
)
def test_bad_grid_keys_name_the_culprit(items, culprit):
    with pytest.raises(UserInputError, match=culprit):
        parse_grid(items)


def test_bad_strategy_in_grid_stops_before_anything_runs(tiny, tmp_path, capsys):
    assert main(["compare", "quick", *tiny, "strategies=[finetune,nope]"]) == 2
    assert "strategy 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_runs_spread_over_every_gpu_and_workers_default_to_one_per_gpu(monkeypatch):
    import torch

    from robotcl import compare
    from robotcl.config import load_config

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    auto = load_config("quick")
    assert compare._devices(auto, 5) == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert compare._default_workers() == 3
    cpu = load_config("quick", ["device=cpu"])
    assert compare._devices(cpu, 2) == ["cpu", "cpu"]  # an explicit device is kept
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert compare._default_workers() == 1 and compare._devices(auto, 2) == ["auto", "auto"]
