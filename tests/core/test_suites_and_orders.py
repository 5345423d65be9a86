"""Task orders (named, explicit, seeded permutations), suites from YAML files, and compare grids
over orders with their spread."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from robotcl.cli import main
from robotcl.envs.suites import Suite, TaskSpec, make_suite
from robotcl.errors import UserInputError
from robotcl.study.grid import parse_grid

TEN = [f"T{k}" for k in range(10)]


def test_named_explicit_and_seeded_orders():
    assert make_suite("dclaw10", "b").task_names == TEN[::-1]
    explicit = ["T4", *[t for t in TEN if t != "T4"]]
    assert make_suite("dclaw10", explicit, num_tasks=2).task_names == ["T4", "T0"]
    one, again, other = (make_suite("dclaw10", f"shuffle:{i}").task_names for i in (3, 3, 4))
    assert one == again and sorted(one) == TEN and one != other and one != TEN
    # the same permutation whatever the order the preset named before
    assert make_suite("dclaw10", "shuffle:3").task_names == one


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ("random:4", "is 4 orders"),
        ("z", "unknown order 'z'"),
        (["T1", "T0"], "not an order of all"),
        (["T1", *TEN[1:]], "repeated ['T1']"),
    ],
)
def test_bad_orders_are_refused_with_what_is_allowed(order, message):
    with pytest.raises(UserInputError, match="order") as err:
        make_suite("dclaw10", order)
    assert message in str(err.value)


SUITE = """
name: mine
tasks:
  - T3
  - id: robotcl/DClawTurnT5-v0
    name: T5b
orders:
  back: [T5b, T3]
"""


T5B = "tasks:\n  - T3\n  - id: robotcl/DClawTurnT5-v0\n    name: T5b\n    "


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_suite_file_is_a_suite_for_every_command(tmp_path, tiny, capsys):
    path = write(tmp_path, SUITE)
    suite = make_suite(path, "back")
    assert suite.name == "mine" and suite.task_names == ["T5b", "T3"]
    assert suite.tasks[1].env_id == "robotcl/DClawTurnT3-v0"  # a robotcl task by its name
    env = suite.make_env(0)
    assert env.observation_space.shape == (21 + 2,)  # the one-hot of the suite's 2 tasks
    env.close()
    args = [*tiny, f"suite={path}", "order=back", "steps_per_task=60", "probe.samples=0"]
    assert main(["run", "quick", *args, "name=filesuite", "eval.every_steps=60"]) == 0
    (run_dir,) = (tmp_path / "runs" / "filesuite").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["suite"] == "mine" and results["tasks"] == ["T5b", "T3"]
    assert results["order"] == "back"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: [T3, {id: Pendulum-v1}]", "Pendulum-v1 (observation (3,), action (1,)"),
        ("tasks: [T3, T99]", "task 1 'T99' is no robotcl task"),
        ("tasks: [T3, {id: nobody/Nothing-v0}]", "not a registered gymnasium id"),
        ("tasks: [T3, T3]", "task names repeat"),
        ("tasks: [T3\n", "is not YAML"),
        ("tasks: []", "non-empty 'tasks' list"),
        ("tasks: [T3]\nextra: 1", "unknown key 'extra'"),
        ("tasks: [T3, T4]\norders: {b: [T3]}", "not an order of all"),
        (T5B + "kwargs: {nonsense: 3}", "task 1 'T5b': kwarg 'nonsense' is not taken by"),
        (T5B + "kwrags: {valve: T4}", "task 1 'T5b': unknown key 'kwrags' (did you mean 'kwargs'"),
        ("tasks: [T3, {Id: robotcl/DClawTurnT5-v0}]", "task 1: unknown key 'Id' (did you mean"),
        (T5B + "kwargs: {valve: T99}", "task T5b: kwarg valve='T99' refused by"),
        (T5B + "kwargs: {width: 64}", "task 1 'T5b': kwarg 'width' is set by robotcl"),
        (T5B + "kwargs: [valve]", "task 1 'T5b': kwargs must be a mapping"),
    ],
)
@pytest.mark.parametrize("command", ["run", "show"])
def test_suite_file_errors_are_one_line_naming_the_file(tmp_path, capsys, text, message, command):
    path = write(tmp_path, text)
    if command == "run":
        argv = ["run", "quick", f"suite={path}", "--dry-run", f"runs_dir={tmp_path}/r"]
    else:
        argv = ["show", path, "--out", f"{tmp_path}/r/sheet.png"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and ("suite" in err[0] or "order" in err[0])
    assert f"suite file '{path}'" in err[0]
    assert not (tmp_path / "r").exists()


def test_dry_run_prints_the_task_order_of_the_run_as_valid_yaml(capsys):
    assert main(["run", "quick", "--dry-run", "order=c", "num_tasks=3"]) == 0
    out = capsys.readouterr().out
    assert "# tasks: [T3, T1, T7]" in out.splitlines()
    assert yaml.safe_load(out)["order"] == "c"


def test_a_missing_suite_file_is_named():
    with pytest.raises(UserInputError, match="suite file '/nowhere/s.yaml': cannot be read"):
        make_suite("/nowhere/s.yaml")


def test_grid_orders_parse():
    grid, rest = parse_grid(["order=random:3", "eval.episodes=2"])
    assert grid["orders"] == ["shuffle:0", "shuffle:1", "shuffle:2"] and rest == ["eval.episodes=2"]
    assert parse_grid(["orders=[a,b]"])[0]["orders"] == ["a", "b"]
    assert parse_grid(["orders=[a,[T1,T0]]"])[0]["orders"] == ["a", ["T1", "T0"]]
    assert parse_grid(["order=b"])[0]["orders"] is None  # one order: no sweep
    with pytest.raises(UserInputError, match="conflicts with orders="):
        parse_grid(["orders=[a,b]", "order=random:2"])
    with pytest.raises(UserInputError, match="orders"):
        parse_grid(["orders=7"])


def test_a_grid_over_orders_reports_the_spread_across_them(tiny, tmp_path):
    args = ["compare", "quick", *tiny, "strategies=[finetune]", "orders=[a,b]", "workers=0"]
    assert main([*args, "steps_per_task=60", "eval.every_steps=60", "probe.samples=0"]) == 0
    (root,) = (tmp_path / "runs" / "quick").glob("compare-*")
    tasks = {
        order: json.loads((root / f"finetune-{order}-s0" / "results.json").read_text())["tasks"]
        for order in ("a", "b")
    }
    assert tasks == {"a": ["T0", "T1"], "b": ["T9", "T8"]}
    text = (root / "comparison.txt").read_text()
    assert "across task orders" in text
    spread = json.loads((root / "comparison.json").read_text())["orders"]["finetune"]
    acc = spread["acc"]
    by_order = acc["by_order"]
    assert set(by_order) == {"a", "b"}
    assert acc["min"] == min(by_order.values()) and acc["max"] == max(by_order.values())


class SizedButBuggy(gym.Env):
    """Takes a render size, but its code fails with one other than its own."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, render_mode=None, width=240, height=240):
        if width != 240:
            raise TypeError("a bug in the task's code")


def test_make_env_gives_a_render_size_to_envs_that_take_one_and_hides_no_error():
    if "test/SizedButBuggy-v0" not in gym.registry:
        gym.register("test/SizedButBuggy-v0", entry_point=SizedButBuggy)
    pendulum = Suite("p", (TaskSpec("P", "Pendulum-v1"),))  # no width, height: its own size
    pendulum.make_env(0, render_mode="rgb_array", size=64).close()
    buggy = Suite("b", (TaskSpec("B", "test/SizedButBuggy-v0"),))
    buggy.make_env(0).close()
    with pytest.raises(TypeError, match="a bug in the task's code"):
        buggy.make_env(0, size=64)


def test_task_index_leaves_out_only_suites_whose_extra_is_missing(monkeypatch):
    from robotcl.envs import suites
    from robotcl.envs.extras import MissingExtra
    from robotcl.registry import Registry

    def broken() -> Suite:
        raise RuntimeError("a bug in the suite's code")

    def needs_extra() -> Suite:
        raise MissingExtra("suite 'x'", "needs X, which is not installed", "pip install x")

    registry = Registry("suite")
    registry.register("dclaw10", suites.dclaw10)
    registry.register("x", needs_extra)
    monkeypatch.setattr(suites, "SUITES", registry)
    assert list(suites.task_index()) == [f"T{k}" for k in range(10)]
    registry.register("broken", broken)
    with pytest.raises(RuntimeError, match="a bug in the suite's code"):
        suites.task_index()
