"""The gap evaluation: experts (cached, flagged), their datasets, the bc agent through the task
loop, the held-out loss matrix, the gap table's arithmetic, and ``robotcl gap`` end to end.

Runs here use a two-task toy suite (aim at +x or at -x) registered in this process, so every
grid runs in-process (workers=0).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from aim_task import SMALL, SUITE

from robotcl.checkpoint import latest_checkpoint
from robotcl.cli import main
from robotcl.commands.experts import Expert, expert_dataset, train_experts
from robotcl.commands.gap import gap, gap_root, recorded_unless_changed
from robotcl.config import load_config, validate_config
from robotcl.errors import UserInputError
from robotcl.experiment import Experiment
from robotcl.metrics import bootstrap_difference, heldout_metrics
from robotcl.outputs import RunDirectory
from robotcl.reporting.gap import gap_summary, gap_table
from robotcl.study.cells import Cell

SAC_ONLY = ("agent.buffer_size", "agent.random_steps", "agent.update_after", "agent.train_freq")
SAC_ONLY += ("agent.gradient_steps",)


def for_bc(args: list[str]) -> list[str]:
    """The toy's overrides less the keys that the bc agent does not take."""
    return [a for a in args if a.partition("=")[0] not in SAC_ONLY]


@pytest.fixture
def aim(tmp_path) -> list[str]:
    suite = tmp_path / "aim.yaml"
    suite.write_text(SUITE)
    return [f"suite={suite}", f"runs_dir={tmp_path / 'runs'}", *SMALL]


def scripted_data(folder: Path, episodes: int = 40) -> None:
    """A perfect expert's data for both tasks: the action is sign * x."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, sign in (("plus", 1.0), ("minus", -1.0)):
        x = rng.uniform(-1, 1, (episodes * 5, 1)).astype(np.float32)
        np.savez(
            folder / f"{name}.npz",
            observations=x,
            actions=sign * x,
            episodes=np.repeat(np.arange(episodes), 5),
        )


# -- experts --------------------------------------------------------------------------------------


def test_experts_are_cached_and_a_second_call_trains_nothing(aim, tmp_path):
    config = load_config(None, aim)
    first = train_experts(config, workers=0)
    assert [e.task for e in first] == ["plus", "minus"]
    assert [e.status for e in first] == ["done", "done"]
    assert all(e.run_dir.parent.parent.name == "aim" for e in first)  # <suite>/<task>/<key>
    assert json.loads((first[0].run_dir / "expert.json").read_text())["task"] == "plus"
    stamps = {e.task: (e.run_dir / "results.json").stat().st_mtime_ns for e in first}
    again = train_experts(config, workers=0)
    assert [e.status for e in again] == ["cached", "cached"]
    assert {e.task: (e.run_dir / "results.json").stat().st_mtime_ns for e in again} == stamps
    assert [e.success for e in again] == [e.success for e in first]
    # other agent settings are another expert; the strategy of the preset is not part of it
    other = load_config(None, [*aim, "agent.learning_rate=0.01"])
    assert train_experts(other, workers=0)[0].run_dir != first[0].run_dir
    same = load_config(None, [*aim, "strategy=ewc"])
    assert [e.status for e in train_experts(same, workers=0)] == ["cached", "cached"]
    # a run of the same settings takes them as its forward-transfer reference
    run_dir = tmp_path / "with-reference"
    assert main(["run", *aim, "reference=experts", f"run_dir={run_dir}"]) == 0
    metrics = json.loads((run_dir / "results.json").read_text())["metrics"]
    assert "fwt_auc" in metrics and len(metrics["reference_auc"][0]) == 2


def test_reference_experts_without_experts_is_one_line(aim, tmp_path, capsys):
    assert main(["run", *aim, "reference=experts", "agent.learning_rate=0.02"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reference=experts: no finished expert of plus" in err[0]
    assert not (tmp_path / "runs").exists()


def test_an_expert_below_its_threshold_is_flagged_in_the_table():
    weak = Expert("minus", Path("/x"), "done", success=0.25, threshold=0.8)
    good = Expert("plus", Path("/y"), "done", success=1.0, threshold=0.8)
    assert weak.flagged and not good.flagged
    assert Expert("t", Path("/z"), "failed").flagged  # no result at all
    summary = {"finetune": _entry({"acc": [0.5]}, {"acc": [0.1]})}
    records = [
        {"task": e.task, "success": e.success, "threshold": e.threshold, "flagged": e.flagged}
        for e in (good, weak)
    ]
    text = gap_table(summary, records)
    assert "minus: 0.25 < 0.8" in text and "plus:" not in text.split("threshold")[1]


def test_an_expert_dataset_has_its_provenance_and_noise_free_targets(aim):
    config = load_config(None, [*aim, "experts.policy=final"])  # best: tests/core/test_keep_best
    expert = train_experts(config, workers=0)[0]
    path = expert_dataset(expert, episodes=3, noise=0.5, seed=0)
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["expert_run"] == str(expert.run_dir) and info["transitions"] == 15
    assert info["noise"] == 0.5 and info["episodes"] == 3 and len(info["sha256"]) == 64
    with np.load(path) as data:
        assert data["observations"].shape == (15, 1)  # the one-hot left out
        assert data["episodes"].tolist() == [e for e in range(3) for _ in range(5)]
        # the targets are the expert's own deterministic actions on those observations
        run = Experiment(validate_config(RunDirectory(expert.run_dir).read_config()))
        run.prepare(latest_checkpoint(expert.run_dir / "checkpoints"))
        obs = np.concatenate([data["observations"], np.ones((15, 1), np.float32)], 1)
        np.testing.assert_allclose(run.learner.act(obs, True), data["actions"], atol=1e-6)
    again = expert_dataset(expert, episodes=3, noise=0.5, seed=0)
    assert again == path and json.loads(again.with_suffix(".json").read_text()) == info


def test_a_dataset_of_successful_episodes_keeps_only_those(aim):
    config = load_config(None, aim)
    (expert, _) = train_experts(config, workers=0)
    path = expert_dataset(expert, episodes=4, noise=0.5, seed=0, successful_only=True)
    info = json.loads(path.with_suffix(".json").read_text())
    assert path.name == "e4-n0.5-s0-ok.npz" and info["successful_only"] is True
    tried = info["rollouts"]
    assert tried > 4  # some failed and were dropped (noise 0.5 on aim's 0.2 tolerance)
    assert info["rollout_success"] * tried == pytest.approx(4)  # it stopped at the 4th success
    with np.load(path) as ok, np.load(expert_dataset(expert, tried, 0.5, 0)) as every:
        assert ok["episodes"].tolist() == [e for e in range(4) for _ in range(5)]
        # the same rollouts (one seeded stream), the failed ones left out, in order
        episodes = [every["observations"][every["episodes"] == e] for e in range(tried)]
        kept = [ok["observations"][ok["episodes"] == e] for e in range(4)]
        it = iter(episodes)
        assert all(any(np.array_equal(k, e) for e in it) for k in kept)


def test_too_few_successful_rollouts_is_one_line_and_writes_no_dataset(aim, monkeypatch):
    import robotcl.commands.experts as experts_module

    (expert, _) = train_experts(load_config(None, aim), workers=0)
    monkeypatch.setattr(experts_module, "TRIES_PER_EPISODE", 1)
    with pytest.raises(UserInputError, match=r"experts.successful_only: the expert of plus"):
        expert_dataset(expert, episodes=5, noise=10.0, seed=0, successful_only=True)
    assert not list((expert.run_dir / "data").glob("*-ok.*"))


def test_successful_only_is_another_gap_and_all_rollouts_keep_their_keys(aim):
    from robotcl.commands.gap import gap_settings
    from robotcl.study.keys import settings_key

    default = load_config(None, aim)
    ok = load_config(None, [*aim, "experts.successful_only=true"])
    assert "successful_only" not in gap_settings(default)["expert_data"]
    assert settings_key(gap_settings(ok)) != settings_key(gap_settings(default))


# -- the bc agent ---------------------------------------------------------------------------------


def test_bc_learns_each_task_from_expert_data_and_keeps_a_heldout_loss_matrix(aim, tmp_path):
    data = tmp_path / "data"
    scripted_data(data)
    run_dir = tmp_path / "bc"
    args = [*for_bc(aim), "agent.name=bc", f"agent.expert_data={data}", "steps_per_task=400"]
    args += ["agent.learning_rate=0.003", "eval.deterministic_episodes=10", "strategy=finetune"]
    assert main(["run", *args, f"run_dir={run_dir}"]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    R = np.array(results["R"]["deterministic"]["success"])
    assert R[0, 0] >= 0.8 and R[1, 1] >= 0.8  # each task learned from its expert's data
    L = np.array(results["L"])  # held-out action MSE, rows: after task i
    assert L.shape == (2, 2) and L[0, 0] < 0.01 and L[1, 1] < 0.01
    assert L[0, 1] > 0.1  # task 1's head untrained after task 0
    metrics = results["metrics"]
    assert metrics["heldout_loss"] == pytest.approx(L[1].mean())
    assert metrics["heldout_loss_increase"] == pytest.approx(L[1, 0] - L[0, 0])
    # a resumed run from the first task's checkpoint ends with the same weights' results
    shutil.rmtree(run_dir / "checkpoints" / "task001")
    (run_dir / "results.json").unlink()
    assert main(["run", "--resume", str(run_dir)]) == 0
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["L"] == results["L"] and resumed["R"] == results["R"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "agent bc learns from expert datasets: set agent.expert_data=DIR"),
        (["agent.expert_data=/nowhere"], "expert data '/nowhere/plus.npz': not found"),
        (["agent.ent_coef=0.3"], "config key 'agent.ent_coef': not used by agent 'bc'"),
    ],
)
def test_bc_input_errors_are_one_line_and_write_nothing(aim, tmp_path, capsys, extra, message):
    assert main(["run", *for_bc(aim), "agent.name=bc", *extra]) == 2
    errors = [e for e in capsys.readouterr().err.splitlines() if "error" in e]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "runs").exists()


def test_bc_refuses_expert_data_of_another_shape(aim, tmp_path, capsys):
    data = tmp_path / "data"
    scripted_data(data)
    x = np.zeros((10, 3), np.float32)
    np.savez(data / "minus.npz", observations=x, actions=np.zeros((10, 1), np.float32))
    assert main(["run", *for_bc(aim), "agent.name=bc", f"agent.expert_data={data}"]) == 2
    err = capsys.readouterr().err
    assert "minus.npz" in err and "observations of 3" in err and "has 1" in err


# -- the gap table ----------------------------------------------------------------------------


def _entry(sl: dict[str, list[float]], rl: dict[str, list[float]]) -> dict:
    """A gap summary entry of made-up runs (through gap_summary's own arithmetic)."""
    return gap_summary(_cells("sl", sl), _cells("rl", rl))["x"]


_ROOT: list[Path] = []


def _cells(side: str, metrics: dict[str, list[float]]) -> list[Cell]:
    root = _ROOT[0] / side
    cells = []
    for seed in range(len(next(iter(metrics.values())))):
        run = root / f"x-s{seed}"
        run.mkdir(parents=True, exist_ok=True)
        values = {k: v[seed] for k, v in metrics.items()}
        L = [[0.1 * (seed + 1), 0.5], [0.3 * (seed + 1), 0.2]] if side == "sl" else None
        results = {"metrics": values, "L": L, "tasks": ["a", "b"], "completed_tasks": 2}
        (run / "results.json").write_text(json.dumps(results))
        cells.append(Cell("x", seed, str(run), "cpu", status="done"))
    return cells


@pytest.fixture(autouse=True)
def _made_up_root(tmp_path):
    _ROOT[:] = [tmp_path / "made-up"]


def test_gap_table_arithmetic_on_made_up_runs():
    sl = {"acc": [0.8, 0.9, 1.0], "bwt": [0.0, -0.1, -0.2], "forgetting": [0.0, 0.1, 0.2]}
    sl |= {"fwt": [0.0, 0.0, 0.0], "memory": [1024.0, 1024.0, 1024.0]}
    rl = {"acc": [0.1, 0.3], "bwt": [-0.5, -0.7], "forgetting": [0.5, 0.7], "fwt": [0.1, 0.3]}
    rl |= {"memory": [2048.0, 4096.0]}
    entry = _entry(sl, rl)
    assert entry["sl_runs"] == 3 and entry["rl_runs"] == 2
    assert entry["sl"]["acc"]["mean"] == pytest.approx(0.9)
    assert entry["rl"]["acc"]["mean"] == pytest.approx(0.2)
    diff = entry["diff"]["acc"]
    assert diff["mean"] == pytest.approx(-0.7)
    # resampling each side: the extremes are 0.1 - 1.0 and 0.3 - 0.8
    assert -0.9 - 1e-9 <= diff["low"] <= diff["mean"] <= diff["high"] <= -0.5 + 1e-9
    assert entry["diff"]["bwt"]["mean"] == pytest.approx(-0.6 + 0.1)
    assert entry["sl_memory"] == 1024.0 and entry["rl_memory"] == 3072.0
    np.testing.assert_allclose(entry["heldout_loss_matrix"], [[0.2, 0.5], [0.6, 0.2]])
    text = gap_table({"x": entry})
    lines = text.splitlines()
    assert any(line.split()[:3] == ["x", "SL", "3"] and "1.0 KiB" in line for line in lines)
    assert any(line.split()[:2] == ["RL-SL", "-0.700"] for line in lines)
    # n beside every interval; below 3 runs no interval at all (two seeds' range is no interval)
    sl_row = next(line for line in lines if line.split()[:2] == ["x", "SL"])
    rl_row = next(line for line in lines if line.split()[:1] == ["RL"])
    assert re.search(r"\+0\.900 \[\+0\.8\d\d, \+0\.9\d\d\] n=3", sl_row)
    assert "+0.200 (n=2)" in rl_row and "[" not in rl_row
    assert "-0.700 (n=2)" in next(line for line in lines if line.split()[:1] == ["RL-SL"])


def test_bootstrap_difference_and_heldout_metrics():
    diff, low, high = bootstrap_difference([1.0, 1.0], [0.25, 0.25])
    assert (diff, low, high) == (0.75, 0.75, 0.75)
    assert all(math.isnan(v) for v in bootstrap_difference([], [1.0]))
    L = np.array([[0.1, 0.9, 0.9], [0.3, 0.1, 0.9], [0.5, 0.2, 0.1]])
    out = heldout_metrics(L)
    assert out["heldout_loss"] == pytest.approx((0.5 + 0.2 + 0.1) / 3)
    assert out["heldout_loss_increase"] == pytest.approx(((0.5 - 0.1) + (0.2 - 0.1)) / 2)


# -- robotcl gap, end to end ----------------------------------------------------------------------


def test_gap_runs_both_sides_and_a_second_call_reuses_every_run(aim, tmp_path, capsys):
    args = ["gap", *aim, "strategies=[finetune,ewc]", "seeds=1", "workers=0", "gap.epochs=5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    root = Path(out.split("gap: ")[1].split()[0])
    record = json.loads((root / "gap.json").read_text())
    sl_grid = Path(record["sl_grid"])
    assert {"gap.txt", "gap.json", "gap.png", "heldout_loss.png", sl_grid.name, "rl"} <= {
        p.name for p in root.iterdir()
    }
    assert set(record["strategies"]) == {"finetune", "ewc"}
    assert record["strategies"]["ewc"]["sl_memory"] > 0  # its Fisher and anchors
    assert set(record["datasets"]) == {"plus", "minus"}
    sl = json.loads((sl_grid / "finetune-s0" / "results.json").read_text())
    assert sl["strategy"] == ["finetune"] and len(sl["L"]) == 2
    rl_config = (root / "rl" / "finetune-s0" / "config.yaml").read_text()
    assert "name: sac" in rl_config and "reference: null" in rl_config  # compare's own cells
    stamps = {p: p.stat().st_mtime_ns for p in root.glob("*/*/results.json")}
    assert len(stamps) == 4
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/*/results.json")} == stamps
    assert "finetune" in capsys.readouterr().out
    # other BC settings: another supervised grid beside the same RL one (trained nothing new)
    assert main([*args[:-1], "gap.epochs=6"]) == 0
    assert {p: p.stat().st_mtime_ns for p in root.glob("rl/*/results.json")} == {
        p: t for p, t in stamps.items() if p.parent.parent.name == "rl"
    }
    assert len(list(root.glob("sl-*/*/results.json"))) == 4
    capsys.readouterr()
    # robotcl report on the gap folder gives its table again
    assert main(["report", str(root)]) == 0
    table = capsys.readouterr().out
    assert (root / "gap.txt").read_text().strip() in table


def test_gap_refuses_orders_and_references(aim):
    with pytest.raises(UserInputError, match="orders"):
        gap(None, [*aim, "orders=random:2"])


def test_experts_command_prints_each_expert_and_its_dataset(aim, capsys):
    assert main(["experts", *aim, "workers=0", "experts.threshold=0.0"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert rows[2][:2] == ["plus", "done"] and rows[3][:2] == ["minus", "done"]
    assert "below" not in out  # threshold 0: nothing flagged
    assert "plus: 30 transitions" in out and "minus: 30 transitions" in out  # 6 episodes of 5
    assert main(["experts", *aim, "workers=0"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines()[2:4]] == ["cached", "cached"]
    assert main(["experts", *aim, "workers=two"]) == 2


def test_the_gap_folder_changes_with_the_settings_of_its_runs_only(aim):
    root = gap_root(load_config(None, aim))
    assert gap_root(load_config(None, [*aim, "seed=3", "torch_threads=2"])) == root
    assert gap_root(load_config(None, [*aim, "strategy=ewc"])) == root  # the grid sets it
    assert gap_root(load_config(None, [*aim, "ewc.coef=5"])) != root
    assert gap_root(load_config(None, [*aim, "gap.epochs=3"])) == root  # its own sl-* grid
    assert gap_root(load_config(None, [*aim, "experts.noise=0.3"])) != root


@pytest.mark.parametrize(
    ("strategies", "message"),
    [
        ("[foo]", "strategy 'foo': unknown name"),
        ("[multitask]", "strategies: multitask: the supervised side's bc agent lacks"),
        ("[ewc,ewc]", "'ewc' is given twice"),
    ],
)
def test_gap_refuses_a_bad_grid_before_any_expert_is_trained(
    aim, tmp_path, capsys, strategies, message
):
    assert main(["gap", *aim, f"strategies={strategies}", "workers=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "runs").exists()


def test_a_gap_record_of_the_same_data_stays_as_committed():
    """A gap run elsewhere (another runs_dir: other expert paths, other dates) that gathers the
    same datasets keeps the committed gap record; other data replaces it."""
    path = Path(__file__).parents[2] / "docs" / "results" / "study" / "gap-c62156d319.json"
    recorded = json.loads(path.read_text())
    made = json.loads(path.read_text())
    for expert in made["experts"]:
        expert["run"] = "/elsewhere/experts/" + expert["task"]
    for dataset in made["datasets"].values():
        dataset["expert_run"], dataset["created"] = "/elsewhere", "2030-01-01 00:00:00"
    assert recorded_unless_changed(recorded, made) is recorded
    assert recorded_unless_changed(None, made) is made
    other = json.loads(json.dumps(made))
    next(iter(other["datasets"].values()))["sha256"] = "0" * 64
    assert recorded_unless_changed(recorded, other) is other
    more_rows = {**made, "rows": made["rows"] + 1}
    assert recorded_unless_changed(recorded, more_rows) is more_rows
