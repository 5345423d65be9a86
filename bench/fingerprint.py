"""Which parts of a run give the same bits on two machines: hashes of a state rollout, of a
rendered pixel observation and of a convolution's forward and backward pass on the CPU.

Seeded state runs of robotcl reproduce bit for bit across machines; seeded pixel runs do not
(docs/results.md, reproducing a number). Run this on both machines and compare the lines: the
first line that differs names the part that follows the machine.

    MUJOCO_GL=egl python bench/fingerprint.py
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import numpy as np
import torch

from robotcl.envs.suites import make_suite


def _digest(*arrays: np.ndarray) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()[
        :16
    ]


def rollout(observation: str) -> str:
    """20 steps of T2 from a seeded reset under fixed actions; the last observation's hash."""
    suite = make_suite(
        "dclaw10", tasks=["T2"], observation=observation, pixel_size=48, pixel_render="fast"
    )
    env = suite.make_env(0)
    obs, _ = env.reset(seed=0)
    for k in range(20):
        obs, *_ = env.step(np.full(env.action_space.shape, 0.3 * np.sin(k), np.float32))
    env.close()
    return _digest(np.asarray(obs))


def convolution() -> str:
    """A seeded conv stack's output and first-layer gradient on a seeded batch of 40x40 crops."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(9, 32, 3, 2), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, 1)
    )
    loss = net(torch.rand(64, 9, 40, 40)).square().sum()
    loss.backward()
    return _digest(loss.detach().numpy(), net[0].weight.grad.numpy())


def cpu() -> str:
    """The CPU's model name and its widest vector extension (Linux), else the platform's."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "?"
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    widest = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "none")
    return f"{model} ({widest})"


def main() -> None:
    print(f"machine: {cpu()}, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")
    print(f"state rollout      {rollout('state')}")
    print(f"pixel observation  {rollout('pixels+proprio')}")
    print(f"convolution        {convolution()}")


if __name__ == "__main__":
    main()
