"""The task loop end to end through the CLI: outputs, hooks, bad input, resume, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from robotcl.cli import main
from robotcl.config import load_config
from robotcl.experiment import run
from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy


def only_run_dir(root: Path) -> Path:
    dirs = [p.parent for p in root.rglob("config.yaml")]
    assert len(dirs) == 1
    return dirs[0]


def test_two_task_cli_run_writes_results_and_tensorboard(tiny, tmp_path, capsys):
    assert main(["run", "quick", *tiny]) == 0
    run_dir = only_run_dir(tmp_path / "runs")
    assert "finetune" in capsys.readouterr().out
    results = json.loads((run_dir / "results.json").read_text())
    R = np.array(results["R"]["stochastic"]["success"])
    assert R.shape == (2, 2) and ((R >= 0) & (R <= 1)).all()
    # task 1's true start (after on_task_start) is evaluated at the step that ends task 0
    assert results["curves"]["steps"] == [0, 50, 100, 100, 150, 200]
    assert results["curves"]["training_task"] == [0, 0, 0, 1, 1, 1]
    assert results["bounds"] == [[0, 100], [100, 200]]
    assert {"acc", "bwt", "forgetting", "fwt"} <= set(results["metrics"])
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [0, 50, 100, 100, 150, 200]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["task000", "task001"]

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"eval/T0/success", "eval/T1/return", "train/critic_loss", "cl/acc"} <= scalars
    assert [e.step for e in events.Scalars("eval/T1/return")] == [0, 50, 100, 150, 200]
    assert "cl/success_matrix" in events.Tags()["images"]


class Recorder(Strategy):
    """Records every hook call with its task id."""

    name = "recorder"
    calls: list = []

    def setup(self, learner, suite):
        super().setup(learner, suite)
        self.calls.append(("setup", len(suite)))

    def on_task_start(self, task_id):
        self.calls.append(("start", task_id))

    def on_task_end(self, task_id, data):
        self.calls.append(("end", task_id, data.task_id, data.buffer.size()))

    def sample(self, batch, task_id):
        self.calls.append(("sample", task_id))
        return batch

    def penalty(self, task_id):
        self.calls.append(("penalty", task_id))
        return None

    def adjust_gradients(self, task_id):
        self.calls.append(("adjust", task_id))

    def after_step(self):
        self.calls.append(("after",))

    def acting(self, task_id):
        self.calls.append(("acting", task_id))
        return super().acting(task_id)


register_strategy("recorder")(Recorder)


def test_hooks_are_called_in_order_with_task_ids(tiny):
    Recorder.calls = []
    run(load_config("quick", [*tiny, "strategy=recorder", "probe.samples=0"]))
    calls = Recorder.calls
    assert calls[0] == ("setup", 2)
    starts = [i for i, c in enumerate(calls) if c[0] == "start"]
    ends = [i for i, c in enumerate(calls) if c[0] == "end"]
    assert [calls[i] for i in ends] == [("end", 0, 0, 100), ("end", 1, 1, 100)]
    for task, (s, e) in enumerate(zip(starts, ends, strict=True)):
        inside = [c for c in calls[s + 1 : e] if c[0] != "acting"]
        # one update per step from step 50 to 100: sample, penalty, adjust, after in that order
        assert inside == [("sample", task), ("penalty", task), ("adjust", task), ("after",)] * 51
    acting = [c[1] for c in calls if c[0] == "acting"]
    assert acting == [0, 1] * 6  # every evaluation visits every task in its acting context


@pytest.mark.parametrize(
    "args",
    [
        ["run", "quick", "agent.batch_size=abc"],
        ["run", "no-such-preset"],
        ["run", "quick", "suite=nope"],
        ["run", "quick", "tasks=[T3,T99]"],
        ["run", "quick", "strategy=[finetune,nope]"],
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(args, tmp_path, capsys):
    assert main([*args, f"runs_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robotcl: error: ") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_existing_run_directory_is_never_overwritten(tiny, tmp_path, capsys):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    assert main(["run", "quick", *tiny, f"run_dir={target}"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (target / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


class CrashOnce(Strategy):
    """Simulates a run killed at the start of the second task (once)."""

    name = "crash_once"
    crashed = False

    def on_task_start(self, task_id):
        if task_id == 1 and not CrashOnce.crashed:
            CrashOnce.crashed = True
            raise KeyboardInterrupt


register_strategy("crash_once")(CrashOnce)


@pytest.mark.parametrize(
    "strategy",
    [
        "crash_once",
        "[progressive,crash_once]",  # a grown network must load back from the checkpoint
        "[packnet,crash_once]",
        "[ewc,crash_once]",
    ],
)
def test_resume_continues_from_last_finished_task_and_matches_uninterrupted(
    tiny, tmp_path, strategy
):
    tiny = [
        *tiny,
        f"strategy={strategy}",
        "packnet.retrain_steps=5",
        "ewc.fisher_batches=1",
        "ewc.fisher_batch_size=16",
    ]
    CrashOnce.crashed = True  # the uninterrupted reference run
    _, reference = run(load_config("quick", [*tiny, "name=straight"]))
    CrashOnce.crashed = False
    assert main(["run", "quick", *tiny, "name=killed"]) == 130
    run_dir = only_run_dir(tmp_path / "runs" / "killed")
    partial = json.loads((run_dir / "results.json").read_text())
    assert partial["completed_tasks"] == 1
    assert main(["run", "--resume", str(run_dir)]) == 0
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["completed_tasks"] == 2
    assert resumed["curves"]["steps"] == reference["curves"]["steps"]
    assert resumed["R"] == reference["R"]
    steps = [json.loads(ln)["step"] for ln in (run_dir / "evaluations.jsonl").open()]
    assert steps == [0, 50, 100, 100, 150, 200]


def test_report_and_plot_put_runs_side_by_side(tiny, tmp_path, capsys):
    for seed in (0, 1):
        assert main(["run", "quick", *tiny, f"seed={seed}"]) == 0
    runs = sorted(str(p.parent) for p in (tmp_path / "runs").rglob("results.json"))
    capsys.readouterr()
    assert main(["report", *runs]) == 0
    out = capsys.readouterr().out
    assert "-s0-" in out and "-s1-" in out and "90% bootstrap interval" in out
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    png = tmp_path / "curves.png"
    assert main(["plot", *runs, "--metric", "return", "--out", str(png)]) == 0
    from matplotlib.image import imread

    assert imread(png).std() > 0.01  # a drawn figure, not a blank canvas


def test_plot_draws_a_run_that_has_not_finished_from_its_evaluations(tiny, tmp_path, capsys):
    from robotcl.reporting.runs import read_curves

    assert main(["run", "quick", *tiny, "name=whole"]) == 0
    run_dir = only_run_dir(tmp_path / "runs" / "whole")
    whole = json.loads((run_dir / "results.json").read_text())
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    # stopped inside the second task: the last results.json is the first task's checkpoint's,
    # the evaluations go on, and the kill tore the last line
    cut = {
        k: {m: v[:3] for m, v in c.items()} if isinstance(c, dict) else c[:3]
        for k, c in whole["curves"].items()
    }
    (run_dir / "results.json").write_text(json.dumps({**whole, "curves": cut}))
    (run_dir / "evaluations.jsonl").write_text("\n".join([*lines[:-1], lines[-1][:9]]))
    drawn = read_curves(run_dir)
    assert drawn["tasks"] == whole["tasks"]
    assert drawn["curves"]["steps"] == whole["curves"]["steps"][:-1]
    for mode in ("deterministic", "stochastic"):
        if mode in whole["curves"]:
            assert drawn["curves"][mode]["return"] == whole["curves"][mode]["return"][:-1]
    assert [lo for lo, _ in drawn["bounds"]] == [lo for lo, _ in whole["bounds"]]
    png = tmp_path / "part.png"
    assert main(["plot", str(run_dir), "--metric", "return", "--out", str(png)]) == 0
    # a finished run is drawn from its results; a corrupt line inside the log is one line
    (run_dir / "results.json").unlink()
    (run_dir / "evaluations.jsonl").write_text("\n".join([lines[0], "{oops", lines[1]]))
    capsys.readouterr()
    assert main(["plot", str(run_dir), "--out", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evaluations.jsonl line 2 is corrupt" in err


def test_runs_started_together_get_their_own_directories(tmp_path):
    from robotcl.outputs import RunDirectory

    config = load_config("quick", [f"runs_dir={tmp_path}"])
    paths = {RunDirectory.create(config).path for _ in range(3)}
    assert len(paths) == 3 and all(p.is_dir() for p in paths)


def test_resume_refuses_missing_or_corrupt_runs(tiny, tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "nowhere': not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["run", "--resume", str(tmp_path / "empty")]) == 2
    assert "has no config.yaml" in capsys.readouterr().err
    assert main(["run", "quick", *tiny, "num_tasks=1", "name=one"]) == 0
    run_dir = only_run_dir(tmp_path / "runs" / "one")
    state = run_dir / "checkpoints" / "task000" / "state.pt"
    state.write_bytes(b"not a checkpoint")
    unfinished = {**json.loads((run_dir / "results.json").read_text()), "metrics": {}}
    (run_dir / "results.json").write_text(json.dumps(unfinished))  # a finished run is not resumed
    results_before = (run_dir / "results.json").read_text()
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "task000" in err and "cannot be read" in err and err.count("\n") == 1
    assert (run_dir / "results.json").read_text() == results_before  # nothing overwritten
    (run_dir / "results.json").write_text("{truncated")
    assert main(["report", str(run_dir)]) == 2
    assert "corrupt" in capsys.readouterr().err
