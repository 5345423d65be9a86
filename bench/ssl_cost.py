"""What a contrastive objective adds to a ContinualSAC update, measured side by side.

For each objective, gradient updates/s of ContinualSAC with an encoder and that objective
against the same learner with the same encoder and no objective (the peer: plain SAC on that
encoder), on the same replay data; the median of interleaved rounds. Each update runs as in
training (``update_scope``: on pixels, one crop of a batch shared by the networks, CURL's), with
the SSL loss stepped apart (``ssl_update=separate``, CURL's). CURL reports a small overhead for
its contrastive loss; robotcl's goal is at most +30% time per update for curl.

Default: the state encoder (MLP) on D'Claw's state, batch 256. ``--pixels``: CURL's
convolutional encoder on pixels+proprio (``--size`` renders, 100; 3 frames; ``--crop``, 84),
batch 128 (CURL's pixel SAC uses 128-512), with crossmodal among the objectives; the frame
replay is filled with random frames, as rendering is not what is timed there; rendering is timed
apart: env steps/s of the pixel task, its frames drawn full (MuJoCo's shadows, reflections,
multisampling) and fast (``pixels.render``, the default), against the same task on state (the
peer), so the costs of a pixel step can be set side by side.

    python bench/ssl_cost.py [--pixels [--size 48 --crop 40] [--frames-only]] [--updates 300]
                             [--rounds 3] [--batch N] [--device cpu|cuda]
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
PIXEL_OBJECTIVES = (*OBJECTIVES, "crossmodal")
TRANSITIONS = 3000


def learner(
    name: str, device: str, pixels: bool, batch: int, size: int = 100, crop: int = 84
) -> ContinualSAC:
    objective, _, queue = name.partition("-")
    observation = "pixels+proprio" if pixels else "state"
    suite = make_suite("dclaw10", observation=observation, pixel_size=size)
    env = suite.make_env(0)
    encoder = {
        "type": "pixels" if pixels else "mlp",
        "crop": crop,
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
        batch_size=batch,
        buffer_size=TRANSITIONS,
        encoder=encoder,
        pixel_layout=suite.layout,
        seed=0,
        device=device,
    )
    agent.set_logger(configure(None, []))
    agent.start_task(0, env, seed=0)
    fill(agent, env, suite.layout)
    return agent


def fill(agent: ContinualSAC, env, layout) -> None:
    """Transitions of random actions on the task's state; for pixels, random frames and states
    (rendering is not what is timed)."""
    rng = np.random.default_rng(0)
    width = int(env.observation_space.shape[0])

    def add(obs: np.ndarray, nxt: np.ndarray, action: np.ndarray, reward: float) -> None:
        agent.replay_buffer.add(obs[None], nxt[None], action[None], np.array([reward]),
                                np.array([False]), [{}])  # fmt: skip

    if layout is None:
        obs, _ = env.reset(seed=0)
        for _ in range(TRANSITIONS):
            action = rng.uniform(-1, 1, 9).astype(np.float32)
            nxt, reward, _, truncated, _ = env.step(action)
            add(obs, nxt, action, float(reward))
            obs = env.reset()[0] if truncated else nxt
        return
    one_hot = np.eye(width - layout.width, dtype=np.float32)[0]

    def random_obs() -> np.ndarray:
        frames = rng.integers(0, 256, layout.pixel_values)
        return np.concatenate([frames, rng.uniform(-1, 1, layout.proprio), one_hot])

    obs = random_obs().astype(np.float32)
    for _ in range(TRANSITIONS):
        nxt = random_obs().astype(np.float32)
        add(obs, nxt, rng.uniform(-1, 1, 9).astype(np.float32), 0.0)
        obs = nxt


def updates_per_second(agent: ContinualSAC, updates: int, batch: int) -> float:
    batches = [agent.replay_buffer.sample(batch) for _ in range(updates)]
    agent.policy.set_training_mode(True)
    with agent.update_scope():
        agent.update(batches[0])  # warm-up
    if agent.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for b in batches:
        with agent.update_scope():
            agent.update(b)
    if agent.device.type == "cuda":
        torch.cuda.synchronize()
    return updates / (time.perf_counter() - start)


def env_steps_per_second(observation: str, size: int, steps: int, render: str = "fast") -> float:
    """Random-action steps/s of D'Claw T0 seen as ``observation`` (resets included), frames
    drawn at ``render`` quality (``pixels.render``)."""
    suite = make_suite("dclaw10", observation=observation, pixel_size=size, pixel_render=render)
    env = suite.make_env(0)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 9).astype(np.float32))
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", action="store_true", help="CURL's pixel encoder")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None, help="256 state, 128 pixels")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=100, help="--pixels: render size (100)")
    parser.add_argument("--crop", type=int, default=84, help="--pixels: crop size (84)")
    parser.add_argument("--steps", type=int, default=400, help="--pixels: env steps timed")
    parser.add_argument("--frames-only", action="store_true", help="--pixels: no updates")
    args = parser.parse_args()
    if args.pixels and args.frames_only:
        frame_costs(args.size, args.steps)
        return
    batch = args.batch or (128 if args.pixels else 256)
    names = PIXEL_OBJECTIVES if args.pixels else OBJECTIVES
    agents = {
        name: learner(name, args.device, args.pixels, batch, args.size, args.crop) for name in names
    }
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, agent in agents.items():
            rates[name].append(updates_per_second(agent, args.updates, batch))
    base = statistics.median(rates["none"])
    what = (
        f"pixels+proprio: CURL's conv encoder (4x32 3x3 convs) on 3 stacked {args.crop}x"
        f"{args.crop} crops of {args.size}x{args.size} renders -> 50"
        if args.pixels
        else "state encoder 31 -> 256 -> 50"
    )
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, batch {batch}, "
          "2x256 SAC,")  # fmt: skip
    print(f"{what}; median of {args.rounds} rounds of {args.updates}")
    print(f"{'objective':<10} {'updates/s':>10} {'time vs no SSL':>15}")
    for name in names:
        rate = statistics.median(rates[name])
        print(f"{name:<10} {rate:>10.1f} {base / rate:>14.2f}x")
    if args.pixels:
        frame_costs(args.size, args.steps)


def frame_costs(size: int, steps: int) -> None:
    """Env steps/s on state against rendered at each ``pixels.render`` quality, side by side."""
    state = env_steps_per_second("state", size, steps)
    print(f"env steps/s, D'Claw T0, {steps} random steps: state {state:.0f}")
    frame = {}
    for render in ("full", "fast"):
        pixels = env_steps_per_second("pixels+proprio", size, steps, render)
        frame[render] = 1000 / pixels - 1000 / state
        print(f"  rendered at {size}x{size}, pixels.render={render}: {pixels:.0f} "
              f"({state / pixels:.1f}x the time; {frame[render]:.1f} ms a frame)")  # fmt: skip
    print(f"  a fast frame costs {frame['full'] / frame['fast']:.1f}x less than a full one")


if __name__ == "__main__":
    main()
