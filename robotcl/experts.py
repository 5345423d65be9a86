"""Experts: a single-task reference run of every task of a curriculum, and datasets of them.

An expert is the preset's agent trained on one task alone (the ``single`` strategy, the task's
own network), cached by what decides its result: the suite, the task, the observation, the agent
settings, its steps, the evaluation and its seed. Every command that needs one (``robotcl
experts``, ``robotcl gap``: the behaviour-cloning data and the RL side's forward-transfer
reference curves) finds it there and trains nothing when it is present::

    <runs_dir>/experts/<suite>/<task>/<key>-s<seed>/   a run directory (config.yaml,
                                                       results.json, checkpoints/, tb/)
        expert.json                                    the settings the key hashes
        data/e<episodes>-n<noise>-s<seed>.npz, .json   datasets, each with its provenance

An expert whose final success (the preset's eval.metric) is below ``experts.threshold`` is flagged
in every table that uses it. A dataset holds ``experts.episodes`` rollouts of the expert, with
Gaussian noise of std ``experts.noise`` on the executed actions; the stored targets are the
expert's noise-free actions (DART, Laskey et al. 2017), so the clone also sees how to recover
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
from robotcl.config import ExperimentConfig, validate_config
from robotcl.errors import UserInputError
from robotcl.outputs import atomic_write_text, check_writable

EXPERTS_FOLDER = "experts"


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


def _suite_identity(config: ExperimentConfig) -> str:
    """A registered suite by name; a suite file by its content (moved: same, edited: not)."""
    from robotcl.envs.suite_file import is_suite_file

    if is_suite_file(config.suite):
        return "file:" + hashlib.sha256(Path(config.suite).read_bytes()).hexdigest()[:16]
    return config.suite


def expert_settings(config: ExperimentConfig, task: str) -> dict[str, Any]:
    """What an expert's result depends on (its cache key hashes this)."""
    return {
        "suite": _suite_identity(config),
        "task": task,
        "observation": config.observation,
        "pixels": config.pixels.model_dump() if config.observation != "state" else None,
        "agent": config.agent.model_dump(),
        "steps_per_task": expert_steps(config),
        "eval": config.eval.model_dump(),
        "seed": config.experts.seed,
    }


def expert_steps(config: ExperimentConfig) -> int:
    """Env steps of each expert: ``experts.steps_per_task``, or the preset's."""
    return config.experts.steps_per_task or config.steps_per_task


def suite_name(config: ExperimentConfig) -> str:
    """The suite's name in the cache: a registered name, or a suite file's stem."""
    return Path(config.suite).stem


def expert_dir(config: ExperimentConfig, task: str) -> Path:
    """Where ``task``'s expert of ``config`` lives."""
    settings = expert_settings(config, task)
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(config.runs_dir) / EXPERTS_FOLDER / suite_name(config) / task
    return (folder / f"{key}-s{config.experts.seed}").absolute()


def expert_config(config: ExperimentConfig, task: str, run_dir: Path) -> dict[str, Any]:
    """The run of ``task``'s expert: the preset on that task alone with the single strategy."""
    data = config.model_dump()
    data.update(
        name=EXPERTS_FOLDER,
        tasks=[task],
        num_tasks=None,
        strategy=["single"],
        seed=config.experts.seed,
        steps_per_task=expert_steps(config),
        run_dir=str(run_dir),
        reference=None,
        overwrite=False,
    )
    data["video"]["enabled"] = False
    data["probe"]["samples"] = 0
    for name in config.model_extra or {}:  # the preset's strategy settings do not apply
        data.pop(name, None)
    return validate_config(data).model_dump()


def expert_success(run_dir: Path) -> float | None:
    """The expert's final success on its task (its eval.metric), or None if unfinished."""
    from robotcl.compare import finished_results

    results = finished_results(run_dir)
    if results is None:
        return None
    return float(results["R"][results["metric_mode"]]["success"][-1][0])


def finished_experts(config: ExperimentConfig, tasks: list[str]) -> list[str]:
    """The run directories of the finished experts of ``tasks`` under ``config``'s settings
    (``reference=experts``); a one-line error names the first one missing."""
    paths = []
    for task in tasks:
        path = expert_dir(config, task)
        if expert_success(path) is None:
            raise UserInputError(
                "reference=experts",
                f"no finished expert of {task} with these settings ({path})",
                "run robotcl experts with the same preset and settings first",
            )
        paths.append(str(path))
    return paths


def train_experts(config: ExperimentConfig, workers: int | None = None) -> list[Expert]:
    """Every task's expert: found in the cache, or trained now (in parallel, as ``robotcl
    compare`` places runs; ``workers`` sets how many at once). Raises KeyboardInterrupt after
    stopping them when interrupted (each keeps its last checkpoint; the next call resumes)."""
    from robotcl.compare import GridRun, _check_cells, execute
    from robotcl.experiment import suite_of

    suite = suite_of(config)
    if config.observation != "state":
        raise UserInputError(
            f"observation={config.observation}",
            "experts and their datasets are made on state observations",
            "observation=state",
        )
    check_writable(Path(config.runs_dir) / EXPERTS_FOLDER, "runs_dir")
    cells: list[tuple[GridRun, dict[str, Any]]] = []
    experts: list[Expert] = []
    for task in suite.task_names:
        path = expert_dir(config, task)
        success = expert_success(path)
        experts.append(Expert(task, path, "cached", success, config.experts.threshold))
        cell = GridRun(task, config.experts.seed, str(path), config.device)
        cell.status = "done" if success is not None else "pending"
        cells.append((cell, expert_config(config, task, path)))
    _check_cells(cells)

    grid = {"workers": workers, "executor": "local", "ray_address": None}
    try:
        execute(cells, config, grid, desc=f"experts of {suite_name(config)}")
    finally:
        for (cell, _), expert in zip(cells, experts, strict=True):
            if expert.success is None:  # not found in the cache: trained (or tried) now
                expert.status, expert.error = cell.status, cell.error
                expert.success = expert_success(expert.run_dir)
                if expert.success is not None:  # the settings its key hashes, beside it
                    settings = json.dumps(expert_settings(config, expert.task), indent=1)
                    atomic_write_text(expert.run_dir / "expert.json", settings)
    return experts


# -- datasets -------------------------------------------------------------------------------------


def dataset_path(expert: Expert, episodes: int, noise: float, seed: int) -> Path:
    return expert.run_dir / "data" / f"e{episodes}-n{noise:g}-s{seed}.npz"


def expert_dataset(expert: Expert, episodes: int, noise: float, seed: int = 0) -> Path:
    """``expert``'s dataset of ``episodes`` rollouts (made once; see the module docstring)."""
    from robotcl.checkpoint import latest_checkpoint
    from robotcl.experiment import Experiment

    path = dataset_path(expert, episodes, noise, seed)
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    config = validate_config({**_read_config(expert.run_dir), "progress": False})
    experiment = Experiment(config)
    experiment.prepare(latest_checkpoint(expert.run_dir / "checkpoints"))
    learner, strategy, suite = experiment.learner, experiment.strategy, experiment.suite
    experiment.evaluator.close()
    env = suite.make_env(0)
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(seed)
    observations, actions, episode_ids, successes, returns = [], [], [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed * 100_003 + episode)
        done, total, info = False, 0.0, {}
        while not done:
            with strategy.acting(0):
                clean = learner.act(obs[None], deterministic=True)[0]
            executed = clean + noise * rng.standard_normal(clean.shape) if noise else clean
            observations.append(obs[: -len(suite)])  # the one-hot of this one-task suite
            actions.append(clean)
            episode_ids.append(episode)
            obs, reward, terminated, truncated, info = env.step(np.clip(executed, low, high))
            total += float(reward)
            done = terminated or truncated
        successes.append(bool(info.get("is_success", False)))
        returns.append(total)
    env.close()
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
        "episodes": episodes,
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


def _read_config(run_dir: Path) -> dict[str, Any]:
    from robotcl.outputs import RunDirectory

    return RunDirectory(run_dir).read_config()


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
        source = expert_dataset(expert, settings.episodes, settings.noise, settings.seed)
        shutil.copyfile(source, folder / f"{expert.task}.npz")
        shutil.copyfile(source.with_suffix(".json"), folder / f"{expert.task}.json")
        out[expert.task] = json.loads(source.with_suffix(".json").read_text())
    return out


def experts_table(experts: list[Expert], mode: str) -> str:
    """One row per task: its expert's status, final success and whether it is flagged."""
    from robotcl.report import format_table

    rows = [["task", "expert", f"success ({mode})", "flag", "run"]]
    for e in experts:
        success = "-" if e.success is None else f"{e.success:.2f}"
        flag = f"below {e.threshold:g}" if e.flagged else ""
        rows.append([e.task, e.status, success, flag, str(e.run_dir)])
    text = format_table(rows)
    failed = [e for e in experts if e.status == "failed"]
    if failed:
        text += "\n\nfailed experts:\n" + "\n".join(
            f"  {e.task}: {e.error} (see {e.run_dir}/error.txt)" for e in failed
        )
    return text
