"""The one key of a run's settings (robotcl.study.keys): what enters it, what does not, and how
experts and gap folders keyed by an earlier robotcl are reported."""

from __future__ import annotations

import json
import shutil

import pytest

from robotcl.cli import main
from robotcl.commands.gap import gap_root
from robotcl.config import load_config
from robotcl.study.keys import run_key
from robotcl.study.references import expert_dir

SUITE = """name: aim
tasks:
  - {id: Pendulum-v1, name: plus, kwargs: {g: 10.0}}
  - {id: Pendulum-v1, name: minus, kwargs: {g: 9.0}}
"""


@pytest.fixture
def aim(tmp_path, tiny) -> list[str]:
    suite = tmp_path / "aim.yaml"
    suite.write_text(SUITE)
    return [f"suite={suite}", *tiny]


def _keys(args: list[str]) -> tuple[str, object, object]:
    config = load_config(None, args)
    return run_key(config), expert_dir(config, "plus"), gap_root(config)


def test_editing_a_suite_file_changes_every_key_and_moving_it_none(aim, tmp_path):
    before = _keys(aim)
    moved = tmp_path / "elsewhere" / "aim.yaml"
    moved.parent.mkdir()
    shutil.copy(tmp_path / "aim.yaml", moved)
    same = _keys([f"suite={moved}", *aim[1:]])
    assert same[0] == before[0] and same[1].name == before[1].name and same[2] == before[2]
    (tmp_path / "aim.yaml").write_text(SUITE.replace("g: 9.0", "g: 8.0"))
    after = _keys(aim)
    assert after[0] != before[0] and after[1] != before[1] and after[2] != before[2]


@pytest.mark.parametrize(
    "item",
    [
        "agent.log_every_updates=7",
        "video.enabled=true",
        "progress=false",
        "torch_threads=2",
        "name=other",
        "overwrite=true",
        "device=cpu",
        "experts.threshold=0.5",
        "gap.epochs=3",
        "ewc.coef=5",  # a strategy the run does not use
        "agent.encoder.moco.temperature=0.2",  # an objective the run does not use
    ],
)
def test_logging_only_settings_change_no_key(aim, item):
    config = load_config(None, aim)
    other = load_config(None, [*aim, item])
    assert run_key(other) == run_key(config)
    assert expert_dir(other, "plus").name == expert_dir(config, "plus").name
    if not item.startswith(("name=", "ewc.")):  # the gap folder sits under runs_dir/<name>
        assert gap_root(other) == gap_root(config)


@pytest.mark.parametrize(
    "item",
    [
        "seed=1",
        "steps_per_task=200",
        "agent.learning_rate=0.01",
        "eval.every_steps=10",
        "strategy=ewc",
        "order=[minus,plus]",
    ],
)
def test_what_changes_the_numbers_changes_the_run_key(aim, item):
    assert run_key(load_config(None, [*aim, item])) != run_key(load_config(None, aim))


def test_the_selected_objective_s_settings_are_in_the_key(aim):
    mlp = [*aim, "agent.encoder.type=mlp", "agent.encoder.objective=moco"]
    base = run_key(load_config(None, mlp))
    assert run_key(load_config(None, [*mlp, "agent.encoder.moco.temperature=0.2"])) != base
    assert run_key(load_config(None, [*mlp, "agent.encoder.moco.temperature=0.07"])) == base


def test_used_strategy_settings_and_the_experts_of_a_reference_are_in_the_key(aim):
    ewc = load_config(None, [*aim, "strategy=ewc"])
    assert run_key(load_config(None, [*aim, "strategy=ewc", "ewc.coef=5"])) != run_key(ewc)
    # the defaults written out are the same settings as none given
    default = ewc.strategy_settings("ewc") or {}
    from robotcl.registry import STRATEGIES

    coef = STRATEGIES.get("ewc").Settings.model_validate(default).coef
    assert run_key(load_config(None, [*aim, "strategy=ewc", f"ewc.coef={coef}"])) == run_key(ewc)
    referenced = load_config(None, [*aim, "reference=experts"])
    assert run_key(load_config(None, [*aim, "reference=experts", "experts.seed=1"])) != run_key(
        referenced
    )
    # without a reference the experts' settings change nothing a run measures
    assert run_key(load_config(None, [*aim, "experts.seed=1"])) == run_key(load_config(None, aim))


def test_experts_of_an_earlier_key_are_ignored_with_one_line(aim, capsys):
    config = load_config(None, aim)
    old = expert_dir(config, "plus").parent / "0123456789-s0"
    old.mkdir(parents=True)
    (old / "expert.json").write_text(json.dumps({"task": "plus", "seed": 0}))
    assert main(["run", *aim, "reference=experts"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "1 expert(s)" in err[0] and "earlier robotcl" in err[0] and "ignored" in err[0]
    assert "reference=experts: no finished expert of plus" in err[1]
