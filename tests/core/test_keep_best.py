"""``keep_best``: the policy at each task's best evaluation is kept beside the run's checkpoints,
it is the policy that scored that evaluation, and keeping it changes nothing the run learns; the
experts use it with ``experts.policy=best``, and their datasets are made from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from aim_task import SMALL, SUITE

from robotcl.checkpoint import best_folder, best_score
from robotcl.cli import main
from robotcl.commands.experts import expert_dataset, train_experts
from robotcl.commands.gap import gap_settings
from robotcl.config import load_config, validate_config
from robotcl.experiment import Experiment
from robotcl.outputs import RunDirectory
from robotcl.study.keys import run_key, settings_key
from robotcl.study.references import expert_config

EVERY = ["eval.every_steps=20"]


@pytest.fixture
def aim(tmp_path) -> list[str]:
    suite = tmp_path / "aim.yaml"
    suite.write_text(SUITE)
    return [f"suite={suite}", f"runs_dir={tmp_path / 'runs'}", *SMALL, *EVERY]


def evaluations(run_dir: Path) -> list[dict]:
    text = (run_dir / "evaluations.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def rescore(run_dir: Path, checkpoint: Path) -> list[tuple[float, float]]:
    """Every task's deterministic (success, return) of the policy in ``checkpoint``."""
    experiment = Experiment(validate_config(RunDirectory(run_dir).read_config()))
    experiment.prepare(checkpoint)
    scores = experiment.evaluator.evaluate(experiment.learner, experiment.strategy)
    experiment.evaluator.close()
    return [(s.success, s.ret) for s in scores["deterministic"]]


def test_the_kept_policy_is_the_one_that_scored_each_tasks_best_evaluation(aim, tmp_path):
    kept, plain = tmp_path / "kept", tmp_path / "plain"
    assert main(["run", *aim, "keep_best=true", f"run_dir={kept}"]) == 0
    assert main(["run", *aim, f"run_dir={plain}"]) == 0
    results = json.loads((kept / "results.json").read_text())
    records = evaluations(kept)
    for task, name in enumerate(["plus", "minus"]):
        own = [r for r in records if r["training_task"] == task]
        assert len(own) >= 5  # the task's start, every 20 steps, its end
        scored = [
            (r["deterministic"][name]["success"], r["deterministic"][name]["return"]) for r in own
        ]
        best = max(scored)  # success first, then return
        first = own[scored.index(best)]  # the earliest of equal evaluations
        assert best_score(kept / "checkpoints", task) == {
            "step": first["step"],
            "success": best[0],
            "return": best[1],
        }
        assert results["best"][name] == best_score(kept / "checkpoints", task)
        # the folder holds that policy: evaluated again, it scores exactly that evaluation
        again = rescore(kept, best_folder(kept / "checkpoints", task))
        assert again[task] == pytest.approx(best, abs=1e-9)
    assert not (best_folder(kept / "checkpoints", 0) / "replay_buffer.pkl").exists()
    # keeping it draws no random number and takes no step: the same curves as without it
    assert json.loads((plain / "results.json").read_text())["curves"] == results["curves"]
    assert not any(p.name.startswith("best") for p in (plain / "checkpoints").iterdir())


def test_keep_best_enters_a_key_only_when_set(aim):
    off = load_config(None, aim)
    assert run_key(off) == run_key(validate_config({**off.model_dump(), "keep_best": False}))
    assert run_key(validate_config({**off.model_dump(), "keep_best": True})) != run_key(off)


def test_experts_keep_their_best_policy_and_clone_it(aim):
    config = load_config(None, [*aim, "experts.policy=best"])
    (expert, _) = train_experts(config, workers=0)
    checkpoints = expert.run_dir / "checkpoints"
    best = best_score(checkpoints, 0)
    assert best is not None and expert.success == best["success"]
    path = expert_dataset(expert, episodes=3, noise=0.0, seed=0)
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["expert_policy"] == f"best (step {best['step']})"
    # its targets are the best policy's actions (not the final one's, where they differ)
    experiment = Experiment(validate_config(RunDirectory(expert.run_dir).read_config()))
    experiment.prepare(best_folder(checkpoints, 0))
    with np.load(path) as data:
        obs = np.concatenate([data["observations"], np.ones((15, 1), np.float32)], 1)
        np.testing.assert_allclose(experiment.learner.act(obs, True), data["actions"], atol=1e-6)
    experiment.evaluator.close()
    # final experts are other runs, other datasets, another gap
    final = load_config(None, aim)  # the default
    (last, _) = train_experts(final, workers=0)
    assert last.run_dir != expert.run_dir and best_score(last.run_dir / "checkpoints", 0) is None
    data = expert_dataset(last, episodes=3, noise=0.0, seed=0)
    assert json.loads(data.with_suffix(".json").read_text())["expert_policy"] == "final"
    assert settings_key(gap_settings(final)) != settings_key(gap_settings(config))
    assert expert_config(final, "plus", None)["keep_best"] is False
