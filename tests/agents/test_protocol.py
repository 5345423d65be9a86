"""The learner protocol: registration checks it, strategies refuse learners that cannot serve
them before anything is written, and agents written against it (PPO, the README's TQC, the
plain-torch example) learn and run through the task loop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from reach_task import reach_env, reach_score

from robotcl.agents import ContinualPPO
from robotcl.cli import main
from robotcl.config import load_config
from robotcl.errors import UserInputError
from robotcl.experiment import run
from robotcl.learner import CAPABILITIES
from robotcl.registry import AGENTS, STRATEGIES, Registry, _check_learner

ROOT = Path(__file__).resolve().parents[2]
FAST = ["eval.every_steps=100", "eval.episodes=1", "packnet.retrain_steps=5"]
FAST += ["ewc.fisher_batches=1", "ewc.fisher_batch_size=16", "mas.importance_batches=1"]


def without(tiny: list[str], *keys: str) -> list[str]:
    """The tiny overrides less the agent keys a learner does not take."""
    return [t for t in tiny if t.partition("=")[0] not in keys]


OFF_POLICY_ONLY = ("agent.buffer_size", "agent.random_steps", "agent.update_after")
OFF_POLICY_ONLY += ("agent.train_freq", "agent.gradient_steps")


# -- the protocol -------------------------------------------------------------------------
def test_registering_a_class_that_is_not_a_learner_names_what_it_lacks():
    class HalfLearner:
        capabilities = frozenset({"replay_data", "telepathy"})

        def act(self, observations, deterministic): ...

        def save(self, path): ...

    agents = Registry("agent", check=_check_learner)
    with pytest.raises(UserInputError) as error:
        agents.register("half", HalfLearner)
    message = str(error.value)
    assert message.startswith("agent 'half': HalfLearner is not a learner: it lacks wrap_env")
    assert "learn_task" in message and "'act'" not in message and "save," not in message
    assert "capabilities: unknown 'telepathy'" in message and "\n" not in message
    assert "half" not in agents
    for name in AGENTS:  # every shipped learner passes, and declares known capabilities only
        _check_learner(name, AGENTS.get(name))
        assert set(AGENTS.get(name).capabilities) <= set(CAPABILITIES)


@pytest.mark.parametrize(
    ("agent", "strategy", "need"),
    [
        ("ppo", "replay", "replay_data"),
        ("ppo", "agem", "reference_loss, replay_data"),
        ("ppo", "multitask", "off_policy"),
        ("ppo", "[ewc,perfect_memory]", "replay_data"),
    ],
)
def test_a_strategy_the_learner_cannot_serve_is_refused_naming_both(
    agent, strategy, need, tiny, tmp_path, capsys
):
    items = ["run", "quick", *without(tiny, *OFF_POLICY_ONLY), f"agent.name={agent}"]
    items.append("agent.n_steps=100")
    assert main([*items, "agent.batch_size=50", f"strategy={strategy}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    label = strategy.strip("[]").replace(",", "+")
    assert err.startswith(f"robotcl: error: strategy {label} with agent '{agent}'")
    assert f"needs {need}, which ContinualPPO does not offer" in err
    assert not (tmp_path / "runs").exists()


def test_every_strategy_declares_only_known_needs():
    for name in STRATEGIES:
        assert set(STRATEGIES.get(name).needs) <= set(CAPABILITIES), name


# -- ContinualPPO -------------------------------------------------------------------------
def test_ppo_learns_the_reach_task():
    env = reach_env()
    learner = ContinualPPO(
        env=ContinualPPO.wrap_env(env),
        num_tasks=1,
        n_steps=256,
        batch_size=64,
        net_arch=[32, 32],
        learning_rate=3e-3,
        seed=0,
        device="cpu",
    )
    learner.start_task(0, env, seed=0)
    before = reach_score(learner)
    learner.learn_task(3072)
    assert before < -0.25 and reach_score(learner) > -0.05


PPO_TINY = ["agent.name=ppo", "agent.n_steps=100", "agent.batch_size=50", "agent.n_epochs=2"]


@pytest.mark.parametrize(
    "strategy", ["finetune", "l2", "ewc", "mas", "packnet", "progressive", "single"]
)
def test_ppo_runs_two_tasks_with_every_strategy_that_applies(strategy, tiny):
    items = [*without(tiny, *OFF_POLICY_ONLY), *PPO_TINY, *FAST, f"strategy={strategy}"]
    _, results = run(load_config("quick", items))
    assert results["completed_tasks"] == 2 and len(results["R"]["stochastic"]["success"]) == 2


def test_ppo_with_ewc_penalises_moving_the_first_tasks_weights(tiny):
    items = [*without(tiny, *OFF_POLICY_ONLY), *PPO_TINY, *FAST, "strategy=ewc"]
    run(load_config("quick", items))
    (state,) = Path(tiny[-1].split("=", 1)[1]).rglob("task000/state.pt")
    saved = torch.load(state, weights_only=False)["strategy"]
    assert saved["tasks"] == [0] and all(w.abs().sum() > 0 for w in saved["importance"])


def test_ppo_resumes_exactly(tiny, tmp_path):
    items = [*without(tiny, *OFF_POLICY_ONLY), *PPO_TINY, *FAST, "strategy=l2"]
    _, straight = run(load_config("quick", [*items, "name=straight"]))
    _, first = run(load_config("quick", [*items, "name=cut"]))
    run_dir = next((tmp_path / "runs" / "cut").iterdir())
    # the run as if killed after its first task: the last checkpoint and the results it wrote
    import shutil

    shutil.rmtree(run_dir / "checkpoints" / "task001")
    partial = json.loads((run_dir / "checkpoints" / "task000" / "results.json").read_text())
    (run_dir / "results.json").write_text(json.dumps(partial))
    assert main(["run", "--resume", str(run_dir)]) == 0
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["R"] == straight["R"] == first["R"]


# -- the README's TQC ---------------------------------------------------------------------
def readme_agent_code() -> str:
    section = (ROOT / "README.md").read_text().split("## Writing your own agent", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    return next(b for b in blocks if 'register_agent("tqc")' in b)


@pytest.fixture(scope="module")
def tqc():
    pytest.importorskip("sb3_contrib")
    namespace: dict = {}
    exec(compile(readme_agent_code(), "README.md", "exec"), namespace)
    return namespace["ContinualTQC"]


def test_readme_tqc_learns_the_reach_task(tqc):
    assert len(readme_agent_code().strip().splitlines()) <= 60  # "a short subclass"
    env = reach_env()
    learner = tqc(
        env=tqc.wrap_env(env),
        num_tasks=1,
        net_arch=[32, 32],
        batch_size=64,
        train_freq=1,
        gradient_steps=1,
        random_steps=100,
        update_after=100,
        seed=0,
        device="cpu",
    )
    learner.start_task(0, env, seed=0)
    before = reach_score(learner)
    learner.learn_task(600)
    assert before < -0.25 and reach_score(learner) > -0.1


APPLICABLE = [
    "finetune",
    "l2",
    "ewc",
    "mas",
    "gem",
    "agem",
    "replay",
    "perfect_memory",
    "packnet",
    "progressive",
    "multitask",
    "cumulative",
    "single",
]


def test_readme_tqc_runs_through_the_task_loop_with_every_strategy(tqc, tiny):
    for strategy in APPLICABLE:
        overrides = [*tiny, *FAST, "agent.name=tqc", f"strategy={strategy}", f"name={strategy}"]
        _, results = run(load_config("quick", overrides))
        assert results["completed_tasks"] == 2, strategy
    configs = list(Path(tiny[-1].split("=", 1)[1]).glob("*/*/config.yaml"))
    assert len(configs) == len(APPLICABLE)
    assert all("name: tqc" in c.read_text() for c in configs)


# -- the plain-torch example --------------------------------------------------------------
def test_plain_torch_example_installs_by_entry_point_and_runs_with_replay_and_ewc(
    tiny, tmp_path, monkeypatch
):
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*install, "--target", str(target), str(ROOT / "examples" / "cleanrl_sac")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (target / "robotcl_cleanrl_sac-0.1.0.dist-info" / "entry_points.txt").is_file()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    tiny = without(tiny, "agent.train_freq", "agent.gradient_steps", "agent.log_every_updates")
    command = [sys.executable, "-m", "robotcl.cli", "run", "quick", *tiny, *FAST]
    command += ["agent.name=cleanrl_sac", "strategy=[replay,ewc]"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (results_file,) = (tmp_path / "runs").glob("*/*/results.json")
    results = json.loads(results_file.read_text())
    assert results["completed_tasks"] == 2 and results["strategy"] == ["replay", "ewc"]
    monkeypatch.syspath_prepend(str(target))  # the memories hold the example's batch type
    (state,) = (tmp_path / "runs").rglob("task001/state.pt")
    saved = torch.load(state, weights_only=False)["strategy"]
    assert set(saved) == {"0:replay", "1:ewc"} and saved["1:ewc"]["tasks"] == [0, 1]
    # the protocol, not stable-baselines3, is the contract
    source = (ROOT / "examples/cleanrl_sac/robotcl_cleanrl_sac/__init__.py").read_text()
    assert "stable_baselines3" not in source
