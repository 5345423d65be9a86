"""Pixel observations: the wrapper's layout and stacking, D'Claw rendered through it, and the
frame replay that stores each frame once yet gives back exactly the observations it was given."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from counter_env import collect, pixel_env
from gymnasium.utils.env_checker import check_env

from robotcl.agents.frame_buffer import FrameReplayBuffer
from robotcl.agents.ssl_memory import ObservationMemory
from robotcl.envs.pixels import PixelLayout, PixelObservation


def test_the_wrapper_stacks_frames_in_the_declared_layout():
    env = pixel_env(5)
    layout = PixelLayout(frames=3, size=6, proprio=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (layout.width + 2,)
    images = layout.images(obs)
    assert images.shape == (9, 6, 6)
    assert (images[0] == images[3]).all() and (images[3] == images[6]).all()  # reset frame x3
    obs, *_ = env.step(np.zeros(1, np.float32))
    images = layout.images(obs)
    assert (images[1] == 0).all() and (images[7] == 1).all()  # green: step count 0, 0, 1
    assert obs[layout.pixel_values : layout.width].tolist() == [1.0, obs[layout.width - 1]]
    assert obs[-2:].tolist() == [0.0, 1.0]  # the one-hot stays last
    check_env(pixel_env(5).unwrapped, skip_render_check=True)


def test_dclaw_renders_pixel_observations_of_the_declared_shape(gl_ok):
    import robotcl.envs  # noqa: F401

    inner = gym.make("robotcl/DClawTurnT3-v0", render_mode="rgb_array", width=32, height=32)
    env = PixelObservation(inner, frames=3, size=32, proprio=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (3 * 3 * 32 * 32 + 21,)
    assert env.observation_space.contains(obs) and obs[: 3 * 3 * 32 * 32].std() > 1
    obs2, *_ = env.step(env.action_space.sample())
    again = PixelObservation(
        gym.make("robotcl/DClawTurnT3-v0", render_mode="rgb_array", width=32, height=32),
        3,
        32,
        True,
    )
    assert np.array_equal(again.reset(seed=0)[0], obs)  # rendering is deterministic
    env.close()
    again.close()


def test_pixel_observations_render_fast_by_default_with_the_goal_still_drawn(gl_ok):
    import mujoco

    from robotcl.config import load_config
    from robotcl.experiment import suite_of

    config = load_config("pixels-quick", [])
    assert config.pixels.render == "fast"
    suite = suite_of(config.model_copy(update={"num_tasks": 1}))
    env = suite.make_env(0)
    env.reset(seed=0)
    claw = env.unwrapped
    assert claw.render_quality == "fast"
    fast = claw.render()
    flags = claw._renderer.scene.flags
    assert (
        not flags[mujoco.mjtRndFlag.mjRND_SHADOW] and not flags[mujoco.mjtRndFlag.mjRND_REFLECTION]
    )
    assert claw.model.vis.quality.offsamples == 0
    claw.goal_marker = None  # the goal marker is still in the fast frame
    assert not np.array_equal(claw.render(), fast)
    env.close()
    frames = {}
    for quality in ("full", "fast"):  # the same state drawn both ways
        raw = gym.make("robotcl/DClawTurnT0-v0", render_mode="rgb_array", width=48, height=48,
                       render_quality=quality)  # fmt: skip
        raw.reset(seed=0)
        frames[quality] = raw.render()
        raw.close()
    assert not np.array_equal(frames["full"], frames["fast"])  # no shadows


@pytest.mark.parametrize("cut_every", [0, 5])  # episodes that end by a done, or by a bare reset
@pytest.mark.parametrize("capacity", [500, 37])  # all kept, and a ring that wrapped many times
def test_the_frame_replay_gives_back_exactly_the_observations_it_was_given(capacity, cut_every):
    """Every stack rebuilt from single frames is the one the env gave: none crosses an episode
    border, whether the episode ended with a done or the env was reset without one."""
    env = pixel_env(max_steps=7)
    layout = env.env.layout
    buffer = FrameReplayBuffer(capacity, layout, env.observation_space.shape[0], 1)
    given = collect(env, 300, buffer, cut_every=cut_every)
    kept = given[-buffer.size() :]
    slots = [(len(given) - len(kept) + k) % capacity for k in range(len(kept))]
    batch = buffer.rows(torch.as_tensor(slots))
    assert torch.equal(batch.observations, torch.as_tensor(np.stack([g[0] for g in kept])))
    assert torch.equal(batch.next_observations, torch.as_tensor(np.stack([g[1] for g in kept])))
    assert torch.equal(batch.actions, torch.as_tensor(np.stack([g[2] for g in kept])))
    assert batch.rewards[:, 0].tolist() == pytest.approx([g[3] for g in kept])
    assert batch.dones.sum() == 0  # time-limit ends are not terminal (bootstrapped)
    sample = buffer.sample(16)
    assert sample.observations.shape == (16, env.observation_space.shape[0])


def test_the_frame_replay_holds_single_frames_plus_little():
    env = pixel_env(max_steps=40, size=24)  # D'Claw's 40-step episodes
    layout = env.env.layout
    buffer = FrameReplayBuffer(1000, layout, env.observation_space.shape[0], 1)
    collect(env, 1000, buffer)
    frame_bytes = 3 * 24 * 24
    pixel_store = buffer.frames.nbytes + sum(f.nbytes for f in buffer.last_frames.values())
    assert pixel_store <= 1.1 * 1000 * frame_bytes  # one uint8 frame a transition, + <10%
    # stable-baselines3's buffer keeps both float32 stacks: 2 x 3 frames x 4 bytes
    assert pixel_store * 20 < 1000 * 2 * layout.pixel_values * 4


def test_the_frame_replay_states_its_size_before_it_is_filled():
    env = pixel_env(max_steps=1000, size=8)  # no episode ends: no extra frames
    layout = env.env.layout
    obs_dim = env.observation_space.shape[0]
    buffer = FrameReplayBuffer(50, layout, obs_dim, 1)
    collect(env, 60, buffer)
    assert buffer.nbytes() == FrameReplayBuffer.bytes_needed(50, layout, obs_dim, 1)


def test_the_ssl_memory_keeps_pixel_pairs_as_uint8_and_gives_them_back_exactly():
    env = pixel_env(max_steps=7)
    layout = env.env.layout
    buffer = FrameReplayBuffer(200, layout, env.observation_space.shape[0], 1)
    pairs = {task: collect(env, 100, buffer)[:50] for task in (0, 1)}
    memory = ObservationMemory(layout)
    for task, given in pairs.items():
        obs = torch.as_tensor(np.stack([g[0] for g in given]))
        next_obs = torch.as_tensor(np.stack([g[1] for g in given]))
        memory.add(task, [(obs[:20], next_obs[:20]), (obs[20:], next_obs[20:])])
    assert len(memory) == 100 and memory.tasks() == [0, 1]
    obs, next_obs = memory.sample(64, torch.Generator().manual_seed(0), exclude=1)
    known = {(g[0].tobytes(), g[1].tobytes()) for g in pairs[0]}
    rows = zip(obs.numpy(), next_obs.numpy(), strict=True)
    assert all((o.tobytes(), n.tobytes()) in known for o, n in rows)
    assert obs.dtype == next_obs.dtype == torch.float32
    width = env.observation_space.shape[0]
    assert memory.nbytes() == 100 * ObservationMemory.bytes_per_row(layout, width)
    # the stack and one more frame as uint8, against two float32 stacks
    assert memory.nbytes() * 5 < 100 * 2 * 4 * width
    assert ObservationMemory(layout).sample(4, torch.Generator(), exclude=0) is None
