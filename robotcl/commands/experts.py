"""``robotcl experts``: a single-task reference run of every task of a curriculum, and datasets
of them.

An expert is the preset's agent trained on one task alone (the ``single`` strategy, the task's
own network), cached under the run key of its own run (:mod:`robotcl.study.keys`; where:
:mod:`robotcl.study.references`). Every command that needs one (``robotcl
experts``, ``robotcl gap``: the behaviour-cloning data and the RL side's forward-transfer
reference curves) finds it there and trains nothing when it is present::

    <runs_dir>/experts/<suite>/<task>/<key>-s<seed>/   a run directory (config.yaml,
                                                       results.json, checkpoints/, tb/)
        expert.json                                    its task, key version, settings
        data/e<episodes>-n<noise>-s<seed>.npz, .json   datasets, each with its provenance

An expert's policy is the one at the end of its budget, or with ``experts.policy=best`` the one
at its best evaluation (its success, then its return; the run keeps it in
``checkpoints/best000/``). Measured on the study (docs/results.md, the gap), the best of its
one-episode deterministic evaluations was often an early or lucky success whose noisy rollouts
succeeded less often than the final policy's, so ``final`` stays the default. An expert whose
success (the preset's eval.metric, of that policy) is below ``experts.threshold``
is flagged in every table that uses it. A dataset holds ``experts.episodes`` rollouts of that
policy, with Gaussian noise of std ``experts.noise`` on the executed actions; the stored targets
are its noise-free actions (DART, Laskey et al. 2017), so the clone also sees how to recover
from small errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import robotcl
from robotcl.checkpoint import best_folder, best_score, latest_checkpoint
from robotcl.config import ExperimentConfig, ExpertsConfig, validate_config
from robotcl.errors import UserInputError
from robotcl.experiment import Experiment, suite_of
from robotcl.outputs import RunDirectory, atomic_write_text, check_writable
from robotcl.study.cells import Cell
from robotcl.study.executors import execute
from robotcl.study.grid import check_cells
from robotcl.study.references import (
    EXPERTS_FOLDER,
    expert_config,
    expert_dir,
    expert_success,
    note_older_experts,
    suite_name,
    write_expert_file,
)


@dataclass
class Expert:
    """One task's expert run and how it stands."""

    task: str
    run_dir: Path
    status: str  # cached (found finished), done (trained now), failed, stopped
    success: float | None = None
    threshold: float = 0.8
    error: str | None = None

    @property
    def flagged(self) -> bool:
        """Below the success threshold (or without a result)."""
        return self.success is None or self.success < self.threshold


def train_experts(config: ExperimentConfig, workers: int | None = None) -> list[Expert]:
    """Every task's expert: found in the cache, or trained now (in parallel, as ``robotcl
    compare`` places runs; ``workers`` sets how many at once). Raises KeyboardInterrupt after
    stopping them when interrupted (each keeps its last checkpoint; the next call resumes)."""
    suite = suite_of(config)
    if config.observation != "state":
        raise UserInputError(
            f"observation={config.observation}",
            "experts and their datasets are made on state observations",
            "observation=state",
        )
    check_writable(Path(config.runs_dir) / EXPERTS_FOLDER, "runs_dir")
    note_older_experts(config, suite.task_names)
    cells: list[tuple[Cell, dict[str, Any]]] = []
    experts: list[Expert] = []
    for task in suite.task_names:
        path = expert_dir(config, task)
        success = expert_success(path)
        experts.append(Expert(task, path, "cached", success, config.experts.threshold))
        cell = Cell(task, config.experts.seed, str(path), config.device)
        cell.status = "done" if success is not None else "pending"
        cells.append((cell, expert_config(config, task, path)))
    check_cells(cells)

    grid = {"workers": workers, "executor": "local", "ray_address": None}
    try:
        execute(cells, config, grid, desc=f"experts of {suite_name(config)}")
    finally:
        for (cell, _), expert in zip(cells, experts, strict=True):
            if expert.success is None:  # not found in the cache: trained (or tried) now
                expert.status, expert.error = cell.status, cell.error
                expert.success = expert_success(expert.run_dir)
                if expert.success is not None:  # the settings its key hashes, beside it
                    write_expert_file(config, expert.task, expert.run_dir)
    return experts


# -- datasets -------------------------------------------------------------------------------------


def dataset_path(
    expert: Expert, episodes: int, noise: float, seed: int, successful_only: bool = False
) -> Path:
    suffix = "-ok" if successful_only else ""
    return expert.run_dir / "data" / f"e{episodes}-n{noise:g}-s{seed}{suffix}.npz"


#: with ``experts.successful_only``: at most this many rollouts a kept episode are tried
TRIES_PER_EPISODE = 10


def _rollout(
    env: Any, learner: Any, strategy: Any, reset_seed: int, noise: float, rng: Any
) -> tuple[list[np.ndarray], list[np.ndarray], bool, float]:
    """One noisy episode of the expert on its one-task suite: its observations (the one-hot
    dropped), its noise-free actions, whether it succeeded and its return."""
    low, high = env.action_space.low, env.action_space.high
    obs, _ = env.reset(seed=reset_seed)
    done, total, info = False, 0.0, {}
    observations, actions = [], []
    while not done:
        with strategy.acting(0):
            clean = learner.act(obs[None], deterministic=True)[0]
        executed = clean + noise * rng.standard_normal(clean.shape) if noise else clean
        observations.append(obs[:-1])  # the one-hot of this one-task suite
        actions.append(clean)
        obs, reward, terminated, truncated, info = env.step(np.clip(executed, low, high))
        total += float(reward)
        done = terminated or truncated
    return observations, actions, bool(info.get("is_success", False)), total


def expert_dataset(
    expert: Expert, episodes: int, noise: float, seed: int = 0, successful_only: bool = False
) -> Path:
    """``expert``'s dataset of ``episodes`` rollouts (``successful_only``: of its first
    ``episodes`` successful rollouts); made once, see the module docstring."""
    path = dataset_path(expert, episodes, noise, seed, successful_only)
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    config = validate_config({**RunDirectory(expert.run_dir).read_config(), "progress": False})
    checkpoints = expert.run_dir / "checkpoints"
    best = best_score(checkpoints, 0) if config.keep_best else None
    experiment = Experiment(config)
    experiment.prepare(best_folder(checkpoints, 0) if best else latest_checkpoint(checkpoints))
    learner, strategy, suite = experiment.learner, experiment.strategy, experiment.suite
    experiment.evaluator.close()
    env = suite.make_env(0)
    rng = np.random.default_rng(seed)
    observations, actions, episode_ids, successes, returns = [], [], [], [], []
    tries, kept = TRIES_PER_EPISODE * episodes if successful_only else episodes, 0
    for attempt in range(tries):
        if kept == episodes:
            break
        obs, acts, success, total = _rollout(
            env, learner, strategy, seed * 100_003 + attempt, noise, rng
        )
        successes.append(success)
        returns.append(total)
        if success or not successful_only:
            episode_ids += [kept] * len(acts)
            observations += obs
            actions += acts
            kept += 1
    env.close()
    if kept < episodes:
        raise UserInputError(
            "experts.successful_only",
            f"the expert of {expert.task} succeeded in {kept} of {len(successes)} noisy "
            f"rollouts, fewer than experts.episodes={episodes}",
            "lower experts.episodes or experts.noise, or train the experts longer "
            "(experts.steps_per_task)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp,
        observations=np.asarray(observations, np.float32),
        actions=np.asarray(actions, np.float32),
        episodes=np.asarray(episode_ids, np.int32),
    )
    provenance = {
        "task": expert.task,
        "expert_run": str(expert.run_dir),
        "expert_success": expert.success,
        "expert_flagged": expert.flagged,
        "expert_policy": f"best (step {best['step']})" if best else "final",
        "episodes": episodes,
        "successful_only": successful_only,
        "rollouts": len(successes),
        "transitions": len(actions),
        "noise": noise,
        "seed": seed,
        "rollout_success": float(np.mean(successes)),
        "rollout_return": float(np.mean(returns)),
        "targets": "the expert's deterministic (noise-free) actions",
        "observations": "the env's observation without the task one-hot",
        "sha256": hashlib.sha256(tmp.read_bytes()).hexdigest(),
        "robotcl": robotcl.__version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.replace(tmp, path)
    atomic_write_text(path.with_suffix(".json"), json.dumps(provenance, indent=1))
    return path


def dataset_of(expert: Expert, settings: ExpertsConfig) -> Path:
    """``expert``'s dataset as ``settings`` (a config's ``experts``) ask for it."""
    return expert_dataset(
        expert, settings.episodes, settings.noise, settings.seed, settings.successful_only
    )


def gather_datasets(
    config: ExperimentConfig, experts: list[Expert], folder: Path
) -> dict[str, dict[str, Any]]:
    """Every expert's dataset (made where missing) copied into ``folder`` as ``<task>.npz`` with
    its provenance ``<task>.json``: the ``agent.expert_data`` of the bc agent. Returns the
    provenance by task."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    settings = config.experts
    for expert in experts:
        source = dataset_of(expert, settings)
        shutil.copyfile(source, folder / f"{expert.task}.npz")
        shutil.copyfile(source.with_suffix(".json"), folder / f"{expert.task}.json")
        out[expert.task] = json.loads(source.with_suffix(".json").read_text())
    return out
