"""Pixel observations: rendered steps/s of the pixel env against the raw MuJoCo renderer on the
same model, and replay memory per 100k pixel transitions against single uint8 frames.

(a) D'Claw T3 with ``PixelObservation`` (100 x 100, 3 frames, with the state) against a loop of
    raw ``mj_step`` x 40 + ``mujoco.Renderer.render()`` on the same model (goal: the env within
    20% of raw). Needs an offscreen GL (MUJOCO_GL=egl or osmesa).
(b) ``FrameReplayBuffer`` bytes per 100k transitions of that observation, filled with D'Claw's
    40-step episodes, against one uint8 frame per transition (goal: at most +10%) and against
    stable-baselines3's ReplayBuffer (both float32 stacks).

    MUJOCO_GL=egl python bench/pixels.py [--steps 400] [--size 100]
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import mujoco
import numpy as np

import robotcl.envs  # noqa: F401
from robotcl.agents.frame_buffer import FrameReplayBuffer
from robotcl.envs.dclaw.env import FRAME_SKIP
from robotcl.envs.dclaw.model import CAMERA
from robotcl.envs.pixels import PixelLayout, PixelObservation
from robotcl.system import replay_bytes


def render_speed(steps: int, size: int) -> tuple[float, float]:
    env = PixelObservation(
        gym.make("robotcl/DClawTurnT3-v0", render_mode="rgb_array", width=size, height=size),
        frames=3,
        size=size,
        proprio=True,
    )
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 9)).astype(np.float32)
    env.reset(seed=0)
    for a in actions[:20]:  # warm-up: the GL context and the first frames
        env.step(a)
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        *_, truncated, _ = env.step(a)
        if truncated:
            env.reset()
    wrapped = steps / (time.perf_counter() - start)
    model = env.unwrapped.model
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height=size, width=size)
    for _ in range(20):
        renderer.update_scene(data, camera=CAMERA)
        renderer.render()
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        renderer.update_scene(data, camera=CAMERA)
        renderer.render()
    raw = steps / (time.perf_counter() - start)
    renderer.close()
    env.close()
    return wrapped, raw


def replay_memory(size: int, transitions: int = 4000) -> tuple[float, float, float]:
    """Bytes per 100k transitions: the frame replay, single frames, SB3's buffer."""
    frames = 3
    obs_dim = frames * 3 * size * size + 21 + 10
    layout = PixelLayout(frames, size, 21)
    buffer = FrameReplayBuffer(transitions, layout, obs_dim, 9)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, obs_dim).astype(np.float32)
    for t in range(transitions):
        nxt = rng.integers(0, 255, obs_dim).astype(np.float32)
        end = (t + 1) % 40 == 0
        buffer.add(obs[None], nxt[None], np.zeros((1, 9), np.float32), np.zeros(1),
                   np.array([end]), [{"TimeLimit.truncated": end}])  # fmt: skip
        obs = nxt
    scale = 100_000 / transitions
    single = 100_000 * 3 * size * size
    space = gym.spaces.Box(0, 255, (obs_dim,), np.float32)
    sb3 = replay_bytes(100_000, space, gym.spaces.Box(-1, 1, (9,), np.float32))
    return buffer.nbytes() * scale, single, sb3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    gib = 2**30
    ours, single, sb3 = replay_memory(args.size)
    print(f"(b) replay per 100k transitions ({args.size}x{args.size}, 3 frames, state + one-hot):")
    print(f"    FrameReplayBuffer {ours / gib:.2f} GiB | single uint8 frames {single / gib:.2f} "
          f"GiB (x{ours / single:.3f}) | SB3 ReplayBuffer {sb3 / gib:.1f} GiB")  # fmt: skip
    if not os.environ.get("MUJOCO_GL"):
        print("(a) skipped: set MUJOCO_GL=egl (or osmesa) for offscreen rendering")
        return
    wrapped, raw = render_speed(args.steps, args.size)
    print(f"(a) rendered steps/s: pixel env {wrapped:.0f} | raw mj_step x40 + render {raw:.0f} | "
          f"env time / raw time {raw / wrapped:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
