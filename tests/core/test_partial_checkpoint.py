"""Checkpoints inside a task (``checkpoint_every_steps``): a run stopped in the middle of a long
task continues it from the last one, not from the task's start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from robotcl.checkpoint import PARTIAL, latest_checkpoint, load_checkpoint
from robotcl.cli import main
from robotcl.config import validate_config
from robotcl.registry import AGENTS, register_strategy
from robotcl.strategies.base import Strategy
from robotcl.study.keys import run_key


@register_strategy("stop_inside_second_task")
class StopInsideSecondTask(Strategy):
    """Records the tasks it is started on; with ``armed``, stops the run (as Ctrl-C does) at
    the first update after step 70 of task 1."""

    name = "stop_inside_second_task"
    armed = False
    started: list[int] = []  # noqa: RUF012  (the test reads it across runs)

    def on_task_start(self, task_id: int) -> None:
        StopInsideSecondTask.started.append(task_id)

    def after_step(self) -> None:
        learner = self.learner
        if StopInsideSecondTask.armed and learner.current_task == 1 and learner.task_steps > 70:
            StopInsideSecondTask.armed = False
            raise KeyboardInterrupt


def run_dir_of(root: Path) -> Path:
    (config,) = root.rglob("config.yaml")
    return config.parent


def test_a_run_stopped_inside_a_task_continues_it_from_its_partial_checkpoint(
    tiny, tmp_path, capsys
):
    StopInsideSecondTask.armed, StopInsideSecondTask.started = True, []
    args = ["run", "quick", *tiny, "strategy=stop_inside_second_task", "checkpoint_every_steps=40"]
    assert main(args) == 130
    run_dir = run_dir_of(tmp_path / "runs")
    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["partial", "task000"]
    assert latest_checkpoint(folder) == folder / PARTIAL
    state = torch.load(folder / PARTIAL / "state.pt", weights_only=False)
    assert state["extra"]["task_steps"] == 40  # the last multiple of 40 before the stop (70)
    config = validate_config(json.loads(json.dumps(_config(run_dir))))
    strategy = StopInsideSecondTask()
    learner, results, _ = load_checkpoint(folder / PARTIAL, AGENTS.get("sac"), "cpu", strategy)
    assert results["completed_tasks"] == 1
    assert learner.num_timesteps == 140 and learner.current_task == 1
    # task 1's own steps (quick resets its buffer) but the 40th: SB3 stores a step's
    # transition after the callback that saved it; the resumed task starts a new episode
    assert learner.replay_buffer.size() == 39
    assert config.checkpoint_every_steps == 40

    assert main(["run", "--resume", str(run_dir), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert said == f"would resume {run_dir} at task 2/2 (T1), from its step 40, 1 task left\n"
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert StopInsideSecondTask.started == [0, 1]  # task 1 was not started again
    assert sorted(p.name for p in folder.iterdir()) == ["task000", "task001"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed_tasks"] == 2
    assert results["resumed_inside_task"] == [[1, 40]]
    assert results["bounds"] == [[0, 100], [100, 200]]
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    # each evaluation once (the one at step 150 was made after the checkpoint: made again)
    assert steps == [0, 50, 100, 100, 150, 200]
    assert results["curves"]["steps"] == steps


def _config(run_dir: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


def _checkpoint(folder: Path, name: str, completed: int) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "state.pt").write_bytes(b"")
    (folder / name / "results.json").write_text(json.dumps({"completed_tasks": completed}))


def test_the_partial_checkpoint_is_the_newest_only_inside_the_task_after_the_last_finished(
    tmp_path,
):
    assert latest_checkpoint(tmp_path) is None
    _checkpoint(tmp_path, PARTIAL, 0)  # inside task 0
    assert latest_checkpoint(tmp_path) == tmp_path / PARTIAL
    _checkpoint(tmp_path, "task000", 1)  # task 0 finished; killed before the partial went
    assert latest_checkpoint(tmp_path) == tmp_path / "task000"
    (tmp_path / PARTIAL / "results.json").write_text(json.dumps({"completed_tasks": 1}))
    assert latest_checkpoint(tmp_path) == tmp_path / PARTIAL  # inside task 1
    (tmp_path / PARTIAL / "results.json").write_text("{torn")
    assert latest_checkpoint(tmp_path) == tmp_path / PARTIAL  # its load says it is corrupt
    (tmp_path / PARTIAL / "state.pt").unlink()  # not complete: never chosen
    assert latest_checkpoint(tmp_path) == tmp_path / "task000"


def test_checkpoints_inside_a_task_are_refused_for_an_agent_that_cannot_resume_one(
    tiny, tmp_path, capsys
):
    args = ["run", "quick", "agent.name=ppo", "agent.n_steps=50", "agent.batch_size=50"]
    args += ["steps_per_task=100"]
    args += ["checkpoint_every_steps=50", tiny[-1]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if not line.startswith("robotcl: warning:")]  # quick's SAC keys
    assert len(err) == 1
    assert err[0].startswith("robotcl: error: checkpoint_every_steps=50: agent 'ppo' cannot")
    assert not (tmp_path / "runs").exists()


def test_the_checkpoint_cadence_is_not_part_of_a_runs_key():
    base = validate_config({"suite": "dclaw10"})
    often = validate_config({"suite": "dclaw10", "checkpoint_every_steps": 10_000})
    assert run_key(base) == run_key(often)
    assert run_key(base) != run_key(validate_config({"suite": "dclaw10", "seed": 1}))
