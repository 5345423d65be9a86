"""robotcl compare: the grid, its comparison, and failed runs that lose nothing else."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robotcl.cli import main
from robotcl.errors import UserInputError
from robotcl.registry import register_strategy
from robotcl.study.grid import parse_grid

PLUGIN = """
import os

from robotcl.strategies import Strategy


class Crash(Strategy):
    \"\"\"Kills its own process at the start of task 1 of seed 1: a lost worker.\"\"\"

    name = "crash_seed1"

    def on_task_start(self, task_id):
        if task_id == 1 and self.learner.seed == 1:
            os._exit(9)


class DieOnce(Strategy):
    \"\"\"Logs each task start to $DIE_ONCE_LOG; the first start of task 1 kills its process.\"\"\"

    name = "die_once"

    def on_task_start(self, task_id):
        log = os.environ["DIE_ONCE_LOG"]
        first = not os.path.exists(log) or str(task_id) not in open(log).read().split()
        with open(log, "a") as f:
            f.write(f"{task_id}\\n")
        if task_id == 1 and first:
            os._exit(9)
"""


@pytest.fixture
def crash_plugin(tmp_path, monkeypatch):
    """The strategy crash_seed1, which spawned worker processes find by a real entry point."""
    root = tmp_path / "plugin"
    (root / "crashplug").mkdir(parents=True)
    (root / "crashplug" / "__init__.py").write_text(PLUGIN)
    dist = root / "crashplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crashplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[robotcl.strategies]\ncrash_seed1 = crashplug:Crash\ndie_once = crashplug:DieOnce\n"
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    import crashplug

    register_strategy("crash_seed1")(crashplug.Crash)  # this process loaded its entry points
    register_strategy("die_once")(crashplug.DieOnce)


def test_a_lost_worker_fails_only_its_own_run_and_compare_exits_nonzero(
    tiny, tmp_path, capsys, crash_plugin
):
    args = [
        "compare",
        "quick",
        *tiny,
        "strategies=[finetune,crash_seed1]",
        "seeds=2",
        "workers=2",  # worker processes, as on a real machine
    ]
    assert main(args) == 1
    captured = capsys.readouterr()
    root = next((tmp_path / "runs").rglob("comparison.json")).parent
    summary = json.loads((root / "comparison.json").read_text())
    runs = {(r["label"], r["seed"]): r for r in summary["runs"]}
    assert runs[("crash_seed1", 1)]["status"] == "failed"
    assert "worker process died (exit code 9)" in runs[("crash_seed1", 1)]["error"]
    assert (root / "crash_seed1-s1" / "error.txt").is_file()  # the file the table names
    for key in [("finetune", 0), ("finetune", 1), ("crash_seed1", 0)]:
        assert runs[key]["status"] == "done" and runs[key]["error"] is None
    assert summary["metrics"]["finetune"]["acc"]["n"] == 2  # both seeds made it into the table
    assert summary["metrics"]["crash_seed1"]["acc"]["n"] == 1
    assert (root / "final_success.png").stat().st_size > 0 and (root / "curves.png").is_file()
    assert (root / "return_curves.png").is_file()
    assert "failed runs" in captured.out and "crash_seed1 seed 1" in captured.out
    assert "1 run(s) failed" in captured.err
    assert "robotcl: 2 run(s) at a time on the CPU: workers=2" in captured.err
    assert list((root / "tb").glob("events.out.tfevents.*"))


def test_a_strategy_that_cannot_serve_the_learner_stops_the_grid_before_it_starts(
    tiny, tmp_path, capsys
):
    args = ["compare", "quick", *tiny, "strategies=[finetune,mas]", "mas.groups=[critic_trunk]"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "mas.groups" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_seed_lists_extension_and_grids_combined_by_report(tiny, tmp_path, capsys):
    base = ["compare", "quick", *tiny, "strategies=[finetune]", "workers=0", "torch_threads=1"]
    assert main([*base, "seeds=[0]", "name=first"]) == 0
    assert main([*base, "seeds=[1]", "name=second"]) == 0
    first = next((tmp_path / "runs" / "first").glob("compare-*"))
    second = next((tmp_path / "runs" / "second").glob("compare-*"))
    capsys.readouterr()
    assert main(["report", str(first), str(second)]) == 0
    combined = capsys.readouterr().out
    assert "finetune  2 " in combined  # one strategy, two runs
    # the first grid extended by seed 1 is the same comparison
    assert main(["compare", "--resume", str(first), "seeds=[0,1]"]) == 0
    extended = json.loads((first / "comparison.json").read_text())
    assert [(r["seed"], r["status"]) for r in extended["runs"]] == [(0, "done"), (1, "done")]
    assert (first / "comparison.txt").read_text().strip() == combined.strip()
    one = json.loads((first / "finetune-s1" / "results.json").read_text())
    two = json.loads((second / "finetune-s1" / "results.json").read_text())
    assert one["R"] == two["R"]


def test_seeds_list_and_seed_conflict():
    grid, rest = parse_grid(["seeds=[3,4]", "eval.episodes=2"])
    assert grid["seeds"] == [3, 4] and rest == ["eval.episodes=2"]
    assert parse_grid(["seeds=3"])[0]["seeds"] == [0, 1, 2]
    assert parse_grid(["seed=7"])[0]["seeds"] == [7]  # one seed alone is a one-seed grid
    with pytest.raises(UserInputError, match="seed=1: conflicts with seeds="):
        parse_grid(["seeds=3", "seed=1"])
    with pytest.raises(UserInputError, match="seeds"):
        parse_grid(["seeds=[1"])
    with pytest.raises(UserInputError, match="seeds"):
        parse_grid(["seeds=[1,1]"])


def test_sigterm_stops_every_run_and_the_grid_resumes_to_the_same_numbers(tiny, tmp_path):
    items = [
        "quick",
        *[t for t in tiny if not t.startswith(("steps_per_task", "runs_dir"))],
        "steps_per_task=400",
        "torch_threads=1",
        "strategies=[finetune,l2]",
        "seeds=1",
    ]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    command = [sys.executable, "-m", "robotcl.cli", "compare", *items, "workers=2"]
    stopped = tmp_path / "stopped"
    proc = subprocess.Popen(
        [*command, f"runs_dir={stopped}"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not list(stopped.rglob("task000/state.pt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    children = _children(proc.pid)
    assert len(children) >= 2  # the two runs
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "stopped runs" in err and "finetune seed 0" in err and "l2 seed 0" in err
    time.sleep(1)
    assert not [pid for pid in children if _alive(pid)]  # no worker left behind
    root = next(stopped.rglob("grid.json")).parent
    assert main(["compare", "--resume", str(root), "workers=0"]) == 0
    straight = tmp_path / "straight"
    assert main(["compare", *items, "workers=0", f"runs_dir={straight}"]) == 0
    resumed = json.loads((root / "comparison.json").read_text())["metrics"]
    reference = json.loads(next(straight.rglob("comparison.json")).read_text())["metrics"]
    assert resumed == reference


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("items", "culprit"),
    [
        (["seeds=0"], "seeds"),
        (["strategies=7"], "strategies"),
        (["workers=-1"], "workers"),
        (["seeds=[1"], "seeds"),
        (["seeds=[0,0]"], "seeds"),
        (["strategies=[finetune,finetune]"], "'finetune' is given twice"),
        (["strategies=[finetune,[ewc,ewc]]"], "ewc\\+ewc: composes a strategy with itself"),
    ],
)
def test_bad_grid_keys_name_the_culprit(items, culprit):
    with pytest.raises(UserInputError, match=culprit):
        parse_grid(items)


def test_bad_strategy_in_grid_stops_before_anything_runs(tiny, tmp_path, capsys):
    assert main(["compare", "quick", *tiny, "strategies=[finetune,nope]"]) == 2
    assert "strategy 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_ray_grid_resumes_a_run_whose_worker_was_lost_and_lists_one_that_keeps_dying(
    tiny, tmp_path, capsys, crash_plugin, monkeypatch
):
    ray = pytest.importorskip("ray")
    log = tmp_path / "starts.txt"
    monkeypatch.setenv("DIE_ONCE_LOG", str(log))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a local Ray instance
    try:
        grid = ["strategies=[die_once,crash_seed1]", "seeds=[1]", "executor=ray"]
        assert main(["compare", "quick", *tiny, *grid]) == 1
    finally:
        ray.shutdown()
    captured = capsys.readouterr()
    assert "robotcl: 2 run(s) sent to Ray (2 CPU(s))" in captured.err
    root = next((tmp_path / "runs").rglob("comparison.json")).parent
    runs = {r["label"]: r for r in json.loads((root / "comparison.json").read_text())["runs"]}
    assert runs["die_once"]["status"] == "done"
    assert log.read_text().split() == ["0", "1", "1"]  # resumed at task 1, task 0 not redone
    assert runs["crash_seed1"]["status"] == "failed"
    assert (
        "Ray worker lost" in runs["crash_seed1"]["error"]
        and "2 retries" in runs["crash_seed1"]["error"]
    )
    assert (root / "crash_seed1-s1" / "error.txt").is_file()
    manifest = json.loads((root / "grid.json").read_text())
    assert manifest["executor"] == "ray"  # compare --resume keeps the executor


def test_executor_settings_are_checked_before_anything_runs(tiny, tmp_path, capsys):
    assert main(["compare", "quick", *tiny, "executor=slurm"]) == 2
    assert "executor: unknown executor 'slurm'; local or ray" in capsys.readouterr().err
    assert main(["compare", "quick", *tiny, "ray_address=auto"]) == 2
    assert "ray_address: is used by executor=ray only" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_two_grids_started_in_the_same_second_each_get_a_folder(tiny, tmp_path, monkeypatch):
    """Two `robotcl compare` started in one second (two cores, two cells) once collided on
    compare-<time> and the second died with a traceback; it now takes compare-<time>~2."""
    import robotcl.study.grid as grid_module

    monkeypatch.setattr(grid_module.time, "strftime", lambda fmt, *a: "20260101-000000")
    base = ["compare", "quick", *tiny, "strategies=[finetune]", "workers=0", "torch_threads=1"]
    assert main([*base, "seeds=[0]"]) == 0
    assert main([*base, "seeds=[1]"]) == 0
    first = tmp_path / "runs" / "quick" / "compare-20260101-000000"
    second = first.with_name(first.name + "~2")
    assert sorted(p.name for p in first.iterdir() if p.name.startswith("fine")) == ["finetune-s0"]
    assert sorted(p.name for p in second.iterdir() if p.name.startswith("fine")) == ["finetune-s1"]
    runs = json.loads((second / "comparison.json").read_text())["runs"]
    assert [(r["seed"], r["status"]) for r in runs] == [(1, "done")]
    assert main(["compare", "--resume", str(second)]) == 0  # its manifest names its own folder


def test_a_resume_that_names_seeds_leaves_the_other_stopped_cells_as_they_are(
    tiny, tmp_path, capsys
):
    """`compare --resume GRID seeds=[2]` (and `robotcl gap` with other seeds, which resumes its
    grids so) once resumed every stopped cell of the grid first, an hours-long one included; it
    now runs the seeds asked for and leaves the others, stopped, for a command that asks."""
    base = ["compare", "quick", *tiny, "strategies=[finetune]", "workers=0", "torch_threads=1"]
    assert main([*base, "seeds=[0,1]"]) == 0
    root = next((tmp_path / "runs" / "quick").glob("compare-*"))
    manifest = json.loads((root / "grid.json").read_text())
    for entry in manifest["cells"]:  # seed 1 as if stopped before its first checkpoint
        if entry["cell"]["seed"] == 1:
            entry["cell"]["status"] = "stopped"
            shutil.rmtree(entry["cell"]["run_dir"])
    (root / "grid.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["compare", "--dry-run", "--resume", str(root), "seeds=[0,2]"]) == 0
    dry = capsys.readouterr().out
    assert "stopped, not asked for" in dry and "1 done, 1 to run, 1 left as they are" in dry
    assert main(["compare", "--resume", str(root), "seeds=[0,2]"]) == 0
    assert not (root / "finetune-s1").exists()
    cells = {
        c["cell"]["seed"]: c["cell"]["status"]
        for c in json.loads((root / "grid.json").read_text())["cells"]
    }
    assert cells == {0: "done", 1: "stopped", 2: "done"}
    assert "finetune seed 1" in (root / "comparison.txt").read_text()  # listed as stopped
    assert main(["compare", "--resume", str(root)]) == 0  # the grid's own seeds: all of them
    assert (root / "finetune-s1" / "results.json").is_file()
