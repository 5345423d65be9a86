"""ContinualTD3: multi-head deterministic actor, policy delay, hook order, save/load, the RL loop
with finetune, l2, ewc and replay, and the config's refusal of SAC-only keys."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from robotcl.agents.td3 import ContinualTD3
from robotcl.cli import main
from robotcl.config import load_config
from robotcl.envs.suites import make_suite
from robotcl.experiment import Experiment, build_learner, run
from robotcl.outputs import RunDirectory
from robotcl.registry import register_strategy
from robotcl.strategies.base import Strategy

ACTION_DIM = 9


@pytest.fixture(scope="module")
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
    return ContinualTD3(
        env=ContinualTD3.wrap_env(suite.make_env(0)), num_tasks=len(suite), **settings
    )


def observations(n=8):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 21)).astype(np.float32)
    one_hots = np.eye(3, dtype=np.float32)
    return {k: np.concatenate([obs, np.repeat(one_hots[k : k + 1], n, 0)], 1) for k in range(3)}


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def moved(before, module):
    return any(not torch.equal(a, p) for a, p in zip(before, module.parameters(), strict=True))


def test_trunk_ignores_the_task_id_and_one_head_changes_only_its_task(suite):
    agent = make_agent(suite)
    obs = {k: torch.as_tensor(o) for k, o in observations().items()}
    actor = agent.actor
    latents = [
        actor.latent_pi(actor.extract_features(o, actor.features_extractor)) for o in obs.values()
    ]
    assert torch.equal(latents[0], latents[1]) and torch.equal(latents[0], latents[2])
    before = {k: agent.act(o.numpy(), True) for k, o in obs.items()}
    assert not np.allclose(before[0], before[1])  # different heads, different actions
    with torch.no_grad():  # perturb only task 1's block of the head
        actor.mu.weight[ACTION_DIM : 2 * ACTION_DIM] += 1.0
    after = {k: agent.act(o.numpy(), True) for k, o in obs.items()}
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[2], after[2])
    assert not np.allclose(before[1], after[1])
    # the policy EWC/MAS see: the squashed action, no log-std
    mean, log_std = agent.policy_distribution()(obs[1])
    assert log_std is None and torch.equal(mean, torch.tanh(actor.pre_tanh(obs[1])))
    groups = agent.parameter_groups()
    assert [id(p) for p in groups["actor_heads"]] == [id(p) for p in actor.mu.parameters()]
    assert len(groups["critic_trunk"]) == 2 * len(list(agent.critic.q_networks[0][0].parameters()))


class Order(Strategy):
    """Records the hook order and whether the actor had moved when each hook ran."""

    name = "order"

    def __init__(self, agent):
        super().__init__()
        self.agent, self.calls = agent, []

    def _note(self, hook):
        self.calls.append((hook, moved(self.before, self.agent.actor)))

    def sample(self, batch, task_id):
        self.before = snapshot(self.agent.actor)
        self._note("sample")
        return batch

    def penalty(self, task_id):
        self._note("penalty")
        return None

    def adjust_gradients(self, task_id):
        self._note("adjust")

    def after_step(self):
        self._note("after")


def test_actor_and_targets_move_every_policy_delay_updates_through_the_hooks(suite):
    agent = make_agent(suite, policy_delay=3, update_after=1000)
    agent.start_task(0, suite.make_env(0), seed=0)
    agent.learn_task(40)  # fills the buffer, no update yet
    assert agent._n_updates == 0
    order = Order(agent)
    agent.attach(order)
    batch = agent.replay_buffer.sample(16)
    nets = ("actor", "critic", "actor_target", "critic_target")
    changes = []
    for _ in range(6):
        before = {n: snapshot(getattr(agent, n)) for n in nets}
        out = agent.update(batch)
        changes.append({n: moved(before[n], getattr(agent, n)) for n in nets})
        assert ("actor_loss" in out) == changes[-1]["actor"]
    assert [c["critic"] for c in changes] == [True] * 6
    for net in ("actor", "actor_target", "critic_target"):
        assert [c[net] for c in changes] == [False, False, True] * 2, net
    hooks = [("sample", False), ("penalty", False), ("adjust", False)]
    assert order.calls[:4] == [*hooks, ("after", False)]  # a critic-only update
    assert order.calls[8:12] == [*hooks, ("after", True)]  # the actor steps before after_step


def test_saved_agent_reloads_and_acts_identically(suite, tmp_path):
    agent = make_agent(suite, policy_delay=3, action_noise=0.2)
    agent.start_task(0, suite.make_env(0), seed=0)
    agent.learn_task(50)
    assert agent._n_updates == 31
    obs = np.concatenate(list(observations().values()))
    agent.save(tmp_path / "agent.zip")
    loaded = ContinualTD3.load(tmp_path / "agent.zip", device="cpu")
    assert np.array_equal(agent.act(obs, True), loaded.act(obs, True))
    np.random.seed(5)
    noisy = agent.act(obs, False)
    np.random.seed(5)
    assert np.array_equal(noisy, loaded.act(obs, False))
    assert not np.allclose(noisy, agent.act(obs, True))  # exploration noise on stochastic acting
    for net in ("actor_target", "critic_target"):
        for a, b in zip(
            getattr(agent, net).parameters(), getattr(loaded, net).parameters(), strict=True
        ):
            assert torch.equal(a, b)
    assert loaded.num_tasks == 3 and loaded._n_updates == 31 and loaded.policy_delay == 3
    assert loaded.action_noise_std == 0.2 and loaded.action_noise._sigma.tolist() == [0.2] * 9


# -- the RL loop ------------------------------------------------------------------------------
FAST_EVAL = ["eval.every_steps=100", "eval.episodes=1", "eval.deterministic_episodes=0"]
STRATEGIES = {
    "finetune": [],
    "l2": [],
    "ewc": ["ewc.fisher_batches=1", "ewc.fisher_batch_size=32"],
    "replay": ["replay.memory_per_task=30"],
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_runs_in_the_rl_loop(tiny, name):
    overrides = [*tiny, *FAST_EVAL, "agent.name=td3", f"strategy={name}", *STRATEGIES[name]]
    run_dir, results = run(load_config("quick", overrides))
    assert np.array(results["R"]["stochastic"]["success"]).shape == (2, 2)
    state = torch.load(run_dir.checkpoints / "task001" / "state.pt", weights_only=False)
    events = EventAccumulator(str(run_dir.tb), size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "train/critic_loss" in scalars and "train/actor_loss" in scalars
    assert not any(tag.startswith("train/alpha") for tag in scalars)  # SAC's, not TD3's
    if name in ("l2", "ewc"):
        penalties = [e.value for e in events.Scalars("train/penalty")]
        assert penalties and all(np.isfinite(penalties)) and max(penalties) > 0
        assert state["strategy"]["tasks"] == [0, 1] and state["strategy"]["anchors"]
        if name == "ewc":  # Fisher of the squashed action over the actor trunk (4 tensors)
            head = state["strategy"]["importance"]
            assert len(head) == 4 and all(f.abs().sum() > 0 for f in head)
    if name == "replay":
        assert [len(m.observations) for m in state["strategy"]["memory"].values()] == [30, 30]


class CrashOnce(Strategy):
    """Simulates a run killed at the start of the second task (once)."""

    name = "td3_crash_once"
    crashed = True

    def on_task_start(self, task_id):
        if task_id == 1 and not CrashOnce.crashed:
            CrashOnce.crashed = True
            raise KeyboardInterrupt


register_strategy("td3_crash_once")(CrashOnce)


def test_resume_matches_the_uninterrupted_run(tiny, tmp_path):
    overrides = [*tiny, *FAST_EVAL, "agent.name=td3", "strategy=td3_crash_once"]
    CrashOnce.crashed = True
    _, reference = run(load_config("quick", [*overrides, "name=straight"]))
    CrashOnce.crashed = False
    assert main(["run", "quick", *overrides, "name=killed"]) == 130
    run_dir = next((tmp_path / "runs" / "killed").iterdir())
    assert main(["run", "--resume", str(run_dir)]) == 0  # its saved config lists every key
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["completed_tasks"] == 2 and resumed["R"] == reference["R"]


def test_build_learner_passes_only_the_keys_the_learner_takes(tiny):
    config = load_config("quick", [*tiny, "agent.name=td3", "agent.policy_delay=4"])
    learner = build_learner(config, make_suite("dclaw10", num_tasks=2))
    assert isinstance(learner, ContinualTD3) and learner.policy_delay == 4
    assert learner.action_noise_std == 0.1 and learner.target_policy_noise == 0.2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["agent.name=td3", "agent.ent_coef=0.1"],
            "config key 'agent.ent_coef': not used by agent 'td3'; "
            "set it only with agent ppo or sac",
        ),
        (
            ["agent.policy_delay=3"],
            "config key 'agent.policy_delay': not used by agent 'sac'; set it only with agent td3",
        ),
        (["agent.name=td4"], "config key 'agent.name': unknown agent; known: bc, ppo, sac, td3"),
    ],
)
def test_a_key_the_agent_does_not_take_is_refused_before_anything_is_written(
    tiny, tmp_path, capsys, args, message
):
    assert main(["run", "quick", *tiny, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robotcl: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
    # the default value of another learner's key is harmless (presets and saved configs)
    assert load_config("quick", ["agent.name=td3", "agent.ent_coef=auto"]).agent.name == "td3"


def test_progressive_grows_the_target_actor_with_the_actor(tiny):
    """Expansion on TD3: the target actor gets the actor's columns, so polyak pairs stay 1:1."""
    overrides = [*tiny, *FAST_EVAL, "agent.name=td3", "strategy=progressive"]
    experiment = Experiment(load_config("quick", overrides))
    experiment.run(RunDirectory.create(experiment.config))
    learner = experiment.learner
    assert len(learner.actor.latent_pi.columns) == 2
    assert len(learner.actor_target.latent_pi.columns) == 2
    pairs = zip(learner.actor.parameters(), learner.actor_target.parameters(), strict=True)
    assert all(a.shape == b.shape for a, b in pairs)
