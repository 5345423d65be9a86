"""ContinualSAC: multi-head networks, per-task alpha, task switches, warm-up, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robotcl.agents.networks import task_index
from robotcl.agents.sac import ContinualSAC
from robotcl.envs.suites import make_suite


@pytest.fixture
def suite():
    return make_suite("dclaw10", num_tasks=3)


def make_agent(suite, **kwargs):
    settings = dict(
        net_arch=[32, 32],
        batch_size=16,
        buffer_size=500,
        random_steps=20,
        update_after=20,
        train_freq=1,
        gradient_steps=1,
        seed=0,
        device="cpu",
    )
    settings.update(kwargs)
    return ContinualSAC(
        env=ContinualSAC.wrap_env(suite.make_env(0)), num_tasks=len(suite), **settings
    )


def observations(suite, n=8):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 21)).astype(np.float32)
    one_hots = np.eye(len(suite), dtype=np.float32)
    return {k: np.concatenate([obs, np.repeat(one_hots[k : k + 1], n, 0)], 1) for k in range(3)}


def test_trunk_does_not_see_the_task_id(suite):
    agent = make_agent(suite)
    obs = observations(suite)
    latents = [
        agent.actor.latent_pi(
            agent.actor.extract_features(torch.as_tensor(o), agent.actor.features_extractor)
        )
        for o in obs.values()
    ]
    assert torch.equal(latents[0], latents[1])
    a0, a1 = agent.act(obs[0], True), agent.act(obs[1], True)
    assert not np.allclose(a0, a1)  # different heads give different actions


def test_changing_one_head_leaves_other_tasks_alone(suite):
    agent = make_agent(suite)
    obs = observations(suite)
    before = {k: agent.act(o, True) for k, o in obs.items()}
    action_dim = 9
    with torch.no_grad():  # perturb only task 1's block of the mean head
        agent.actor.mu.weight[action_dim : 2 * action_dim] += 1.0
    after = {k: agent.act(o, True) for k, o in obs.items()}
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[2], after[2])
    assert not np.allclose(before[1], after[1])
    q = agent.critic(torch.as_tensor(obs[0]), torch.zeros(8, 9))[0]
    assert q.shape == (8, 1)
    assert torch.equal(task_index(torch.as_tensor(obs[2]), 3), torch.full((8,), 2))


def test_updates_start_after_update_after_and_alpha_is_per_task(suite):
    agent = make_agent(suite)
    agent.start_task(0, suite.make_env(0), seed=0)
    alpha_before = agent.log_ent_coef.detach().clone()
    agent.learn_task(60)
    # one update per step once update_after (20) steps are in the buffer: steps 20..60
    assert agent._n_updates == 60 - 20 + 1
    changed = agent.log_ent_coef.detach() != alpha_before
    assert changed.tolist() == [True, False, False]


def test_task_switch_resets_buffer_and_optimizer(suite):
    agent = make_agent(suite)
    agent.start_task(0, suite.make_env(0), seed=0)
    agent.learn_task(40)
    assert agent.replay_buffer.size() == 40 and agent.actor.optimizer.state
    agent.start_task(1, suite.make_env(1), seed=1)
    assert agent.replay_buffer.size() == 0 and not agent.actor.optimizer.state
    assert agent.task_steps == 0 and agent.current_task == 1

    keep = make_agent(suite, reset_buffer=False, reset_optimizer=False)
    keep.start_task(0, suite.make_env(0), seed=0)
    keep.learn_task(40)
    keep.start_task(1, suite.make_env(1), seed=1)
    assert keep.replay_buffer.size() == 40 and keep.actor.optimizer.state


def test_random_warm_up_ignores_the_policy(suite):
    agent = make_agent(suite, random_steps=30)
    agent.start_task(0, suite.make_env(0), seed=0)
    agent._last_obs = agent.env.reset()
    with torch.no_grad():  # a policy that always outputs ~+1
        agent.actor.mu.bias.fill_(20.0)
        agent.actor.log_std.bias.fill_(-20.0)
    random_action, _ = agent._sample_action(0)
    agent.num_timesteps += 30  # past the warm-up
    policy_action, _ = agent._sample_action(0)
    assert np.all(policy_action > 0.99)
    assert np.any(random_action < 0.5)


def test_saved_agent_reloads_and_acts_identically(suite, tmp_path):
    agent = make_agent(suite)
    agent.start_task(0, suite.make_env(0), seed=0)
    agent.learn_task(50)
    obs = np.concatenate(list(observations(suite).values()))
    agent.save(tmp_path / "agent.zip")
    loaded = ContinualSAC.load(tmp_path / "agent.zip", device="cpu")
    assert np.array_equal(agent.act(obs, True), loaded.act(obs, True))
    torch.manual_seed(5)
    stochastic = agent.act(obs, False)
    torch.manual_seed(5)
    assert np.array_equal(stochastic, loaded.act(obs, False))
    assert torch.equal(agent.log_ent_coef, loaded.log_ent_coef)
    assert loaded.num_tasks == 3 and loaded._n_updates == agent._n_updates


def test_task_heads_single_task_fast_path_matches_all_heads():
    from robotcl.agents.networks import TaskHeads, select_head

    torch.manual_seed(0)
    heads = TaskHeads(16, 3, num_tasks=4)
    x = torch.randn(32, 16)
    one_task = torch.full((32,), 2)
    mixed = torch.randint(0, 4, (32,))
    full = torch.nn.functional.linear(x, heads.weight, heads.bias)
    torch.testing.assert_close(heads(x, one_task), select_head(full, one_task, 4))
    assert torch.equal(heads(x, mixed), select_head(full, mixed, 4))  # same computation
    jac = torch.func.vmap(torch.func.jacrev(lambda r: heads(r[None], one_task[:1])[0]))(x[:4])
    assert jac.shape == (4, 3, 16)  # the fast path stays out of the way of torch.func


@pytest.mark.parametrize(("actor", "target"), [(1, 1), (2, 2), (3, 1)])
def test_the_actor_and_the_target_move_on_their_own_intervals(suite, actor, target):
    """actor_update_interval and target_update_interval (CURL's DMC settings: 2 and 2): the
    critic steps every update, the actor and its alpha every ``actor``-th, the target critic
    every ``target``-th, counted from 1."""
    agent = make_agent(suite, actor_update_interval=actor, target_update_interval=target)
    agent.start_task(0, suite.make_env(0), seed=0)
    counts = {"actor": 0, "critic": 0, "alpha": 0, "target": 0}

    def counting(name, call):
        def wrapped(*args, **kwargs):
            counts[name] += 1
            return call(*args, **kwargs)

        return wrapped

    agent.learn_task(20)  # the random steps; the optimizers exist from here on
    agent.actor.optimizer.step = counting("actor", agent.actor.optimizer.step)
    agent.critic.optimizer.step = counting("critic", agent.critic.optimizer.step)
    agent.ent_coef_optimizer.step = counting("alpha", agent.ent_coef_optimizer.step)
    agent._update_target = counting("target", agent._update_target)
    before = agent._n_updates
    agent.learn_task(12)
    updates = agent._n_updates - before
    first = before + 1  # the count of the first of these updates
    expected = {
        "actor": sum((n % actor == 0) for n in range(first, first + updates)),
        "target": sum((n % target == 0) for n in range(first, first + updates)),
    }
    assert updates == 12 and counts["critic"] == 12
    assert counts["actor"] == counts["alpha"] == expected["actor"]
    assert counts["target"] == expected["target"]


def test_a_saved_frame_replay_loads_back_into_a_learner(suite, tmp_path):
    # SB3's load_replay_buffer accepts only its own ReplayBuffer; checkpoints of pixel runs
    # (reset_buffer=false, and every partial checkpoint) save the frame replay
    from counter_env import collect, pixel_env

    from robotcl.agents.frame_buffer import FrameReplayBuffer

    env = pixel_env(max_steps=7)
    frames = FrameReplayBuffer(50, env.env.layout, env.observation_space.shape[0], 1)
    collect(env, 80, frames)
    agent = make_agent(suite)
    agent.replay_buffer = frames
    agent.save_replay_buffer(tmp_path / "replay.pkl")
    other = make_agent(suite)
    other.load_replay_buffer(tmp_path / "replay.pkl")
    loaded = other.replay_buffer
    assert isinstance(loaded, FrameReplayBuffer) and loaded.count == 80 and loaded.full
    np.random.seed(3)
    first = frames.sample(16)
    np.random.seed(3)
    again = loaded.sample(16)
    for a, b in zip(first, again, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)  # SB3's optional discounts


class RecordingLogger:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def record(self, key: str, value: float) -> None:
        self.values[key] = value


def test_a_batch_of_several_tasks_logs_each_tasks_q_and_td_error(suite):
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    agent = make_agent(suite)
    agent.task_names = ["T0", "T1", "T2"]
    obs = observations(suite, n=6)
    mixed = torch.as_tensor(np.concatenate([obs[0][:2], obs[2][:4]]))
    rewards = torch.tensor([[1.0], [3.0], [0.0], [0.0], [0.0], [0.0]])
    batch = ReplayBufferSamples(mixed, torch.zeros(6, 9), mixed, torch.ones(6, 1), rewards)
    out = agent.losses(batch)
    logger = RecordingLogger()
    agent.set_logger(logger)
    agent._record_extra(out)
    assert sorted(k for k in logger.values if "by_task" in k) == [
        "train/by_task/T0/q",
        "train/by_task/T0/td_error",
        "train/by_task/T2/q",
        "train/by_task/T2/td_error",
    ]
    q, target = out["q"].reshape(-1), out["target_q"].reshape(-1)
    assert logger.values["train/by_task/T0/q"] == pytest.approx(float(q[:2].mean()))
    error = float((q[2:] - target[2:]).square().mean())
    assert logger.values["train/by_task/T2/td_error"] == pytest.approx(error)
    # the rewards enter only their own rows' targets: done rows, so target = reward
    assert torch.equal(target, rewards.reshape(-1))
    one_task = ReplayBufferSamples(*(f[2:] for f in batch[:5]))
    logger.values.clear()
    agent._record_extra(agent.losses(one_task))
    assert not any("by_task" in k for k in logger.values)  # one task: nothing more to say
