"""Speed figures for docs/benchmarks.md, each a ratio against a peer measured in the same process.

(a) D'Claw env steps/s against raw ``mj_step`` x frame_skip on the same model: the wrapper's
    overhead (observation, reward, target limiting, gymnasium checks).
(b) ContinualSAC gradient updates/s against stable-baselines3's SAC with the same hidden layers,
    batch size and replay data (ContinualSAC adds per-task heads, per-task alpha and the hooks).

    python bench/speed.py [--device cpu|cuda] [--updates 500] [--steps 4000]
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import mujoco
import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure

import robotcl.envs  # noqa: F401
from robotcl.agents.sac import ContinualSAC
from robotcl.envs import DCLAW_MAX_EPISODE_STEPS
from robotcl.envs.dclaw.env import FRAME_SKIP
from robotcl.envs.dclaw.model import RESET_POSE
from robotcl.envs.suites import make_suite


def env_speed(steps: int) -> tuple[float, float]:
    """Env steps/s, and raw mj_step x frame_skip replaying the very same controls and resets
    (so both integrate identical states and only the wrapper's work differs)."""
    env = gym.make("robotcl/DClawTurnT3-v0")
    inner = env.unwrapped
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 9)).astype(np.float32)
    ctrls = np.empty((steps, inner.model.nu))
    env.reset(seed=0)
    t = time.perf_counter()
    for i, a in enumerate(actions):
        *_, truncated, _ = env.step(a)
        ctrls[i] = inner.data.ctrl
        if truncated:
            env.reset()
    wrapped = steps / (time.perf_counter() - t)
    model, data = inner.model, mujoco.MjData(inner.model)

    def reset() -> None:
        mujoco.mj_resetData(model, data)
        data.qpos[:9] = RESET_POSE
        data.ctrl[:] = RESET_POSE
        mujoco.mj_forward(model, data)

    reset()
    t = time.perf_counter()
    for i, ctrl in enumerate(ctrls):
        data.ctrl[:] = ctrl
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        if (i + 1) % DCLAW_MAX_EPISODE_STEPS == 0:
            reset()
    raw = steps / (time.perf_counter() - t)
    same = np.allclose(data.qpos, inner.data.qpos)
    assert same, "raw replay diverged from the env: the comparison would be unfair"
    return wrapped, raw


def fill(model, env, n: int = 5000) -> None:
    rng = np.random.default_rng(0)
    obs = env.reset()
    for _ in range(n):
        action = rng.uniform(-1, 1, (1, 9)).astype(np.float32)
        next_obs, reward, done, infos = env.step(action)
        model.replay_buffer.add(obs, next_obs, action, reward, done, infos)
        obs = next_obs
    model.set_logger(configure(None, []))


def updates_per_second(model, updates: int) -> float:
    model.train(gradient_steps=20, batch_size=model.batch_size)  # warm-up
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    model.train(gradient_steps=updates, batch_size=model.batch_size)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return updates / (time.perf_counter() - t)


def sac_speed(device: str, updates: int) -> tuple[float, float]:
    suite = make_suite("dclaw10")
    common = dict(batch_size=256, learning_rate=3e-4, ent_coef="auto", device=device, seed=0)
    ours = ContinualSAC(
        env=ContinualSAC.wrap_env(suite.make_env(0)),
        num_tasks=len(suite),
        net_arch=[256, 256],
        activation="relu",
        layer_norm=False,
        update_after=0,
        **common,
    )
    ours.start_task(0, suite.make_env(0), seed=0)
    peer = SAC(
        "MlpPolicy",
        ContinualSAC.wrap_env(suite.make_env(0)),
        policy_kwargs={"net_arch": [256, 256]},
        learning_starts=0,
        **common,
    )
    fill(ours, ours.env)
    fill(peer, peer.env)
    rates = {"ours": [], "peer": []}
    for _ in range(3):  # interleave to share any drift in machine load
        rates["ours"].append(updates_per_second(ours, updates))
        rates["peer"].append(updates_per_second(peer, updates))
    return float(np.median(rates["ours"])), float(np.median(rates["peer"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--steps", type=int, default=4000)
    args = parser.parse_args()
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "-"
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, GPU {gpu}; mujoco {mujoco.__version__}, torch "
        f"{torch.__version__}, SB3 {stable_baselines3.__version__}"
    )
    wrapped, raw = env_speed(args.steps)
    print(
        f"(a) DClawTurnT3 env.step: {wrapped:8.0f} steps/s | raw mj_step x{FRAME_SKIP}: "
        f"{raw:8.0f} steps/s | wrapper overhead: env time / raw time = {raw / wrapped:.3f}"
    )
    ours, peer = sac_speed(args.device, args.updates)
    print(
        f"(b) updates/s on {args.device}, 2x256, batch 256: ContinualSAC {ours:7.1f} | "
        f"SB3 SAC {peer:7.1f} | ratio {ours / peer:.3f}"
    )


if __name__ == "__main__":
    main()
