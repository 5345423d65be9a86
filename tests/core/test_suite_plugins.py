"""Suites from outside robotcl (``suite=package.module:factory``, the entry-point group
``robotcl.suites``) and plugins whose entry point is broken."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from fakes import FakeEntryPoint

from robotcl import registry
from robotcl.cli import main
from robotcl.envs import dclaw_env_id
from robotcl.envs.suites import Suite, TaskSpec, make_suite

README = Path(__file__).resolve().parents[2] / "README.md"

ODD = """
from robotcl.envs.suites import Suite

def not_a_suite():
    return ["V4"]

NOT_CALLABLE = 3
"""


def readme_suite_code() -> str:
    section = README.read_text().split("## Suites, task orders and videos", 1)[1]
    return re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)[0]


@pytest.fixture
def suite_modules(tmp_path, monkeypatch):
    """my_suites (the README's example), odd_suites and broken_suites, importable."""
    (tmp_path / "my_suites.py").write_text(readme_suite_code())
    (tmp_path / "odd_suites.py").write_text(ODD)
    (tmp_path / "broken_suites.py").write_text("import no_such_package_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("my_suites", "odd_suites", "broken_suites"):
        sys.modules.pop(name, None)


def test_a_suite_factory_named_on_the_command_line_is_run(suite_modules, tiny, tmp_path):
    args = [*tiny, "suite=my_suites:valves", "order=back", "name=factory"]
    assert main(["run", "quick", *args, "steps_per_task=60", "eval.every_steps=60"]) == 0
    (run_dir,) = (tmp_path / "runs" / "factory").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["suite"] == "valves" and results["tasks"] == ["V2", "V4"]
    assert results["order"] == "back"


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        ("my_suites:missing", "suite 'my_suites:missing': module 'my_suites' has no 'missing'"),
        ("no_such_module_xyz:f", "module 'no_such_module_xyz' cannot be imported"),
        ("broken_suites:f", "No module named 'no_such_package_xyz'"),
        ("odd_suites:not_a_suite", "returned list, not a robotcl Suite"),
        ("odd_suites:NOT_CALLABLE", "'NOT_CALLABLE' of odd_suites is not callable"),
        ("a.b:c:d", "config key 'suite'"),
    ],
)
@pytest.mark.parametrize("command", ["run", "show"])
def test_a_bad_suite_factory_is_one_line_naming_it(
    suite_modules, tmp_path, capsys, suite, message, command
):
    if command == "run":
        argv = ["run", "quick", f"suite={suite}", "--dry-run", f"runs_dir={tmp_path}/r"]
    else:
        argv = ["show", suite, "--out", f"{tmp_path}/r/sheet.png"]
    if command == "show" and message.startswith("config key"):
        message = "suite 'a.b:c:d': not a suite name"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("robotcl: error:") and message in err[0]
    assert not (tmp_path / "r").exists()


def test_entry_point_suites_are_found_by_name(monkeypatch):
    from robotcl.envs import suites

    def plugged() -> Suite:
        return Suite("plugged", (TaskSpec("P3", dclaw_env_id("T3")),))

    def entry_points(group):
        return [FakeEntryPoint("plugged", plugged)] if group == "robotcl.suites" else []

    monkeypatch.setattr(registry, "entry_points", entry_points)
    fresh = registry.Registry("suite", registry.SUITES.entry_point_group)
    monkeypatch.setattr(suites, "SUITES", fresh)
    assert make_suite("plugged").task_names == ["P3"]


GROUPS = {
    "robotcl.strategies": "broken_strategy",
    "robotcl.agents": "broken_agent",
    "robotcl.suites": "broken_suite",
    "robotcl.ssl": "broken_objective",
}


@pytest.fixture
def broken_plugins(monkeypatch):
    """One entry point a group whose import fails (shipped by 'badpkg'), plus an agent that
    loads but is no learner; every registry loads its entry points again."""

    def entry_points(group):
        name = GROUPS.get(group)
        error = ImportError("No module named 'badpkg_deps'")
        found = [FakeEntryPoint(name, value=f"badpkg.{name}:Thing", dist="badpkg", error=error)]
        if group == "robotcl.agents":
            found.append(FakeEntryPoint("odd_agent", object, "badpkg.agents:Odd", "badpkg"))
        return found if name else []

    monkeypatch.setattr(registry, "entry_points", entry_points)
    for reg in (registry.STRATEGIES, registry.AGENTS, registry.SUITES, registry.OBJECTIVES):
        monkeypatch.setattr(reg, "_items", dict(reg._items))
        monkeypatch.setattr(reg, "_broken", {}, raising=False)
        monkeypatch.setattr(reg, "_entry_points_loaded", False)


def test_a_broken_plugin_breaks_nothing_until_it_is_asked_for(broken_plugins, tmp_path, capsys):
    assert main(["run", "quick", "--dry-run", f"runs_dir={tmp_path}/r"]) == 0
    capsys.readouterr()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("broken_strategy", "broken_agent", "broken_suite"):
        assert f"{name} (broken: ImportError: No module named 'badpkg_deps')" in out
    assert "odd_agent (broken: " in out and "dclaw10: 10 tasks" in out and "finetune" in out
    for argv, name in [
        (["run", "quick", "--dry-run", "strategy=broken_strategy"], "broken_strategy"),
        (["run", "quick", "--dry-run", "agent.name=broken_agent"], "broken_agent"),
        (
            [
                "run",
                "quick",
                "--dry-run",
                "agent.encoder.type=mlp",
                "agent.encoder.objective=broken_objective",
            ],
            None,
        ),
        (["run", "quick", "--dry-run", "agent.name=odd_agent"], "odd_agent"),
        (["show", "broken_suite", "--out", f"{tmp_path}/r/x.png"], "broken_suite"),
    ]:
        assert main([*argv, f"runs_dir={tmp_path}/r"] if argv[0] == "run" else argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        name = name or "broken_objective"
        assert len(err) == 1 and "distribution badpkg" in err[0], err
        assert f"entry point {name} = badpkg." in err[0] and "fails to load" in err[0]
    assert not (tmp_path / "r").exists()


def test_a_suite_factorys_own_settings_reach_it_and_its_run(suite_modules, tiny, tmp_path, capsys):
    args = ["run", "quick", *tiny, "suite=my_suites:valves", "suite_settings.valves=[T0,T2,T4]"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "suite_settings:\n  valves:\n  - T0\n  - T2\n  - T4\n" in out
    assert out.rstrip().endswith("# tasks: [V0, V2]")  # num_tasks=2 of the three
    assert main([*args, "name=factory", "steps_per_task=60", "eval.every_steps=60"]) == 0
    (run_dir,) = (tmp_path / "runs" / "factory").iterdir()
    assert json.loads((run_dir / "results.json").read_text())["tasks"] == ["V0", "V2"]
    assert "  - T4\n" in (run_dir / "config.yaml").read_text()  # resumed with the same suite


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            ["suite=my_suites:valves", "suite_settings.valves=[T0]"],
            "config key 'suite_settings.valves': List should have at least 2 items",
        ),
        (
            ["suite=my_suites:valves", "suite_settings.valve=[T0,T1]"],
            "config key 'suite_settings.valve': unknown key; allowed: valves",
        ),
        (
            ["suite_settings.valves=[T0,T1]"],
            "config key 'suite_settings.valves': unknown key; allowed: none: suite dclaw10 takes "
            "no settings",
        ),
    ],
)
def test_a_bad_suite_setting_is_one_line(suite_modules, tiny, tmp_path, capsys, items, message):
    assert main(["run", "quick", *tiny, *items]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"robotcl: error: {message}")
    assert not (tmp_path / "runs").exists()


def test_help_lists_the_settings_of_a_registered_suite(suite_modules, monkeypatch, capsys):
    import my_suites

    monkeypatch.setitem(registry.SUITES._items, "valves", my_suites.valves)  # as by entry point
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "suite_settings." in line]
    assert len(lines) == 1 and "suite valves only: dclaw10 tasks, in order" in lines[0]
