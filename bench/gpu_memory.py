"""Device memory of one training run on a GPU, to check robotcl.study.placement's estimates
(RUN_DEVICE_BYTES: 1 GiB a state run, 4 GiB a pixel run).

Builds ContinualSAC at the corl-gap sizes (2x256, batch 256) on ``cuda``, fills its replay with
random transitions, runs ``--updates`` updates, and prints the allocator's peak and the whole
process's use as nvidia-smi reports it (CUDA context included).

    python bench/gpu_memory.py [--updates 200]
"""

from __future__ import annotations

import argparse
import os

import torch
from speed import fill, sac_pair  # bench/speed.py, beside this script

from robotcl.study.placement import nvidia_smi


def process_memory_mib() -> float | None:
    """This process's GPU memory in MiB according to nvidia-smi (context included), or None."""
    out = nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
    if out is None:
        return None
    for line in out.strip().splitlines():
        pid, used = (x.strip() for x in line.split(","))
        if int(pid) == os.getpid():
            return float(used)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU")
    learner, _ = sac_pair("cuda")
    fill(learner, learner.env)
    learner.train(gradient_steps=args.updates, batch_size=learner.batch_size)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_reserved() / 2**20
    print(
        f"state run, 2x256, batch 256, {args.updates} updates on {torch.cuda.get_device_name()}: "
        f"allocator peak {peak:.0f} MiB, process {process_memory_mib()} MiB (nvidia-smi)"
    )


if __name__ == "__main__":
    main()
