"""How many runs of a grid go at once and on which device (robotcl.study.placement)."""

from __future__ import annotations

import subprocess

import pytest
import torch

from robotcl.study import placement
from robotcl.study.placement import plan, spread

GIB = 2**30


@pytest.fixture
def machine(monkeypatch):
    """A 16-core machine with 64 GiB available and, by default, one H100 with 79 GiB free."""
    monkeypatch.setattr(placement.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(placement, "available_memory", lambda: 64 * GIB)
    cards = [("NVIDIA H100 80GB HBM3", 79 * GIB)]
    monkeypatch.setattr(placement, "gpus", lambda device: [] if device == "cpu" else cards)
    return cards


def test_runs_fill_the_cores_first_on_a_large_gpu(machine):
    p = plan("auto", pending=35, host_bytes_per_run=GIB // 2)
    assert p.workers == 16  # 16 cores / 1 thread; 64 GiB / 2 GiB = 32; 79 GPU runs
    assert p.gpus == ["NVIDIA H100 80GB HBM3"]
    for part in ("16 cores / 1 a run = 16", "/ 2.0 GiB a run = 32", "= 79", "35 run(s) to go"):
        assert part in p.reason
    assert p.reason.startswith("16 run(s) at a time on 1 GPU(s) (NVIDIA H100 80GB HBM3)")


def test_the_scarcest_resource_decides(machine):
    assert plan("auto", pending=3, host_bytes_per_run=0).workers == 3  # fewer runs than room
    big_replay = plan("auto", pending=35, host_bytes_per_run=14 * GIB)
    assert big_replay.workers == 4  # 64 GiB / (14 + 1.5) GiB
    machine[0] = ("small card", 7 * GIB)
    pixels = plan("auto", pending=35, host_bytes_per_run=0, pixels=True)
    assert pixels.workers == 1 and "/ 4.0 GiB a run = 1" in pixels.reason
    assert plan("auto", pending=35, host_bytes_per_run=0).workers == 7


def test_workers_given_are_kept_and_the_cpu_has_no_gpu_limit(machine):
    assert plan("auto", pending=35, host_bytes_per_run=0, workers=3).workers == 3
    cpu = plan("cpu", pending=35, host_bytes_per_run=0)
    assert cpu.workers == 16 and cpu.gpus == [] and "on the CPU" in cpu.reason
    assert "GPU" not in cpu.reason


def test_gpus_are_read_from_nvidia_smi_without_a_cuda_context(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: pytest.fail("CUDA context"))

    def smi(*args, **kwargs):
        return subprocess.CompletedProcess(args, 0, "NVIDIA H200, 140000\nNVIDIA H200, 1024\n")

    monkeypatch.setattr(placement.subprocess, "run", smi)
    assert placement.gpus("auto") == [("NVIDIA H200", 140000 * 2**20), ("NVIDIA H200", GIB)]
    assert placement.gpus("cuda:1") == [("NVIDIA H200", GIB)]
    assert placement.gpus("cpu") == []

    def missing(*args, **kwargs):
        raise FileNotFoundError("nvidia-smi")

    monkeypatch.setattr(placement.subprocess, "run", missing)
    assert placement.gpus("cuda") == [("GPU 0", None), ("GPU 1", None)]  # memory unknown


def test_runs_spread_over_every_gpu_when_the_config_leaves_the_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert spread("auto", 5) == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert spread("cuda:1", 2) == ["cuda:1", "cuda:1"]  # an explicit device is kept
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert spread("auto", 2) == ["auto", "auto"]
