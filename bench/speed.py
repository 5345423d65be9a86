"""Speed figures for docs/benchmarks.md, each a ratio against a peer measured in the same process.

(a) D'Claw env steps/s against raw ``mj_step`` x frame_skip on the same model: the wrapper's
    overhead (observation, reward, target limiting, gymnasium checks).
(m) the machine's matmul throughput at the update's layer shape, and the FLOPs of one update
    (counted by torch's FlopCounterMode): the update rate that the matmuls alone would allow.
(b) ContinualSAC gradient updates/s against stable-baselines3's SAC with the same hidden layers,
    batch size and replay data (ContinualSAC adds per-task heads, per-task alpha and the hooks),
    for each torch thread count asked for, with the fraction of the limit (m) each reaches.
(c) training steps/s (env step + update, one update per step as in corl-gap) of
    ContinualSAC.learn_task against SB3's own ``SAC.learn`` at the same settings.

    python bench/speed.py [--device cpu|cuda] [--threads 1,2] [--updates 500] [--steps 4000]
        [--train-steps 3000]
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


def matmul_gflops(seconds: float = 1.0) -> float:
    """GFLOP/s of (256 x 256) @ (256 x 256) fp32 matmuls: the update's dominant kernel shape
    (batch 256, hidden 256), at the current torch thread count."""
    a, b, out = torch.randn(256, 256), torch.randn(256, 256), torch.empty(256, 256)
    for _ in range(50):
        torch.mm(a, b, out=out)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        for _ in range(100):
            torch.mm(a, b, out=out)
        n += 100
    return n * 2 * 256**3 / (time.perf_counter() - t) / 1e9


def update_gflop(model) -> float:
    """GFLOP of one gradient update of ``model`` (forward, backward and Adam's matmul-free
    steps: only the matmuls count), by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model.train(gradient_steps=1, batch_size=model.batch_size)
    return counter.get_total_flops() / 1e9


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


def sac_pair(device: str, warm_up: int = 0, **extra) -> tuple[ContinualSAC, SAC]:
    """ContinualSAC and SB3's SAC at the same settings (2x256 ReLU, batch 256, lr 3e-4, auto
    alpha) on T3 of dclaw10; ``warm_up``: random steps before updates (both)."""
    suite = make_suite("dclaw10")
    common = dict(
        batch_size=256, learning_rate=3e-4, ent_coef="auto", device=device, seed=0, **extra
    )
    ours = ContinualSAC(
        env=ContinualSAC.wrap_env(suite.make_env(0)),
        num_tasks=len(suite),
        net_arch=[256, 256],
        activation="relu",
        layer_norm=False,
        random_steps=warm_up,
        update_after=warm_up,
        **common,
    )
    ours.start_task(3, suite.make_env(3), seed=0)
    peer = SAC(
        "MlpPolicy",
        ContinualSAC.wrap_env(suite.make_env(3)),
        policy_kwargs={"net_arch": [256, 256]},
        learning_starts=warm_up,
        **common,
    )
    return ours, peer


def sac_speed(device: str, updates: int) -> tuple[float, float, float]:
    """Updates/s of ContinualSAC and SB3 SAC (median of three interleaved rounds), and the
    GFLOP of one update (SB3's: the same matmuls)."""
    ours, peer = sac_pair(device)
    fill(ours, ours.env)
    fill(peer, peer.env)
    rates = {"ours": [], "peer": []}
    for _ in range(3):  # interleave to share any drift in machine load
        rates["ours"].append(updates_per_second(ours, updates))
        rates["peer"].append(updates_per_second(peer, updates))
    return float(np.median(rates["ours"])), float(np.median(rates["peer"])), update_gflop(peer)


def training_speed(device: str, steps: int, warm_up: int = 256) -> tuple[float, float]:
    """Env steps/s of a training loop with one update per step after ``warm_up`` random steps:
    ContinualSAC.learn_task against SB3's SAC.learn (the same steps, settings and env)."""
    ours, peer = sac_pair(device, warm_up, train_freq=1, gradient_steps=1)
    ours.set_logger(configure(None, []))
    t = time.perf_counter()
    ours.learn_task(steps)
    mine = steps / (time.perf_counter() - t)
    t = time.perf_counter()
    peer.learn(steps)
    return mine, steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--threads", default=str(torch.get_num_threads()))
    parser.add_argument("--train-steps", type=int, default=3000)
    args = parser.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
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
    for n in threads:
        torch.set_num_threads(n)
        ours, peer, gflop = sac_speed(args.device, args.updates)
        line = (
            f"(b) updates/s on {args.device}, {n} thread(s), 2x256, batch 256: ContinualSAC "
            f"{ours:7.1f} | SB3 SAC {peer:7.1f} | ratio {ours / peer:.3f}"
        )
        if args.device == "cpu":
            rate = matmul_gflops()
            limit = rate / gflop
            line += (
                f"\n(m)   matmul {rate:6.1f} GFLOP/s, update {gflop:.3f} GFLOP -> limit "
                f"{limit:6.1f} updates/s; ContinualSAC at {ours / limit:.0%}, SB3 at "
                f"{peer / limit:.0%}"
            )
        print(line)
    mine, theirs = training_speed(args.device, args.train_steps)
    print(
        f"(c) training steps/s on {args.device}, {threads[-1]} thread(s), one update per step: "
        f"ContinualSAC.learn_task {mine:6.1f} | SB3 SAC.learn {theirs:6.1f} | ratio "
        f"{mine / theirs:.3f}"
    )


if __name__ == "__main__":
    main()
