"""dexterous20: twenty claw tasks of five families sharing one observation and action space."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from budgets import TINY_AGENT
from dexterous_helpers import place_valve
from gymnasium.utils.env_checker import check_env

from robotcl.config import load_config
from robotcl.envs import dexterous_env_id
from robotcl.envs.dclaw.dexterous import TASKS, DexterousEnv
from robotcl.envs.dclaw.family_spin import SPIN_WINDOW
from robotcl.envs.suites import check_spaces, make_suite
from robotcl.experiment import run


def test_twenty_tasks_of_five_families_in_one_space():
    suite = make_suite("dexterous20")
    assert len(suite) == 20 and suite.task_names[:10] == [f"valve-T{k}" for k in range(10)]
    families = [t.family for t in TASKS[10:]]
    assert len(set(families)) >= 4 and "valve" not in families
    check_spaces(suite)  # one observation and one action space (raises otherwise)
    env = suite.make_env(15)
    assert env.observation_space.shape == (25 + 20,) and env.action_space.shape == (9,)
    env.close()


@pytest.mark.parametrize("task", [t.name for t in TASKS])
def test_every_task_passes_the_checker_and_is_deterministic(task):
    env = gym.make(dexterous_env_id(task))
    check_env(env.unwrapped, skip_render_check=True)
    actions = np.random.default_rng(1).uniform(-1, 1, (12, 9)).astype(np.float32)

    def episode() -> np.ndarray:
        obs = [env.reset(seed=4)[0]]
        obs += [env.step(a)[0] for a in actions]
        return np.stack(obs)

    first, again = episode(), episode()
    assert np.array_equal(first, again) and first.dtype == np.float32
    env.close()


@pytest.mark.parametrize(
    "task", ["valve-T3", "back-T3", "to90-T5", "heavy-T3", "sticky-T7", "back-T1"]
)
def test_an_angle_task_succeeds_at_its_goal_and_not_away_from_it(task):
    env = DexterousEnv(task)
    env.reset(seed=0)
    goal = env.task.goal_angle
    place_valve(env, goal + 0.05)
    assert env.success() and env.info()["is_success"]
    assert abs(env.observe()[24]) == pytest.approx(0.05, abs=1e-5)
    place_valve(env, goal + 0.4)
    assert not env.success()
    place_valve(env, 0.0)  # the start pose is no success for any angle task
    assert not env.success()


@pytest.mark.parametrize("task", ["spin-T3", "spin-T7"])
def test_a_spin_task_succeeds_after_two_seconds_at_its_speed_only(task):
    env = DexterousEnv(task)
    env.reset(seed=0)
    speed, dt = env.task.goal_speed, 0.1
    for k in range(1, SPIN_WINDOW):
        place_valve(env, speed * dt * k)
        assert not env.success()  # under two seconds of history
    place_valve(env, speed * dt * SPIN_WINDOW)
    assert env.success() and env.speed(SPIN_WINDOW) == pytest.approx(speed)
    env.reset(seed=0)
    for k in range(1, SPIN_WINDOW + 1):
        place_valve(env, -speed * dt * k)  # the wrong way round
    assert not env.success()
    env.reset(seed=0)
    for k in range(1, SPIN_WINDOW + 1):
        place_valve(env, 0.3 * speed * dt * k)  # too slow
    assert not env.success()
    env.reset(seed=0)
    for k in range(1, SPIN_WINDOW + 1):  # the right mean, but twice the speed, then at rest
        place_valve(env, 2 * speed * dt * min(k, SPIN_WINDOW // 2))
    assert env.speed(SPIN_WINDOW) == pytest.approx(speed) and not env.success()
    judgement = env.task.judge(env)  # which condition failed: every half second onward
    assert judgement.mean_on_target and not judgement.onward
    assert judgement.segment_speeds == pytest.approx([2 * speed] * 2 + [0.0] * 2)
    env.reset(seed=0)
    angle = 0.0
    for k in range(SPIN_WINDOW):  # uneven (a regrasp every half second) but always onward
        angle += speed * dt * (0.5 if k % 5 == 4 else 1.125)
        place_valve(env, angle)
    assert env.speed(SPIN_WINDOW) == pytest.approx(speed) and env.success()


def test_a_heavy_valve_turns_less_under_the_same_actions():
    actions = np.random.default_rng(0).uniform(-1, 1, (40, 9)).astype(np.float32)

    def travel(task: str) -> float:
        env = DexterousEnv(task)
        env.reset(seed=0)
        total = 0.0
        for a in actions:
            before = env.valve_angle
            env.step(a)
            total += abs(env.valve_angle - before)
        return total

    assert travel("heavy-T3") < 0.5 * travel("valve-T3")
    assert math.isclose(DexterousEnv("heavy-T3").model.dof_damping[9], 1.0)
    assert math.isclose(DexterousEnv("sticky-T7").model.dof_frictionloss[9], 0.3)


def test_the_valve_tasks_keep_the_benchmark_dynamics_and_reward():
    from robotcl.envs.dclaw import DClawTurnEnv

    plain, wide = DClawTurnEnv("T3"), DexterousEnv("valve-T3")
    a0, _ = plain.reset(seed=0)
    b0, _ = wide.reset(seed=0)
    assert np.array_equal(a0[:20], b0[:20])
    for action in np.random.default_rng(2).uniform(-1, 1, (10, 9)).astype(np.float32):
        a, ra, *_ = plain.step(action)
        b, rb, *_ = wide.step(action)
        assert np.array_equal(a[:20], b[:20]) and ra == rb and a[20] == pytest.approx(b[24])


def test_the_spin_example_reports_the_conditions_that_decide_success(tmp_path, load_example):
    """examples/spin_success.py (the spin paragraph of docs/results.md) replays a run's spin
    policy from its task-end checkpoint: its two conditions decide the env's success."""
    module = load_example("spin_success")
    items = [*TINY_AGENT, "tasks=[back-T1,spin-T7]", "eval.episodes=1", "progress=false"]
    run_dir, _ = run(load_config("dexterous-study", [*items, f"runs_dir={tmp_path}"]))
    found = module.spin_episodes(run_dir.path, episodes=3, deterministic=False)
    assert list(found) == ["spin-T7"] and len(found["spin-T7"]) == 3
    for row in found["spin-T7"]:
        judgement = row["judgement"]
        assert row["success"] == (judgement.mean_on_target and judgement.onward)
        assert len(judgement.segment_speeds) == SPIN_WINDOW // 5
    lines = module.describe(found)
    assert len(lines) == 4 and lines[-1].startswith("spin-T7: ")
