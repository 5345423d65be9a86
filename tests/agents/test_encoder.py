"""Agents with an encoder and a contrastive objective: gradients reach exactly what the settings
say, the encoder is one parameter group strategies target, SSL state survives a checkpoint, and
the SSL batch can rehearse earlier tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robotcl.cli import main
from robotcl.config import load_config
from robotcl.experiment import Experiment, run
from robotcl.outputs import RunDirectory

ENCODER = ["agent.encoder.type=mlp", "agent.encoder.feature_dim=16", "agent.encoder.hidden=32"]


def learner_with(tiny: list[str], *overrides: str):
    experiment = Experiment(load_config("quick", [*tiny, *ENCODER, *overrides]))
    experiment.prepare()
    learner = experiment.learner
    learner.start_task(0, experiment.suite.make_env(0), seed=0)
    learner.learn_task(60)  # enough transitions for a batch
    return learner


def grads(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def nonzero(gs: list[torch.Tensor | None]) -> bool:
    return any(g is not None and g.abs().sum() > 0 for g in gs)


@pytest.mark.parametrize("agent", ["sac", "td3"])
def test_critic_and_ssl_train_the_encoder_and_the_actor_reads_it_detached(agent, tiny):
    learner = learner_with(tiny, f"agent.name={agent}", "agent.encoder.objective=curl")
    encoder = list(learner.encoder.parameters())
    batch = learner.replay_buffer.sample(16)
    out = learner.losses(batch)
    assert nonzero(grads(out["critic_loss"], encoder))
    assert not nonzero(grads(out["actor_loss"], encoder))  # CURL: detached features
    from robotcl.ssl import SSLBatch

    ssl = learner.ssl(SSLBatch(obs=batch.observations, later=batch.next_observations))
    assert nonzero(grads(ssl.loss, encoder)) and nonzero(grads(ssl.loss, [learner.ssl.W]))
    key = list(learner.ssl.key_encoder.parameters())  # CURL's key: the critic target's encoder
    assert [id(p) for p in key] == [
        id(p) for p in learner.critic_target.features_extractor.parameters()
    ]
    assert not any(g is not None for g in grads(ssl.loss, key))  # no gradient into the key
    assert not any(id(p) in {id(q) for q in learner.ssl.parameters()} for p in key)  # not its own
    # the encoder is stepped by the critic's optimizer (and CURL's own, after the RL update)
    in_actor = {id(p) for g in learner.actor.optimizer.param_groups for p in g["params"]}
    in_critic = {id(p) for g in learner.critic.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in in_critic and id(p) not in in_actor for p in encoder)
    assert set(learner.parameter_groups()) >= {"encoder", "actor_trunk", "critic_trunk"}


def test_actor_gradients_setting_lets_the_actor_train_the_encoder(tiny):
    learner = learner_with(
        tiny, "agent.encoder.actor_gradients=true", "agent.encoder.critic_gradients=false"
    )
    encoder = list(learner.encoder.parameters())
    out = learner.losses(learner.replay_buffer.sample(16))
    assert nonzero(grads(out["actor_loss"], encoder))
    assert not nonzero(grads(out["critic_loss"], encoder))
    in_actor = {id(p) for g in learner.actor.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in in_actor for p in encoder)


def test_an_update_moves_the_encoder_and_the_key_encoder_follows(tiny):
    learner = learner_with(tiny, "agent.encoder.objective=curl")
    before = [p.detach().clone() for p in learner.encoder.parameters()]
    key_before = [p.detach().clone() for p in learner.ssl.key_encoder.parameters()]
    out = learner.update(learner.replay_buffer.sample(16))
    assert "ssl_loss" in out and 0 <= out["ssl_accuracy"].item() <= 1
    after = list(learner.encoder.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    key_after = list(learner.ssl.key_encoder.parameters())
    for k, b, o in zip(key_after, key_before, after, strict=True):
        assert torch.allclose(k, b + 0.05 * (o.detach() - b), atol=1e-6)


def test_ssl_every_skips_updates(tiny):
    learner = learner_with(tiny, "agent.encoder.objective=simclr", "agent.encoder.ssl_every=2")
    seen = ["ssl_loss" in learner.update(learner.replay_buffer.sample(16)) for _ in range(4)]
    assert seen.count(True) == 2


def test_the_ssl_batch_rehearses_earlier_tasks_in_its_share(tiny):
    experiment = Experiment(
        load_config(
            "quick",
            [
                *tiny,
                *ENCODER,
                "agent.encoder.objective=temporal",
                "agent.encoder.memory_ratio=0.25",
            ],
        )
    )
    experiment.prepare()
    learner = experiment.learner
    learner.start_task(0, experiment.suite.make_env(0), seed=0)
    learner.learn_task(60)
    learner.end_task()
    assert len(learner.ssl_memory) == 60 and learner.ssl_memory.tasks() == [0]
    learner.start_task(1, experiment.suite.make_env(1), seed=1)
    learner.learn_task(60)
    seen: list[torch.Tensor] = []
    real = learner.ssl.forward
    learner.ssl.forward = lambda batch: seen.append(batch.obs) or real(batch)
    learner.ssl_term(learner.replay_buffer.sample(32), {})
    one_hot = seen[0][:, -2:]
    assert one_hot[:24, 1].sum() == 24 and one_hot[24:, 0].sum() == 8  # 25% from task 0


def test_strategies_target_the_encoder_group_and_packnet_keeps_its_first_task(tiny):
    items = [*tiny, *ENCODER, "agent.encoder.objective=curl", "strategy=packnet"]
    items += ["packnet.groups=[encoder]", "packnet.retrain_steps=5"]
    _, results = run(load_config("quick", items))
    P = results["P"]
    # the probe reads the encoder; PackNet acts on task 0 with task 0's encoder weights
    assert results["metrics"]["probe_forgetting"] == pytest.approx(0.0, abs=1e-6)
    assert P[0][0] == pytest.approx(P[1][0], abs=1e-6)


def test_ssl_state_is_checkpointed_and_a_resumed_run_matches(tiny, tmp_path):
    items = [*tiny, *ENCODER, "agent.encoder.objective=moco", "agent.encoder.memory_ratio=0.5"]
    _, straight = run(load_config("quick", [*items, "name=straight"]))
    experiment = Experiment(load_config("quick", [*items, "name=cut"]))

    real = experiment._train_task

    def train_once(task, *rest):
        if task == 1:
            raise KeyboardInterrupt
        real(task, *rest)

    experiment._train_task = train_once
    run_dir = RunDirectory.create(experiment.config)
    run_dir.write_config(experiment.config.model_dump())
    with pytest.raises(KeyboardInterrupt):
        experiment.run(run_dir)
    run_dir.unlock()
    assert main(["run", "--resume", str(run_dir.path)]) == 0
    resumed = json.loads((run_dir.path / "results.json").read_text())
    assert resumed["R"] == straight["R"]
    np.testing.assert_equal(resumed["P"], straight["P"])  # NaN where a task was not yet seen
    assert Path(run_dir.path / "checkpoints" / "task000" / "learner.zip").is_file()


@pytest.mark.parametrize(
    ("items", "culprit"),
    [
        (["agent.encoder.objective=curl"], "set agent.encoder.type=mlp"),
        ([*ENCODER, "agent.encoder.objective=crossmodal"], "observation=pixels+proprio"),
        (["observation=pixels"], "need agent.encoder.type=pixels"),
        (["agent.encoder.type=pixels"], "need agent.encoder.type=pixels"),
        (["observation=pixels", "agent.encoder.type=pixels", "pixels.crop=120"], "pixels.crop"),
        (["agent.name=ppo", "agent.n_steps=100", "agent.batch_size=50", *ENCODER], "encoder"),
    ],
)
def test_encoder_settings_that_cannot_work_are_one_line_errors(items, culprit, tmp_path, capsys):
    assert main(["run", "quick", "--dry-run", *items, f"runs_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("robotcl: error: ") and culprit in err


PIXELS = [
    "observation=pixels+proprio",
    "pixels.size=24",
    "pixels.crop=20",
    "agent.encoder.type=pixels",
]


def test_crossmodal_contrasts_the_frames_with_the_state_of_the_same_step(tiny, gl_ok):
    learner = learner_with(tiny, *PIXELS, "agent.encoder.objective=crossmodal")
    batch = learner.replay_buffer.sample(16)
    out: dict[str, torch.Tensor] = {}
    loss = learner.ssl_term(batch, out)
    assert 0 <= float(out["ssl_accuracy"]) <= 1
    assert nonzero(grads(loss, list(learner.encoder.encoder.parameters())))  # the conv encoder
    assert nonzero(grads(loss, list(learner.ssl.proprio_encoder.parameters())))
    # the pixel view holds the frames alone: the state rides along only for the trunks
    layout = learner.pixel_layout
    moved = batch.observations.clone()
    moved[:, layout.pixel_values : layout.width] += 1.0
    learner.encoder.eval()
    assert torch.equal(learner.ssl.encoder(batch.observations), learner.ssl.encoder(moved))
    assert not torch.equal(learner.encoder(batch.observations), learner.encoder(moved))


def test_a_pixel_objective_takes_the_critics_crop_as_its_anchor_once(tiny, gl_ok):
    learner = learner_with(tiny, *PIXELS, "agent.encoder.objective=simclr")
    batch = learner.replay_buffer.sample(8)
    learner.policy.set_training_mode(True)
    learner.losses(batch)
    anchor = learner.encoder.anchor
    assert anchor is not None and anchor[0] is batch.observations and anchor[1].requires_grad
    view = learner.ssl.encoder
    assert view(batch.observations) is anchor[1]  # the critic's features: one conv pass saved
    assert not torch.equal(view(batch.observations), anchor[1])  # then a new random crop
    learner.update(batch)
    assert learner.encoder.anchor is None  # no graph outlives the update


def test_ssl_losses_reach_tensorboard(tiny, tmp_path):
    run(load_config("quick", [*tiny, *ENCODER, "agent.encoder.objective=curl"]))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tb,) = (tmp_path / "runs").glob("*/*/tb")
    events = EventAccumulator(str(tb))
    events.Reload()
    assert {"train/ssl/curl/loss", "train/ssl/curl/accuracy"} <= set(events.Tags()["scalars"])


def test_moco_queue_size_is_a_setting(tiny):
    learner = learner_with(tiny, "agent.encoder.objective=moco", "agent.encoder.queue_size=64")
    assert learner.ssl.queue.shape == (64, 16)
    before = int(learner.ssl.pointer)
    learner.update(learner.replay_buffer.sample(16))
    assert int(learner.ssl.pointer) == (before + 16) % 64  # the keys went in after the step


def test_the_supervised_learner_takes_the_same_encoder_and_objective():
    from robotcl.agents.supervised import BCLearner, TransitionDataset
    from robotcl.strategies.ewc import EWC

    settings = {
        "type": "mlp",
        "feature_dim": 8,
        "hidden": 16,
        "objective": "curl",
        "ssl_weight": 1.0,
    }
    learner = BCLearner(6, 2, num_tasks=2, net_arch=[16], encoder=settings)
    g = torch.Generator().manual_seed(0)
    obs = torch.cat([torch.randn(64, 4, generator=g), torch.tensor([[1.0, 0.0]]).expand(64, 2)], 1)
    data = TransitionDataset(obs, torch.randn(64, 2, generator=g))
    ewc = EWC(EWC.Settings(groups=["encoder"], fisher_batches=1, fisher_batch_size=16))
    learner.attach(ewc)
    ewc.setup(learner, None)
    learner.start_task(0, data)
    before = [p.detach().clone() for p in learner.net.encoder.parameters()]
    w_before = learner.ssl.W.detach().clone()
    out = learner.update(data.sample(32))
    assert "ssl_loss" in out and torch.isfinite(out["ssl_loss"])
    after = learner.net.encoder.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert not torch.equal(w_before, learner.ssl.W)  # the objective's own W is trained too
    ewc.on_task_end(0, learner.task_data())  # EWC weighs the encoder through the policy
    assert all(w.abs().sum() > 0 for w in ewc.importance)
    assert learner.features(obs).shape == (64, 8)


def test_a_pixel_run_renders_stores_single_frames_and_trains_the_conv_encoder(tiny, gl_ok):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from robotcl.agents.frame_buffer import FrameReplayBuffer

    items = [t for t in tiny if not t.startswith(("eval.", "agent.net_arch"))]
    items += ["observation=pixels+proprio", "pixels.size=24", "pixels.crop=20"]
    items += ["agent.encoder.type=pixels", "agent.encoder.objective=curl", "agent.net_arch=[16]"]
    items += ["eval.every_steps=100", "eval.episodes=1", "eval.deterministic_episodes=1"]
    experiment = Experiment(load_config("quick", items))
    experiment.run(RunDirectory.create(experiment.config))
    learner = experiment.learner
    assert isinstance(learner.replay_buffer, FrameReplayBuffer)
    assert learner.replay_buffer.frames.shape[1:] == (3, 24, 24)
    convs = [p for p in learner.parameter_groups()["encoder"] if p.dim() == 4]
    assert len(convs) == 4  # CURL's four convolutions are the group strategies target
    P = experiment.results["P"]
    assert len(P) == 2 and 0 <= P[1][0] <= 1  # the probe reads the image features
    assert learner.features(torch.zeros(2, learner.observation_space.shape[0])).shape == (2, 50)
    (tb,) = Path(experiment.run_dir.path).glob("tb")
    events = EventAccumulator(str(tb))
    events.Reload()
    assert "train/ssl/curl/loss" in events.Tags()["scalars"]


class Scalars:
    """A logger that keeps the tags recorded."""

    def __init__(self) -> None:
        self.tags: set[str] = set()

    def record(self, key: str, value: float, *args, **kwargs) -> None:
        self.tags.add(key)

    def dump(self, step: int = 0) -> None: ...


@pytest.mark.parametrize("agent", ["sac", "td3"])
def test_the_contrastive_loss_has_its_own_step_as_in_curl(agent, tiny):
    """separate (default): CURL's own Adam over the encoder and W (the critic's Adam holds the
    encoder too), stepped after the RL update, its gradient reaching the encoder alone; joint:
    W only, the loss added to the critic's."""
    learner = learner_with(tiny, f"agent.name={agent}", "agent.encoder.objective=curl")
    encoder = {id(p) for p in learner.encoder.parameters()}
    own = [p for group in learner.ssl_optimizer.param_groups for p in group["params"]]
    critic = {id(p) for group in learner.critic.optimizer.param_groups for p in group["params"]}
    assert encoder <= {id(p) for p in own} and encoder <= critic
    assert any(p is learner.ssl.W for p in own)
    seen: list[tuple[bool, bool]] = []  # (encoder gradient, W gradient) at each SSL step
    step = learner.ssl_optimizer.step

    def stepped(*args, **kwargs):
        actor_trunk = learner.parameter_groups()["actor_trunk"]
        assert all(p.grad is None or not p.grad.any() for p in actor_trunk)  # SSL's own grads
        seen.append(
            (
                nonzero([p.grad for p in learner.encoder.parameters()]),
                learner.ssl.W.grad is not None and bool(learner.ssl.W.grad.any()),
            )
        )
        return step(*args, **kwargs)

    learner.ssl_optimizer.step = stepped
    learner.learn_task(20)
    assert seen and all(seen_encoder and seen_w for seen_encoder, seen_w in seen)

    joint = learner_with(
        tiny,
        f"agent.name={agent}",
        "agent.encoder.objective=curl",
        "agent.encoder.ssl_update=joint",
    )
    own = [p for group in joint.ssl_optimizer.param_groups for p in group["params"]]
    assert [id(p) for p in own] == [id(joint.ssl.W)]


def test_ssl_scalars_are_logged_when_ssl_every_divides_the_logging_interval(tiny):
    learner = learner_with(
        tiny,
        "agent.encoder.objective=curl",
        "agent.encoder.ssl_every=2",
        "agent.log_every_updates=4",
    )
    logger = Scalars()
    learner.set_logger(logger)
    learner.learn_task(40)
    assert {"train/ssl/curl/loss", "train/ssl/curl/accuracy"} <= logger.tags


@pytest.mark.parametrize("agent", ["sac", "td3"])
def test_curls_key_encoder_is_the_critic_targets_moved_at_curls_rate(agent, tiny):
    """key_encoder=auto (CURL's): the target update moves the target encoder at curl.tau (0.05)
    and the rest of the target critic at agent.tau; the objective moves nothing itself."""
    learner = learner_with(tiny, f"agent.name={agent}", "agent.encoder.objective=curl",
                           "agent.tau=0.01")  # fmt: skip
    assert learner.ssl.key_is_target
    target = learner.critic_target
    encoder = {id(p) for p in target.features_extractor.parameters()}
    with torch.no_grad():  # the online critic one away from its target everywhere
        for t, s in zip(target.parameters(), learner.critic.parameters(), strict=True):
            s.copy_(t + 1.0)
    before = [p.detach().clone() for p in target.parameters()]
    learner.ssl.after_update()
    assert all(torch.equal(b, p) for b, p in zip(before, target.parameters(), strict=True))
    learner._update_target()
    for b, p in zip(before, target.parameters(), strict=True):
        rate = 0.05 if id(p) in encoder else 0.01
        assert torch.allclose(p - b, torch.full_like(p, rate)), (rate, (p - b).flatten()[:3])


def test_curl_can_keep_its_own_key_encoder(tiny):
    learner = learner_with(
        tiny, "agent.encoder.objective=curl", "agent.encoder.curl.key_encoder=own"
    )
    assert not learner.ssl.key_is_target
    own = {id(p) for p in learner.ssl.key_encoder.parameters()}
    assert own <= {id(p) for p in learner.ssl.parameters()}  # its own momentum copy
    assert not own & {id(p) for p in learner.critic_target.parameters()}


def test_the_key_view_of_the_target_encoder_is_a_random_crop_in_eval_mode():
    """The critic target sits in eval mode (centre crops); CURL's key is another random crop."""
    import gymnasium as gym

    from robotcl.agents.networks import ImageView, PixelExtractor
    from robotcl.envs.pixels import PixelLayout

    layout = PixelLayout(frames=1, size=24, proprio=0)
    space = gym.spaces.Box(0, 255, (layout.width + 2,), np.float32)
    target = PixelExtractor(space, 2, layout, feature_dim=8, crop=20).eval()
    obs = torch.randint(0, 255, (4, layout.width + 2), generator=torch.Generator().manual_seed(0))
    obs = obs.float()
    key = ImageView(target, random=True)
    assert not torch.allclose(key(obs), key(obs))  # two random crops of the same frames
    centre = ImageView(target)  # eval mode: the centre crop, as the target critic sees
    assert torch.equal(centre(obs), centre(obs))


def conv_inputs(extractor) -> list[torch.Tensor]:
    """The crops that reach ``extractor``'s convolutional encoder, in order (filled as it runs)."""
    seen: list[torch.Tensor] = []
    extractor.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    return seen


@pytest.mark.parametrize("crops", ["shared", "independent"])
def test_one_update_crops_each_batch_once_as_curl_does(tiny, gl_ok, crops):
    """SAC's update encodes obs (actor, critic, the actor's Q, the contrastive query) and
    next_obs (actor, critic target), plus CURL's key: with crops=shared, obs has one crop (the
    anchor), next_obs one random crop seen alike by the actor and the critic target (which sits
    in eval mode), and the key a crop of its own."""
    from robotcl.ssl.augment import center_crop

    learner = learner_with(
        tiny, *PIXELS, "agent.encoder.objective=curl", f"agent.encoder.crops={crops}"
    )
    online, target = (
        conv_inputs(learner.encoder),
        conv_inputs(learner.critic_target.features_extractor),
    )
    batch = learner.replay_buffer.sample(16)
    learner.policy.set_training_mode(True)
    with learner.update_scope():
        learner.update(batch)
    layout, size = learner.encoder.layout, learner.encoder.crop
    centre_next = center_crop(layout.images(batch.next_observations) / 255.0, size)
    # online: actor(obs), actor(next_obs), critic(obs), critic(obs, actor's action), query(obs)
    assert len(online) == 5 and len(target) == 2  # target: critic_target(next_obs), the key
    anchor, actor_next, critic, critic_pi, query = online
    target_next, key = target
    if crops == "shared":
        assert all(torch.equal(anchor, x) for x in (critic, critic_pi, query))
        assert torch.equal(actor_next, target_next)
        assert not torch.equal(target_next, centre_next)  # a random crop, in eval mode too
    else:
        assert not torch.equal(anchor, critic) and not torch.equal(critic, critic_pi)
        assert not torch.equal(critic, query)
        assert torch.equal(target_next, centre_next)
    assert not torch.equal(key, anchor) and key.shape == anchor.shape  # the key: its own crop


def test_simclrs_two_views_of_a_pixel_batch_are_two_crops(tiny, gl_ok):
    """The first view of a batch is its anchor crop, the second a crop of its own (it was the
    first view's features again when the SSL step ran apart from the critic's)."""
    learner = learner_with(tiny, *PIXELS, "agent.encoder.objective=simclr")
    online = conv_inputs(learner.encoder)
    learner.policy.set_training_mode(True)
    with learner.update_scope():
        learner.update(learner.replay_buffer.sample(16))
    anchor, *_, first_view, second_view = online
    assert len(online) == 6  # actor, actor(next), critic, the actor's Q, two views
    assert torch.equal(first_view, anchor) and not torch.equal(second_view, anchor)


def test_moco_v2s_augmentation_on_pixels_changes_the_frames_only(tiny, gl_ok):
    learner = learner_with(
        tiny,
        *PIXELS,
        "agent.encoder.objective=moco",
        "agent.encoder.moco.augmentation=v2",
        "agent.encoder.moco.queue_size=64",
    )
    batch = learner.replay_buffer.sample(16)
    view = learner.ssl.view(batch.observations)
    pixels = learner.encoder.layout.pixel_values
    assert not torch.equal(view[:, :pixels], batch.observations[:, :pixels])
    assert torch.equal(view[:, pixels:], batch.observations[:, pixels:])  # state and one-hot kept
    out = learner.update(batch)
    assert torch.isfinite(out["ssl_loss"])


def test_moco_v2s_augmentation_is_refused_on_state(tmp_path, capsys):
    items = [
        "agent.encoder.type=mlp",
        "agent.encoder.objective=moco",
        "agent.encoder.moco.augmentation=v2",
    ]
    assert main(["run", "quick", *items, f"runs_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "agent.encoder.moco" in err[0] and "type=pixels" in err[0]
