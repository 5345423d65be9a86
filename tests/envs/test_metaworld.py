"""Continual World on Meta-World v3 (the extra robotcl[metaworld]); skipped without it. CI runs
these in a second environment that has the extra installed."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robotcl.cli import main
from robotcl.envs.metaworld import make_task
from robotcl.envs.suites import make_suite

metaworld = pytest.importorskip("metaworld")
pytestmark = pytest.mark.metaworld


def test_cw10_and_cw20_follow_continual_world():
    cw10 = make_suite("cw10")
    assert cw10.task_names[:3] == ["hammer", "push-wall", "faucet-close"] and len(cw10) == 10
    cw20 = make_suite("cw20")
    assert len(cw20) == 20 and cw20.task_names[10] == "hammer-2"
    assert cw20.tasks[10].env_id == cw20.tasks[0].env_id


def test_a_cw_task_passes_the_checker_and_its_episodes_are_200_steps_and_reproducible():
    check_env(make_task("push-wall"), skip_render_check=True)
    env = gym.make("robotcl/CW-push-wall-v0")
    first, _ = env.reset(seed=5)
    again, _ = env.reset(seed=5)
    other, _ = env.reset(seed=6)
    assert first.dtype == np.float32 and first.shape == (39,)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    rng = np.random.default_rng(0)
    steps, truncated, info = 0, False, {}
    while not truncated:
        _, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        steps += 1
        assert not terminated and steps <= 200
    assert steps == 200 and isinstance(info["is_success"], bool)
    env.close()


def test_success_at_any_step_holds_to_the_episode_end():
    env = gym.make("robotcl/CW-hammer-v0")
    env.reset(seed=0)
    inner = env.unwrapped
    real = type(inner).evaluate_state
    calls = {"n": 0}

    def succeed_once(self, obs, action):
        reward, info = real(self, obs, action)
        calls["n"] += 1
        return reward, {**info, "success": float(calls["n"] == 3)}

    type(inner).evaluate_state = succeed_once
    try:
        flags = [env.step(np.zeros(4, np.float32))[4]["is_success"] for _ in range(6)]
    finally:
        type(inner).evaluate_state = real
    assert flags == [False, False, True, True, True, True]


def test_a_short_cw_run_through_the_cli(tiny, tmp_path):
    items = [t for t in tiny if not t.startswith("num_tasks")]  # the task list is the curriculum
    items += ["suite=cw10", "tasks=[hammer,push-wall]", "probe.samples=0", "name=cw"]
    assert main(["run", "quick", *items]) == 0
    (run_dir,) = (tmp_path / "runs" / "cw").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["tasks"] == ["hammer", "push-wall"]
    assert len(results["R"]["stochastic"]["success"]) == 2
