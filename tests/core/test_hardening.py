"""Bad input is one line (exit 2) before anything is written; runs that go wrong stop with one
line and keep their last checkpoint; resumed runs lose no TensorBoard point."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from robotcl.cli import main
from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def bad_inputs(tmp_path: Path, a_file: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (items after 'run quick', a text the error line must hold)."""
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    return {
        "device not built": (["device=mps"], "config key 'device'"),
        "gpu index": (["device=cuda:7"], "config key 'device'"),
        "seed too large": (["seed=4294967296"], "config key 'seed'"),
        "buffer beyond memory": (["agent.buffer_size=100000000000"], "available"),
        "ssl memory beyond memory": (
            [
                "agent.encoder.type=mlp",
                "agent.encoder.objective=curl",
                "agent.encoder.memory_ratio=0.5",
                "agent.encoder.memory_per_task=100000000000",
            ],
            "agent.encoder.memory_per_task",
        ),
        "learning rate huge": (["agent.learning_rate=1e30"], "agent.learning_rate"),
        "learning rate inf": (["agent.learning_rate=.inf"], "agent.learning_rate"),
        "run_dir is a file": ([f"run_dir={a_file}"], "is a file"),
        "runs_dir is a file": ([f"runs_dir={a_file}"], "is a file"),
        "runs_dir under a file": ([f"runs_dir={a_file}/runs"], "lies under the file"),
        "unknown group": (["strategy=ewc", "ewc.groups=[bogus]"], "ewc.groups"),
        "replay with one buffer": (
            ["strategy=[replay,ewc]", "agent.reset_buffer=false"],
            "agent.reset_buffer=true",
        ),
        "reference missing": ([f"reference={tmp_path / 'none.json'}"], "reference"),
        "reference not json": ([f"reference={not_json}"], "not a robotcl results.json"),
        "empty task list": (["tasks=[]"], "config key 'tasks'"),
        "unknown task": (["tasks=[T99]"], "tasks"),
        "name escapes runs_dir": (["name=../../x"], "config key 'name'"),
        "no gradient update": (["agent.update_after=200"], "no gradient update"),
        "batch above buffer": (["agent.buffer_size=16"], "exceeds agent.buffer_size"),
    }


CASES = [
    "device not built",
    "gpu index",
    "seed too large",
    "buffer beyond memory",
    "ssl memory beyond memory",
    "learning rate huge",
    "learning rate inf",
    "run_dir is a file",
    "runs_dir is a file",
    "runs_dir under a file",
    "unknown group",
    "replay with one buffer",
    "reference missing",
    "reference not json",
    "empty task list",
    "unknown task",
    "name escapes runs_dir",
    "no gradient update",
    "batch above buffer",
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_nothing_is_written(
    case, dry_run, tiny, tmp_path, a_file, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    items, culprit = bad_inputs(tmp_path, a_file)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    # options may come between the preset and the items
    args = ["run", "quick", *(["--dry-run"] if dry_run else []), *tiny, *items]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("robotcl: error: ") and err.count("\n") == 1, err
    assert culprit in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/, no MUJOCO_LOG.TXT
    assert a_file.read_text() == "not a folder"


@NO_CUDA
def test_cuda_on_a_machine_without_it_is_refused(tiny, tmp_path, capsys):
    assert main(["run", "quick", *tiny, "device=cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_task_list_is_the_whole_curriculum(capsys):
    assert main(["run", "quick", "--dry-run", "tasks=[T0,T1,T2]"]) == 0
    out = capsys.readouterr().out
    assert "- T2" in out and "num_tasks: null" in out  # the preset's num_tasks: 2 is dropped
    assert main(["run", "quick", "--dry-run", "tasks=[T0]", "num_tasks=1"]) == 2
    assert "drop num_tasks" in capsys.readouterr().err


def test_settings_of_strategies_not_selected_are_named_in_a_warning(capsys):
    assert main(["run", "quick", "ewc.coef=5", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("robotcl: warning: ") and "ewc.*" in err


# -- runs that go wrong --------------------------------------------------------------------
class StopAtSecondTask(Strategy):
    """Interrupts the run (as Ctrl-C does) at the start of task 1, once."""

    name = "stop_at_second_task"
    armed = False

    def on_task_start(self, task_id):
        if task_id == 1 and StopAtSecondTask.armed:
            StopAtSecondTask.armed = False
            raise KeyboardInterrupt


class PoisonAtSecondTask(Strategy):
    """A NaN penalty from task 1 on: the loss of the update diverges."""

    name = "poison_at_second_task"

    def penalty(self, task_id):
        return torch.tensor(float("nan")) if task_id == 1 else None


register_strategy("stop_at_second_task")(StopAtSecondTask)
register_strategy("poison_at_second_task")(PoisonAtSecondTask)


def run_dir_of(root: Path) -> Path:
    (config,) = root.rglob("config.yaml")
    return config.parent


def test_nan_loss_stops_the_run_with_one_line_and_keeps_the_checkpoint(tiny, tmp_path, capsys):
    assert main(["run", "quick", *tiny, "strategy=poison_at_second_task"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    run_dir = run_dir_of(tmp_path / "runs")
    assert err[0] == f"run directory: {run_dir}"  # said when the run starts
    assert len(err) == 2 and err[1].startswith("robotcl: stopped: training diverged at env step")
    assert "penalty=nan" in err[1] and f"--resume {run_dir}" in err[1]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["task000"]
    assert json.loads((run_dir / "results.json").read_text())["completed_tasks"] == 1


def test_a_full_disk_stops_the_run_and_earlier_checkpoints_stay(
    tiny, tmp_path, capsys, monkeypatch
):
    import robotcl.checkpoint

    real_save = torch.save

    def save(obj, path, *args, **kwargs):
        if ".task001.tmp" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(robotcl.checkpoint.torch, "save", save)
    assert main(["run", "quick", *tiny]) == 3
    err = capsys.readouterr().err
    assert "robotcl: stopped: cannot write to the run directory (no space left" in err
    checkpoints = run_dir_of(tmp_path / "runs") / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["task000"]  # no .task001.tmp
    assert (checkpoints / "task000" / "state.pt").is_file()
    monkeypatch.setattr(robotcl.checkpoint.torch, "save", real_save)
    assert main(["run", "--resume", str(checkpoints.parent)]) == 0  # and it goes on


def test_interrupted_run_names_its_directory_and_resume_keeps_every_tensorboard_point(
    tiny, tmp_path, capsys
):
    common = [*tiny, "strategy=stop_at_second_task"]
    assert main(["run", "quick", *common, "name=straight"]) == 0
    StopAtSecondTask.armed = True
    capsys.readouterr()
    assert main(["run", "quick", *common, "name=killed"]) == 130
    run_dir = run_dir_of(tmp_path / "runs" / "killed")
    assert f"continue with: robotcl run --resume {run_dir}" in capsys.readouterr().err
    # a kill tears the last line of the evaluation log: resume drops it
    with (run_dir / "evaluations.jsonl").open("a") as f:
        f.write('{"step": 150, "training')
    assert main(["run", "--resume", str(run_dir)]) == 0
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [0, 50, 100, 100, 150, 200]
    straight = run_dir_of(tmp_path / "runs" / "straight")
    resumed, reference = tensorboard(run_dir), tensorboard(straight)
    assert resumed == reference
    assert [s for s, _ in reference["eval/T0/success"]] == [0, 50, 100, 150, 200]
    assert reference["image cl/success_matrix"] == [100, 200]


def tensorboard(run_dir: Path) -> dict[str, list]:
    """Every evaluation scalar and image of a run as (step, value) lists."""
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    out = {
        tag: [(e.step, round(e.value, 6)) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if tag.startswith(("eval", "cl/", "probe/"))
    }
    for tag in events.Tags()["images"]:
        out[f"image {tag}"] = [e.step for e in events.Images(tag)]
    return out


def test_resume_refuses_a_config_that_is_not_yaml(tiny, tmp_path, capsys):
    assert main(["run", "quick", *tiny, "num_tasks=1"]) == 0
    run_dir = run_dir_of(tmp_path / "runs")
    (run_dir / "config.yaml").write_text("seed: [1\n")
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "config.yaml is not valid YAML" in err and err.count("\n") == 1


def test_one_run_directory_is_claimed_by_one_process(tmp_path):
    from robotcl.config import load_config
    from robotcl.errors import UserInputError
    from robotcl.outputs import RunDirectory

    config = load_config("quick", [f"run_dir={tmp_path / 'shared'}"])
    first = RunDirectory.create(config)
    with pytest.raises(UserInputError, match="in use by another robotcl process"):
        RunDirectory.create(config)
    first.unlock()


def test_run_files_follow_the_umask(tiny, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["run", "quick", *tiny, "num_tasks=1"]) == 0
    finally:
        os.umask(old)
    run_dir = run_dir_of(tmp_path / "runs")
    for name in ("config.yaml", "results.json"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o644


def test_progress_off_a_terminal_is_periodic_lines(capsys):
    from robotcl.progress import SummaryLines, progress

    assert isinstance(progress(100, 0, enabled=True), SummaryLines)  # captured: not a tty
    lines = SummaryLines(1000, interval_s=0.0)
    lines.set_description("task 1/2 T0")
    for _ in range(3):
        lines.update(100)
    lines.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and err[0].startswith("robotcl: task 1/2 T0: step 100/1,000 (10%)")
    assert "\r" not in "".join(err)


def test_mujoco_warnings_go_to_python_not_to_a_file_in_the_working_directory(tmp_path, monkeypatch):
    import mujoco

    import robotcl.envs  # noqa: F401  (routes the warnings)

    monkeypatch.chdir(tmp_path)
    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><joint/><geom size='.1'/></body></worldbody></mujoco>"
    )
    data = mujoco.MjData(model)
    data.qpos[0] = float("nan")
    with pytest.warns(RuntimeWarning, match="MuJoCo: Nan"):
        mujoco.mj_step(model, data)
    assert not list(tmp_path.iterdir())


# -- plot, show, report --------------------------------------------------------------------
@pytest.fixture
def finished_run(tiny, tmp_path) -> Path:
    assert main(["run", "quick", *tiny, "num_tasks=1", "name=done"]) == 0
    return run_dir_of(tmp_path / "runs" / "done")


@pytest.mark.parametrize(
    ("out", "culprit"),
    [("missing/curves.png", "does not exist"), ("curves.xyz", "unknown figure format")],
)
def test_plot_refuses_an_output_it_cannot_write(finished_run, tmp_path, out, culprit, capsys):
    capsys.readouterr()
    assert main(["plot", str(finished_run), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robotcl: error: --out") and culprit in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("metrics", [1, 2]), ("tasks", "T0"), ("curves", {"steps": "x"}), ("metrics", {"acc": "hi"})],
)
def test_report_refuses_results_with_fields_of_the_wrong_type(
    finished_run, tmp_path, field, value, capsys
):
    data = json.loads((finished_run / "results.json").read_text())
    data[field] = value
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["report", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "results.json is malformed" in err and err.count("\n") == 1


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write: a read-only tmpfs as root (who may write anywhere else),
    a folder without write permission otherwise."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o555)
        yield locked
        locked.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(locked)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        yield locked
    finally:
        subprocess.run(["umount", str(locked)], check=False)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "quick", "--dry-run", "runs_dir=runs"],  # a read-only working directory
        ["show", "dclaw10", "--out", "sheet.png"],
        ["plot", "nothing", "--out", "curves.png"],
    ],
)
def test_read_only_folders_are_one_line_errors(read_only_dir, args, capsys, monkeypatch):
    monkeypatch.chdir(read_only_dir)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and err.count("\n") == 1, err
    assert not list(read_only_dir.iterdir())


@pytest.mark.parametrize("strategy", ["ewc", "packnet", "l2"])
def test_a_strategy_whose_groups_are_empty_is_refused_naming_both(tiny, tmp_path, capsys, strategy):
    assert main(["run", "quick", *tiny, "agent.net_arch=[]", f"strategy={strategy}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"{strategy}.groups=" in line and "agent.net_arch=[]" in line
    assert not (tmp_path / "runs").exists()
