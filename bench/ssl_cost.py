"""What a contrastive objective adds to a ContinualSAC update, measured side by side.

For each objective, gradient updates/s of ContinualSAC with a state encoder and that objective
against the same learner with the same encoder and no objective (the peer), on the same replay
data; the median of interleaved rounds. CURL reports a small overhead for its contrastive loss;
robotcl's goal is at most +30% time per update for curl. Pixel encoders follow once pixel
observations land.

    python bench/ssl_cost.py [--updates 300] [--rounds 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from stable_baselines3.common.logger import configure

import robotcl.envs  # noqa: F401
from robotcl.agents.sac import ContinualSAC
from robotcl.envs.suites import make_suite

OBJECTIVES = ("none", "curl", "moco", "moco-4096", "simclr", "temporal")


def learner(name: str, device: str) -> ContinualSAC:
    objective, _, queue = name.partition("-")
    suite = make_suite("dclaw10")
    env = suite.make_env(0)
    encoder = {
        "type": "mlp",
        "feature_dim": 50,
        "hidden": 256,
        "objective": objective,
        "queue_size": int(queue or 65_536),
        "ssl_weight": 1.0,
        "ssl_every": 1,
        "actor_gradients": False,
        "critic_gradients": True,
        "memory_ratio": 0.0,
        "memory_per_task": 10_000,
    }
    agent = ContinualSAC(
        env=ContinualSAC.wrap_env(env),
        num_tasks=len(suite),
        net_arch=[256, 256],
        activation="relu",
        layer_norm=False,
        batch_size=256,
        buffer_size=10_000,
        encoder=encoder,
        seed=0,
        device=device,
    )
    agent.set_logger(configure(None, []))
    agent.start_task(0, env, seed=0)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for _ in range(5000):  # random transitions of the suite's observation
        action = rng.uniform(-1, 1, 9).astype(np.float32)
        nxt, reward, _, truncated, _ = env.step(action)
        agent.replay_buffer.add(obs[None], nxt[None], action[None], np.array([reward]),
                                np.array([False]), [{}])  # fmt: skip
        obs = env.reset()[0] if truncated else nxt
    return agent


def updates_per_second(agent: ContinualSAC, updates: int) -> float:
    batches = [agent.replay_buffer.sample(256) for _ in range(updates)]
    agent.update(batches[0])  # warm-up
    if agent.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches:
        agent.update(batch)
    if agent.device.type == "cuda":
        torch.cuda.synchronize()
    return updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    agents = {name: learner(name, args.device) for name in OBJECTIVES}
    rates: dict[str, list[float]] = {name: [] for name in OBJECTIVES}
    for _ in range(args.rounds):
        for name, agent in agents.items():
            rates[name].append(updates_per_second(agent, args.updates))
    base = statistics.median(rates["none"])
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, batch 256, 2x256 SAC,")
    print(f"state encoder 31 -> 256 -> 50; median of {args.rounds} rounds of {args.updates}")
    print(f"{'objective':<10} {'updates/s':>10} {'time vs no SSL':>15}")
    for name in OBJECTIVES:
        rate = statistics.median(rates[name])
        print(f"{name:<10} {rate:>10.1f} {base / rate:>14.2f}x")


if __name__ == "__main__":
    main()
