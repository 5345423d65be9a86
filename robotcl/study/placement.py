"""How many runs of a grid go at once, and where: as many as the cores, the host memory and each
GPU's free memory allow (``robotcl compare``'s default; ``workers=N`` sets the count).

A run wants :data:`THREADS_PER_RUN` core (a second torch thread speeds one state-based update up
by about 1.3x on the development machine, docs/benchmarks.md, so two runs on two cores do more
than one run on both; on a GPU a run's Python loop keeps one core busy), its replay buffer and SSL
memory in host memory beside a worker process's own :data:`PROCESS_HOST_BYTES`, and on a GPU a
CUDA context and the allocator's blocks (:data:`RUN_DEVICE_BYTES`, more with a pixel encoder).
The device figures are estimates until ``bench/gpu_check.sh`` has measured them on a lent GPU
(docs/benchmarks.md).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from robotcl.system import available_memory, gib

THREADS_PER_RUN = 1
PROCESS_HOST_BYTES = 3 * 2**29  # 1.5 GiB: torch, MuJoCo and the CUDA runtime in a worker
RUN_DEVICE_BYTES = {"state": 2**30, "pixels": 4 * 2**30}


@dataclass(frozen=True)
class Placement:
    """The number of runs at once, the GPUs they share, and why."""

    workers: int
    gpus: list[str]
    reason: str


def spread(device: str, count: int) -> list[str]:
    """The device of each of ``count`` runs: round robin over the GPUs when the config leaves
    the choice to robotcl (``auto``/``cuda``) and there are several."""
    import torch

    n = torch.cuda.device_count()
    if device in ("auto", "cuda") and n > 1:
        return [f"cuda:{k % n}" for k in range(count)]
    return [device] * count


def nvidia_smi(*args: str) -> str | None:
    """What ``nvidia-smi ARGS`` prints, or None where it cannot run (no NVIDIA driver)."""
    try:
        return subprocess.run(
            ["nvidia-smi", *args], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def gpus(device: str) -> list[tuple[str, int | None]]:
    """(name, free bytes or None if unknown) of each GPU a run on ``device`` may use, read
    from ``nvidia-smi`` so that this process never creates a CUDA context (its workers do)."""
    if device not in ("auto", "cuda") and not device.startswith("cuda"):
        return []
    import torch

    count = torch.cuda.device_count()  # through NVML: no CUDA context either
    found: list[tuple[str, int | None]] = [(f"GPU {k}", None) for k in range(count)]
    query = nvidia_smi("--query-gpu=name,memory.free", "--format=csv,noheader,nounits")
    try:
        rows = [line.rsplit(",", 1) for line in (query or "").strip().splitlines()]
        if len(rows) == count:
            found = [(name.strip(), int(float(free)) * 2**20) for name, free in rows]
    except ValueError:
        pass  # unreadable: names and memory unknown, the other limits apply
    if device.startswith("cuda:"):
        index = int(device.partition(":")[2])
        return found[index : index + 1]
    return found


def plan(
    device: str,
    pending: int,
    host_bytes_per_run: int,
    pixels: bool = False,
    workers: int | None = None,
) -> Placement:
    """How to run ``pending`` runs on ``device``: ``workers`` if given, else the most that fit
    the cores, the host memory and every GPU's free memory (at least one)."""
    found = gpus(device)
    names = [name for name, _ in found]
    where = f"on {len(found)} GPU(s) ({', '.join(dict.fromkeys(names))})" if found else "on the CPU"
    if workers is not None:
        return Placement(workers, names, f"{workers} run(s) at a time {where}: workers={workers}")
    cores = os.cpu_count() or 1
    limits = {f"{cores} cores / {THREADS_PER_RUN} a run": max(1, cores // THREADS_PER_RUN)}
    have = available_memory()
    per_run = host_bytes_per_run + PROCESS_HOST_BYTES
    if have is not None:
        limits[f"host memory {gib(have)} / {gib(per_run)} a run"] = max(1, have // per_run)
    known = [free for _, free in found if free is not None]
    if known:
        need = RUN_DEVICE_BYTES["pixels" if pixels else "state"]
        free = ", ".join(gib(f) for f in known)
        limits[f"GPU memory free {free} / {gib(need)} a run"] = max(
            1, sum(f // need for f in known)
        )
    limits[f"{pending} run(s) to go"] = max(1, pending)
    count = min(limits.values())
    why = "; ".join(f"{k} = {v}" for k, v in limits.items())
    return Placement(count, names, f"{count} run(s) at a time {where}: {why}")
