"""What this machine has: memory, and what a replay buffer of a given size would need."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from gymnasium import spaces


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), or None."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def replay_bytes(capacity: int, observation: spaces.Space, action: spaces.Space) -> int:
    """Bytes of a stable-baselines3 ``ReplayBuffer`` of ``capacity`` transitions: observations
    and next observations, actions, and float32 rewards, dones and timeouts."""
    obs = int(np.prod(observation.shape)) * np.dtype(observation.dtype).itemsize
    act = int(np.prod(action.shape)) * np.dtype(action.dtype).itemsize
    return capacity * (2 * obs + act + 3 * 4)


def peak_process_bytes() -> int | None:
    """The largest resident memory this process has had (Linux, macOS), or None."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS: bytes; KiB


def gib(n: float) -> str:
    """``n`` bytes in GiB, for messages."""
    return f"{n / 2**30:.1f} GiB"
