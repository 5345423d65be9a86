"""The task loop: train each task of a suite in turn, evaluate all tasks as it goes.

    baseline evaluation (random-init policy)
    for task i:  strategy.on_task_start(i) -> learner trains (evaluating every eval.every_steps)
                 -> strategy.on_task_end(i, data) -> R[i] <- evaluate all -> checkpoint, logs
    metrics(R, curves, reference) -> results.json, TensorBoard

Everything a run produces goes through :class:`~robotcl.outputs.RunDirectory`.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

import robotcl
import robotcl.agents  # noqa: F401  (registers the built-in learners)
import robotcl.strategies  # noqa: F401  (registers the built-in strategies)
from robotcl.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from robotcl.config import ExperimentConfig, validate_config
from robotcl.envs.suites import Suite, make_suite
from robotcl.errors import UserInputError
from robotcl.evaluation import Evaluator, TaskScore
from robotcl.metrics import compute_metrics
from robotcl.outputs import RunDirectory, TensorBoardLog
from robotcl.registry import AGENTS, STRATEGIES
from robotcl.strategies.base import Strategy, StrategyStack


def build_strategy(config: ExperimentConfig) -> Strategy:
    """The configured strategy, or a stack of them when several are named."""
    members = []
    for name in config.strategy:
        cls = STRATEGIES.get(name)
        members.append(cls(cls.Settings(**config.strategy_settings(name))))
    return members[0] if len(members) == 1 else StrategyStack(members)


def build_learner(config: ExperimentConfig, suite: Suite) -> Any:
    """A fresh learner for ``suite`` from the agent settings it takes (its ``__init__``'s
    parameters: SAC gets no TD3 key and TD3 no ``ent_coef``; the config refuses such a key set
    for the wrong agent before anything is written)."""
    cls = AGENTS.get(config.agent.name)
    settings = config.agent.settings_for(cls)
    env = cls.wrap_env(suite.make_env(0))
    return cls(
        env=env,
        num_tasks=len(suite),
        task_names=suite.task_names,
        seed=config.seed,
        device=config.device,
        **settings,
    )


def versions() -> dict[str, str]:
    import gymnasium
    import mujoco
    import stable_baselines3

    return {
        "robotcl": robotcl.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }


class _TaskCallback(BaseCallback):
    """Advances the progress bar and evaluates every ``every`` steps into the task."""

    def __init__(self, experiment: Experiment, every: int, steps: int, bar: Any) -> None:
        super().__init__()
        self.experiment, self.every, self.steps, self.bar = experiment, every, steps, bar

    def _on_step(self) -> bool:
        self.bar.update(1)
        done = self.model.task_steps
        if done % self.every == 0 and done < self.steps:
            self.experiment.evaluate(self.model.num_timesteps)
        return True


class Experiment:
    """One run of a learner and a strategy through a suite."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.run_dir: RunDirectory = None  # type: ignore[assignment]
        self.suite = make_suite(config.suite, config.order, config.num_tasks, config.tasks)
        self.strategy = build_strategy(config)
        self.evaluator = Evaluator(
            self.suite,
            config.eval.episodes,
            config.eval.deterministic_episodes,
            config.seed + 10_000,
        )
        self.learner: Any = None
        self.results: dict[str, Any] = {}
        self.tb: TensorBoardLog | None = None

    # -- state ----------------------------------------------------------------------------
    def _fresh_results(self) -> dict[str, Any]:
        modes = [m for m, n in self.evaluator.counts.items() if n]
        return {
            "suite": self.suite.name,
            "order": self.suite.order,
            "tasks": self.suite.task_names,
            "strategy": self.config.strategy,
            "seed": self.config.seed,
            "steps_per_task": self.config.steps_per_task,
            "metric_mode": self.config.eval.metric,
            "completed_tasks": 0,
            "baseline": {},
            "R": {m: {"success": [], "return": []} for m in modes},
            "curves": {
                "steps": [],
                "training_task": [],
                **{m: {"success": [], "return": []} for m in modes},
            },
            "bounds": [],
            "metrics": {},
            "versions": versions(),
            "wall_time_s": 0.0,
        }

    def evaluate(self, step: int) -> dict[str, list[TaskScore]]:
        """Evaluate all tasks now; append to the curves, the JSONL and TensorBoard."""
        training = self.learner.current_task if self.results["bounds"] or step else -1
        scores = self.evaluator.evaluate(self.learner, self.strategy)
        curves = self.results["curves"]
        curves["steps"].append(step)
        curves["training_task"].append(training)
        record: dict[str, Any] = {"step": step, "training_task": training, "time": time.time()}
        for mode, task_scores in scores.items():
            curves[mode]["success"].append([s.success for s in task_scores])
            curves[mode]["return"].append([s.ret for s in task_scores])
            record[mode] = {
                name: {"success": s.success, "return": s.ret}
                for name, s in zip(self.suite.task_names, task_scores, strict=True)
            }
        self.run_dir.append_evaluation(record)
        metric = scores[self.config.eval.metric]
        values = {}
        for name, s in zip(self.suite.task_names, metric, strict=True):
            values[f"eval/{name}/success"] = s.success
            values[f"eval/{name}/return"] = s.ret
        if "deterministic" in scores and self.config.eval.metric != "deterministic":
            for name, s in zip(self.suite.task_names, scores["deterministic"], strict=True):
                values[f"eval_deterministic/{name}/success"] = s.success
        self.tb.scalars(values, step)
        return scores

    # -- the loop -------------------------------------------------------------------------
    def run(self, run_dir: RunDirectory, resume_from: Path | None = None) -> dict[str, Any]:
        """Run every remaining task; return the results (also written to results.json)."""
        config = self.config
        self.run_dir = run_dir
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        start = time.time()
        if resume_from is None:
            self.learner = build_learner(config, self.suite)
            self.results = self._fresh_results()
            first = 0
            purge = None
            if self.run_dir.evaluations_file.exists():  # a restart of a run killed in task 0
                self.run_dir.truncate_evaluations(-1)
                purge = 0
        else:
            cls = AGENTS.get(config.agent.name)
            self.learner, self.results = load_checkpoint(
                resume_from, cls, config.device, self.strategy
            )
            first = self.results["completed_tasks"]
            purge = self.learner.num_timesteps
            self.run_dir.truncate_evaluations(purge)
        self.tb = TensorBoardLog(self.run_dir.tb, purge_step=purge)
        self.learner.set_logger(self.tb.sb3_logger)
        self.learner.attach(self.strategy)
        self.strategy.setup(self.learner, self.suite)
        wall_before = self.results["wall_time_s"]
        if first == 0:
            base = self.evaluate(0)
            self.results["baseline"] = {
                m: {"success": [s.success for s in v], "return": [s.ret for s in v]}
                for m, v in base.items()
            }
        total = len(self.suite) * config.steps_per_task
        bar = tqdm(
            total=total,
            initial=first * config.steps_per_task,
            disable=not config.progress,
            unit="step",
            dynamic_ncols=True,
        )
        try:
            for task in range(first, len(self.suite)):
                self._train_task(task, bar)
                self.results["wall_time_s"] = wall_before + time.time() - start
                save_checkpoint(
                    self.run_dir.checkpoints, task, self.learner, self.strategy, self.results
                )
                self.run_dir.write_results(self.results)
            self._finish()
            self.results["wall_time_s"] = wall_before + time.time() - start
            self.run_dir.write_results(self.results)
        finally:
            bar.close()
            self.evaluator.close()
            self.tb.close()
        return self.results

    def _train_task(self, task: int, bar: Any) -> None:
        config, learner = self.config, self.learner
        name = self.suite.task_names[task]
        bar.set_description(f"task {task + 1}/{len(self.suite)} {name}")
        begin = learner.num_timesteps
        learner.start_task(task, self.suite.make_env(task), seed=config.seed * 1000 + task)
        self.strategy.on_task_start(task)
        callback = _TaskCallback(self, config.eval.every_steps, config.steps_per_task, bar)
        learner.learn_task(config.steps_per_task, callback=callback)
        self.strategy.on_task_end(task, learner.task_data())
        scores = self.evaluate(learner.num_timesteps)
        self.results["bounds"].append([begin, learner.num_timesteps])
        for mode, task_scores in scores.items():
            self.results["R"][mode]["success"].append([s.success for s in task_scores])
            self.results["R"][mode]["return"].append([s.ret for s in task_scores])
        self.results["completed_tasks"] = task + 1
        matrix = np.full((len(self.suite), len(self.suite)), np.nan)
        rows = np.array(self.results["R"][config.eval.metric]["success"])
        matrix[: len(rows)] = rows
        self.tb.matrix("cl/success_matrix", matrix, self.suite.task_names, learner.num_timesteps)

    def _finish(self) -> None:
        """Metrics from R and the curves, to results and TensorBoard."""
        mode = self.config.eval.metric
        R = np.array(self.results["R"][mode]["success"])
        curves = self.results["curves"]
        reference = load_reference(self.config.reference, self.suite.task_names, mode)
        metrics = compute_metrics(
            R,
            baseline=np.array(self.results["baseline"][mode]["success"]),
            curves={
                "steps": np.array(curves["steps"]),
                "success": np.array(curves[mode]["success"]),
                "bounds": self.results["bounds"],
            },
            reference=reference or None,
        )
        R_ret = np.array(self.results["R"][mode]["return"])
        metrics["final_return"] = float(R_ret[-1].mean())
        self.results["metrics"] = metrics
        step = self.learner.num_timesteps
        scalars = {f"cl/{k}": v for k, v in metrics.items() if isinstance(v, float)}
        self.tb.scalars(scalars, step)
        hparams = {
            "strategy": "+".join(self.config.strategy),
            "suite": self.suite.name,
            "seed": self.config.seed,
            "steps_per_task": self.config.steps_per_task,
            **{f"agent.{k}": v for k, v in self.config.agent.model_dump().items()},
        }
        self.tb.hparams(hparams, {k: v for k, v in metrics.items() if isinstance(v, float)})


def load_reference(path: str | None, tasks: list[str], mode: str) -> dict[int, tuple]:
    """Per-task reference curves from a single-task run's results.json, matched by task name."""
    if not path:
        return {}
    try:
        ref = json.loads(Path(path).read_text())
        ref_tasks, curves = ref["tasks"], ref["curves"]
        steps = np.array(curves["steps"])
        success = np.array(curves[mode]["success"])
    except (OSError, ValueError, KeyError) as exc:
        raise UserInputError(
            f"reference '{path}'", f"not a readable results.json ({exc})"
        ) from None
    out = {}
    for i, name in enumerate(tasks):
        if name not in ref_tasks:
            continue
        j = ref_tasks.index(name)
        if j >= len(ref["bounds"]):
            continue
        lo, hi = ref["bounds"][j]
        inside = (steps >= lo) & (steps <= hi)
        out[i] = (steps[inside] - lo, success[inside, j])
    return out


def run(config: ExperimentConfig) -> tuple[RunDirectory, dict[str, Any]]:
    """Start a new run: make its directory, write the config, run the loop."""
    experiment = Experiment(config)  # checks the suite before anything is written
    run_dir = RunDirectory.create(config)
    run_dir.write_config(config.model_dump())
    return run_dir, experiment.run(run_dir)


def resume(path: str | Path) -> tuple[RunDirectory, dict[str, Any]]:
    """Continue a run from its last finished task."""
    run_dir = RunDirectory(Path(path))
    config = validate_config(run_dir.read_config())
    checkpoint = latest_checkpoint(run_dir.checkpoints)
    experiment = Experiment(config)
    if checkpoint is None:  # killed during the first task: start it again
        return run_dir, experiment.run(run_dir)
    return run_dir, experiment.run(run_dir, resume_from=checkpoint)
