"""The task loop: train each task of a suite in turn, evaluate all tasks as it goes.

    for task i:  strategy.on_task_start(i) -> evaluate all (task i's start; for task 0 the
                 baseline, the random-init policy) -> learner trains (evaluating every
                 eval.every_steps) -> strategy.on_task_end(i, data) -> R[i] <- evaluate all
                 -> checkpoint, logs
    (with checkpoint_every_steps, also a partial checkpoint every N steps inside a task, which a
    resume continues the task from)
    metrics(R, curves, reference) -> results.json, TensorBoard

Everything a run produces goes through :class:`~robotcl.outputs.RunDirectory`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import robotcl
import robotcl.agents  # noqa: F401  (registers the built-in learners)
import robotcl.strategies  # noqa: F401  (registers the built-in strategies)
from robotcl.checkpoint import (
    best_score,
    latest_checkpoint,
    load_checkpoint,
    remove_partial,
    save_checkpoint,
)
from robotcl.config import AgentConfig, ExperimentConfig, validate_config
from robotcl.envs.suites import Suite, make_suite
from robotcl.errors import RunStopped, UserInputError, warn
from robotcl.evaluation import Evaluator, TaskScore
from robotcl.learner import unmet_needs
from robotcl.metrics import compute_metrics, heldout_metrics
from robotcl.outputs import RunDirectory, TensorBoardLog, check_writable
from robotcl.probe import RepresentationProbe
from robotcl.progress import progress
from robotcl.registry import AGENTS, STRATEGIES
from robotcl.scalars import write_scalars
from robotcl.strategies.base import Strategy, StrategyStack
from robotcl.system import available_memory, gib, peak_process_bytes, replay_bytes
from robotcl.videos import VideoRecorder


def build_strategy(config: ExperimentConfig) -> Strategy:
    """The configured strategy, or a stack of them when several are named."""
    members = []
    for name in config.strategy:
        cls = STRATEGIES.get(name)
        members.append(cls(cls.Settings(**config.strategy_settings(name))))
    return members[0] if len(members) == 1 else StrategyStack(members)


def probe_off(config: ExperimentConfig, learner: Any, layout: Any) -> str | None:
    """Why the linear probe cannot run although ``probe.samples`` asks for it, or None."""
    if not config.probe.samples:
        return None
    if layout is not None and layout.proprio == 0:
        return f"observation={config.observation} holds no state to read back (pixels+proprio does)"
    if "features" not in getattr(learner, "capabilities", ()):
        return (
            f"agent '{config.agent.name}' does not offer the capability features "
            "(features(obs): the representation its heads read); probe.samples=0 says so quietly"
        )
    return None


def build_learner(config: ExperimentConfig, suite: Suite) -> Any:
    """A fresh learner for ``suite`` from the agent settings it takes (its ``__init__``'s
    parameters: SAC gets no TD3 key and TD3 no ``ent_coef``; the config refuses such a key set
    for the wrong agent before anything is written)."""
    cls = AGENTS.get(config.agent.name)
    settings = config.agent.settings_for(cls)
    env = cls.wrap_env(suite.make_env(0))
    if suite.layout is not None:  # rendered frames: the learner reads them back by the layout
        settings["pixel_layout"] = suite.layout
        settings["encoder"] = {**settings.get("encoder", {}), "crop": config.pixels.crop}
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


class Experiment:
    """One run of a learner and a strategy through a suite.

    :meth:`prepare` builds (or loads) the learner and sets the strategy up, so everything a run
    can refuse is refused before its directory is made; :meth:`run` then trains.
    """

    def __init__(self, config: ExperimentConfig, reference_runs: list[str] | None = None) -> None:
        """``reference_runs``: the single-task runs whose curves ``reference=experts`` stands
        for, found by the caller (robotcl.study.references); other references are in the
        config."""
        self.config = config
        self.reference_runs = reference_runs
        self.run_dir: RunDirectory = None  # type: ignore[assignment]
        self.suite = suite_of(config)
        self.strategy = build_strategy(config)
        self.evaluator = Evaluator(
            self.suite,
            config.eval.episodes,
            config.eval.deterministic_episodes,
            config.seed + 10_000,
        )
        self.learner: Any = None
        self.results: dict[str, Any] = {}
        self.reference: dict[int, list[tuple]] = {}
        self.probe: RepresentationProbe | None = None
        self.tb: TensorBoardLog | None = None
        self.videos: VideoRecorder | None = None
        #: steps already trained of the first task to run (a resume from a partial checkpoint)
        self.resumed_steps = 0

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
            "P": [],
            "metrics": {},
            "versions": versions(),
            "wall_time_s": 0.0,
        }

    def prepare(self, resume_from: Path | None = None) -> None:
        """Build the learner (or load it from ``resume_from``) and set the strategy up on it.

        Writes nothing: every error a run can raise from its settings is raised here.
        """
        config = self.config
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        seed_globals(config.seed)  # a resumed run then restores its checkpoint's states
        references = config.reference
        if references == ["experts"]:  # found by the caller: the experiment makes no experts
            if self.reference_runs is None:
                raise UserInputError(
                    "reference=experts",
                    "an experiment is given its experts' runs by the command that starts it",
                    "start it with robotcl run, compare or gap",
                )
            references = self.reference_runs
        self.reference = load_reference(references, self.suite.task_names, config.eval.metric)
        extra: dict[str, Any] = {}
        if config.checkpoint_every_steps and not hasattr(
            AGENTS.get(config.agent.name), "resume_task"
        ):
            raise UserInputError(
                f"checkpoint_every_steps={config.checkpoint_every_steps}",
                f"agent '{config.agent.name}' cannot continue a task from inside it (it has no "
                "resume_task)",
                "0: checkpoints at task ends only",
            )
        if resume_from is None:
            check_memory(config, self.suite)
            self.learner = build_learner(config, self.suite)
            self.results = self._fresh_results()
        else:
            cls = AGENTS.get(config.agent.name)
            self.learner, self.results, extra = load_checkpoint(
                resume_from, cls, config.device, self.strategy
            )
            self.resumed_steps = int(extra.get("task_steps", 0))
        layout = self.suite.layout
        state_part = slice(layout.pixel_values, None) if layout is not None else slice(None)
        off = probe_off(config, self.learner, layout)
        if off and resume_from is None:
            warn(f"the linear probe is off: {off}")
        if config.probe.samples and not off:
            self.probe = RepresentationProbe(
                len(self.suite), config.probe.samples, config.probe.ridge, config.seed, state_part
            )
            if "probe" in extra:
                self.probe.load_state_dict(extra["probe"])
        unmet = unmet_needs(self.strategy, self.learner)
        if unmet:
            raise UserInputError(
                f"strategy {'+'.join(config.strategy)} with agent '{config.agent.name}'",
                f"the strategy needs {', '.join(unmet)}, which {type(self.learner).__name__} "
                "does not offer",
                f"it offers {', '.join(sorted(self.learner.capabilities)) or 'none'}",
            )
        self.learner.attach(self.strategy)
        self.strategy.setup(self.learner, self.suite)
        if config.video.enabled:
            check_video(config, self.suite)

    def evaluate(self, step: int, training: int, log: bool = True) -> dict[str, list[TaskScore]]:
        """Evaluate all tasks now, while task ``training`` is trained; append to the curves and
        the JSONL, and (``log``) to TensorBoard."""
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
        with writing(self.run_dir):
            self.run_dir.append_evaluation(record)
            if self.config.keep_best:
                self._keep_best(training, step, scores[self.config.eval.metric][training])
        if not log:
            return scores
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
    def run(self, run_dir: RunDirectory) -> dict[str, Any]:
        """Run every remaining task; return the results (also written to results.json)."""
        config = self.config
        if self.learner is None:
            self.prepare()
        self.run_dir = run_dir
        start = time.time()
        first = self.results["completed_tasks"]
        purge = None
        if self.resumed_steps:  # inside a task: keep its evaluations up to the checkpoint
            self.run_dir.truncate_evaluations(first, until_step=self.learner.num_timesteps)
            purge = self.learner.num_timesteps + 1
        elif first == 0:
            if self.run_dir.evaluations_file.exists():  # a restart of a run killed in task 0
                self.run_dir.truncate_evaluations(0)
                purge = 0
        else:
            self.run_dir.truncate_evaluations(first)
            # TensorBoard drops the killed process's points after the last finished task
            # (not the evaluation and the success matrix logged at its last step)
            purge = self.learner.num_timesteps + 1
        self.tb = TensorBoardLog(self.run_dir.tb, purge_step=purge)
        self.learner.set_logger(self.tb.sb3_logger)
        if config.video.enabled:
            folder = self.run_dir.path / "videos"
            self.videos = VideoRecorder(self.suite, config.video, config.seed + 20_000, folder)
        wall_before = self.results["wall_time_s"]
        bar = progress(
            len(self.suite) * config.steps_per_task,
            first * config.steps_per_task + self.resumed_steps,
            config.progress,
        )
        try:
            # a write into the run directory can fail anywhere (TensorBoard writes from its
            # own thread and reports on its next call): all such failures stop the run
            with writing(self.run_dir, only_its_files=True):
                for task in range(first, len(self.suite)):
                    self._train_task(task, bar, lambda: wall_before + time.time() - start)
                    self.results["wall_time_s"] = wall_before + time.time() - start
                    with writing(self.run_dir):
                        self._checkpoint(task)
                        remove_partial(self.run_dir.checkpoints)
                self._finish()
                self.results["wall_time_s"] = wall_before + time.time() - start
                with writing(self.run_dir):
                    self.run_dir.write_results(self.results)
                self.tb.close()  # its last points: a failed flush stops the run too
                with writing(self.run_dir):
                    write_scalars(self.run_dir.path)  # the train/ curves, small, kept
        finally:
            bar.close()
            self.evaluator.close()
            with contextlib.suppress(OSError):  # stopping already: the first error is told
                self.tb.close()
        return self.results

    def _checkpoint(self, task: int, partial: bool = False) -> None:
        """Save the run's state at ``task``'s end (or, ``partial``, inside it) and results.json."""
        extra: dict[str, Any] = {"probe": self.probe.state_dict()} if self.probe else {}
        if partial:
            extra["task_steps"] = self.learner.task_steps
        save_checkpoint(
            self.run_dir.checkpoints,
            task,
            self.learner,
            self.strategy,
            self.results,
            extra,
            partial=partial,
        )
        self.run_dir.write_results(self.results)

    def _keep_best(self, task: int, step: int, score: TaskScore) -> None:
        """``keep_best``: the policy now, if this is ``task``'s best evaluation yet (success,
        then return). The kept folder is the record: after a resume inside a task it may hold
        a policy of the part run between the last checkpoint and the stop."""
        kept = best_score(self.run_dir.checkpoints, task)
        if kept is not None and (kept["success"], kept["return"]) >= (score.success, score.ret):
            best = kept
        else:
            best = {"step": step, "success": score.success, "return": score.ret}
            save_checkpoint(
                self.run_dir.checkpoints, task, self.learner, self.strategy, self.results, best=best
            )
        self.results.setdefault("best", {})[self.suite.task_names[task]] = best

    def _train_task(self, task: int, bar: Any, wall_time: Callable[[], float]) -> None:
        config, learner = self.config, self.learner
        name = self.suite.task_names[task]
        bar.set_description(f"task {task + 1}/{len(self.suite)} {name}")
        env = self.strategy.training_env(task, self.suite.make_env(task))
        resumed, self.resumed_steps = self.resumed_steps, 0
        if resumed:  # from a partial checkpoint: the task's start is behind it
            # new episodes from here (the env's state is not saved): seeded by where it resumes
            learner.resume_task(
                task, env, resumed, seed=(config.seed * 1000 + task) * 7919 + resumed
            )
            self.results.setdefault("resumed_inside_task", []).append([task, resumed])
            begin = learner.num_timesteps - resumed
        else:
            begin = learner.num_timesteps
            learner.start_task(task, env, seed=config.seed * 1000 + task)
            self.strategy.on_task_start(task)
            # the task's true start, after on_task_start (a fresh network for single, a new
            # column for progressive): the first point of its forward-transfer window. Task 0's
            # is also the baseline (the random-init policy); later ones are not logged to
            # TensorBoard, which has the previous task's end at the same step.
            scores = self.evaluate(begin, task, log=task == 0)
            if task == 0:
                self.results["baseline"] = {
                    m: {"success": [s.success for s in v], "return": [s.ret for s in v]}
                    for m, v in scores.items()
                }
        every = config.checkpoint_every_steps

        def on_step() -> None:  # after every step: progress, evaluations and checkpoints
            bar.update(1)
            done = learner.task_steps
            if done >= config.steps_per_task:
                return
            if done % config.eval.every_steps == 0:
                self.evaluate(learner.num_timesteps, learner.current_task)
            if every and done % every == 0:
                self.results["wall_time_s"] = wall_time()
                with writing(self.run_dir):
                    self._checkpoint(task, partial=True)

        learner.learn_task(config.steps_per_task - resumed, on_step=on_step)
        if hasattr(learner, "end_task"):  # optional protocol member
            learner.end_task()
        data = learner.task_data()
        self.strategy.on_task_end(task, data)
        self._record_memory()
        if hasattr(learner, "heldout_losses"):  # a supervised learner's held-out action loss
            row = learner.heldout_losses()
            self.results.setdefault("L", []).append(row)
            names = self.suite.task_names
            losses = {f"heldout/{n}/loss": v for n, v in zip(names, row, strict=True) if v == v}
            self.tb.scalars(losses, learner.num_timesteps)
            self._image("cl/heldout_loss_matrix", self.results["L"], loss=True)
        scores = self.evaluate(learner.num_timesteps, task)
        self.results["bounds"].append([begin, learner.num_timesteps])
        for mode, task_scores in scores.items():
            self.results["R"][mode]["success"].append([s.success for s in task_scores])
            self.results["R"][mode]["return"].append([s.ret for s in task_scores])
        self.results["completed_tasks"] = task + 1
        self._image("cl/success_matrix", self.results["R"][config.eval.metric]["success"])
        if self.videos is not None:
            self.videos.record(learner, self.strategy, task, learner.num_timesteps, self.tb.writer)
        if self.probe is not None:
            self.probe.add_task(task, data.buffer)
            row = self.probe.row(learner, self.strategy)
            self.results.setdefault("P", []).append(row)
            names = self.suite.task_names
            scores_p = {f"probe/{n}/score": v for n, v in zip(names, row, strict=True) if v == v}
            self.tb.scalars(scores_p, learner.num_timesteps)
            self._image("cl/probe_matrix", self.results["P"])

    def _record_memory(self) -> None:
        """What the strategy keeps beyond the learner after this task (results.json "memory",
        TensorBoard ``memory/strategy_bytes``), beside the learner's own size and the process's
        peak memory."""
        usage = self.strategy.memory_usage()
        memory = self.results.setdefault("memory", {"by_task": []})
        memory["strategy"] = usage.as_dict()
        memory["by_task"].append(usage.bytes)
        groups = self.learner.parameter_groups().values()
        params = list({id(p): p for group in groups for p in group}.values())
        memory["learner_parameters"] = sum(p.numel() for p in params)
        memory["learner_bytes"] = sum(p.numel() * p.element_size() for p in params)
        if "replay_buffer_bytes" not in memory:  # the allocation, fixed for the run
            memory["replay_buffer_bytes"] = memory_needs(self.config, self.suite)[0]
        memory["peak_process_bytes"] = peak_process_bytes()
        costs = {
            "memory/strategy_bytes": usage.bytes,
            "cost/memory_bytes": usage.bytes,
            "cost/stored_transitions": usage.transitions,
            "cost/extra_parameters": usage.values,
        }
        self.tb.scalars(costs, self.learner.num_timesteps)

    def _image(self, tag: str, rows: list[list[float]], loss: bool = False) -> None:
        """A (T, T) matrix whose finished rows are ``rows`` as a TensorBoard image."""
        matrix = np.full((len(self.suite), len(self.suite)), np.nan)
        matrix[: len(rows)] = np.array(rows, dtype=float)
        self.tb.matrix(tag, matrix, self.suite.task_names, self.learner.num_timesteps, loss)

    def _finish(self) -> None:
        """Metrics from R and the curves, to results and TensorBoard."""
        mode = self.config.eval.metric
        R = np.array(self.results["R"][mode]["success"])
        curves = self.results["curves"]
        metrics = compute_metrics(
            R,
            baseline=np.array(self.results["baseline"][mode]["success"]),
            curves={
                "steps": np.array(curves["steps"]),
                "success": np.array(curves[mode]["success"]),
                "bounds": self.results["bounds"],
                "training_task": np.array(curves["training_task"]),
            },
            reference=self.reference or None,
        )
        R_ret = np.array(self.results["R"][mode]["return"])
        metrics["final_return"] = float(R_ret[-1].mean())
        P = self.results.get("P")
        if P and len(P) == len(self.suite):
            probe = compute_metrics(np.array(P, dtype=float))
            for key in ("acc", "bwt", "forgetting"):
                metrics[f"probe_{key}"] = probe[key]
        L = self.results.get("L")
        if L and len(L) == len(self.suite):
            metrics.update(heldout_metrics(np.array(L, dtype=float)))
        memory = self.results.get("memory")
        if memory:
            metrics["memory"] = float(memory["strategy"]["bytes"])
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


@contextlib.contextmanager
def writing(run_dir: RunDirectory, only_its_files: bool = False) -> Iterator[None]:
    """Turn a failed write into the run (a full disk, a read-only folder) into
    :class:`RunStopped`; ``only_its_files``: only an error naming a file of the run directory
    (around code that does more than write)."""
    try:
        yield
    except OSError as exc:
        if only_its_files and not _names_a_file_in(exc, run_dir.path):
            raise
        reason = "no space left on the device" if exc.errno == errno.ENOSPC else exc.strerror
        raise RunStopped(f"cannot write to the run directory ({reason or exc})") from exc


def _names_a_file_in(exc: OSError, folder: Path) -> bool:
    """Whether ``exc`` is about a path inside ``folder``."""
    names = [n for n in (exc.filename, exc.filename2) if isinstance(n, str | bytes)]
    root = folder.absolute()
    return any(Path(os.fsdecode(n)).absolute().is_relative_to(root) for n in names)


def seed_globals(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (those a plugin learner or
    strategy may draw from), as a run starts."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_video(config: ExperimentConfig, suite: Suite) -> None:
    """Refuse video stages beyond the curriculum, and videos where nothing can be rendered."""
    stages = config.video.stages
    if isinstance(stages, list) and any(s >= len(suite) for s in stages):
        raise UserInputError(
            f"config key 'video.stages' ({stages})",
            f"the curriculum has {len(suite)} tasks",
            f"positions 0..{len(suite) - 1}, all or last",
        )
    env = suite.make_env(0, render_mode="rgb_array", size=config.video.size)
    try:
        env.reset(seed=0)
        env.render()
    except Exception as exc:  # noqa: BLE001  (GL errors differ by backend)
        raise UserInputError(
            "config key 'video.enabled'",
            f"cannot render here ({type(exc).__name__}: {str(exc).splitlines()[0]})",
            "set MUJOCO_GL=egl or osmesa, or video.enabled=false",
        ) from None
    finally:
        env.close()


def suite_of(config: ExperimentConfig) -> Suite:
    """The suite a run of ``config`` trains on: its tasks, order and observations."""
    return make_suite(
        config.suite,
        config.order,
        config.num_tasks,
        config.tasks,
        config.observation,
        config.pixels.size,
        config.pixels.frames,
        config.suite_settings,
        config.pixels.render,
    )


def memory_needs(config: ExperimentConfig, suite: Suite) -> tuple[int, int]:
    """Host bytes a run keeps beyond its learner: the replay buffer (0 for a learner without
    one) and the SSL memory of earlier tasks (0 without one)."""
    cls = AGENTS.get(config.agent.name)
    keys = AgentConfig.keys_taken_by(cls)
    if keys is not None and "buffer_size" not in keys:
        return 0, 0
    env = suite.make_env(0)
    need = replay_bytes(config.agent.buffer_size, env.observation_space, env.action_space)
    if suite.layout is not None:  # one uint8 frame a transition
        from robotcl.agents.frame_buffer import FrameReplayBuffer

        need = FrameReplayBuffer.bytes_needed(
            config.agent.buffer_size,
            suite.layout,
            int(env.observation_space.shape[0]),
            int(env.action_space.shape[0]),
        )
    encoder = config.agent.encoder
    ssl_memory = 0
    if encoder.objective != "none" and encoder.memory_ratio > 0:  # kept for every earlier task
        from robotcl.agents.ssl_memory import ObservationMemory

        row = ObservationMemory.bytes_per_row(suite.layout, int(env.observation_space.shape[0]))
        ssl_memory = (len(suite) - 1) * encoder.memory_per_task * row
    env.close()
    return need, ssl_memory


def check_memory(config: ExperimentConfig, suite: Suite) -> None:
    """Refuse a replay buffer (and an SSL memory of earlier tasks) that cannot fit in this
    machine's available memory."""
    need, ssl_memory = memory_needs(config, suite)
    if need == 0:
        return
    encoder = config.agent.encoder
    have = available_memory()
    if have is None or need + ssl_memory <= have:
        return
    if need > have or ssl_memory == 0:
        per = need // config.agent.buffer_size
        raise UserInputError(
            f"config key 'agent.buffer_size' ({config.agent.buffer_size:,})",
            f"the replay buffer needs {gib(need)} and this machine has {gib(have)} available",
            f"at most about {have // per:,} transitions here",
        )
    raise UserInputError(
        f"config key 'agent.encoder.memory_per_task' ({encoder.memory_per_task:,})",
        f"the SSL memory of {len(suite) - 1} earlier task(s) needs {gib(ssl_memory)} beside the "
        f"replay buffer's {gib(need)}, and this machine has {gib(have)} available",
        f"at most about {(have - need) // max(1, ssl_memory // encoder.memory_per_task):,} "
        "per task here",
    )


def load_reference(
    paths: list[str] | None, tasks: list[str], mode: str
) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Per-task reference curves of single-task runs (run directories or results.json files),
    matched by task name: task index -> one ``(steps from the task's start, success)`` per run.
    Each run's window of a task holds the evaluations made while that task was trained."""
    out: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for path in paths or []:
        file = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
        where = f"reference '{path}'"
        try:
            ref = json.loads(file.read_text())
            ref_tasks, curves, bounds = ref["tasks"], ref["curves"], ref["bounds"]
            steps = np.asarray(curves["steps"], dtype=float)
            success = np.asarray(curves[mode]["success"], dtype=float)
            trained = np.asarray(curves.get("training_task", [-2] * len(steps)))
            if success.shape != (len(steps), len(ref_tasks)) or len(trained) != len(steps):
                raise ValueError("curves do not match its tasks")
        except OSError as exc:
            raise UserInputError(where, f"cannot be read ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise UserInputError(where, f"not a robotcl results.json ({exc})") from None
        for i, name in enumerate(tasks):
            if name not in ref_tasks or ref_tasks.index(name) >= len(bounds):
                continue
            j = ref_tasks.index(name)
            lo, hi = bounds[j]
            inside = (steps >= lo) & (steps <= hi)
            if (trained == j).any():  # results with a start-of-task evaluation
                inside &= trained == j
            out.setdefault(i, []).append((steps[inside] - lo, success[inside, j]))
    return out


def run(
    config: ExperimentConfig,
    announce: Callable[[Path], None] | None = None,
    reference_runs: list[str] | None = None,
) -> tuple[RunDirectory, dict[str, Any]]:
    """Start a new run: check everything, make its directory, write the config, run the loop.
    ``announce`` is told the run directory once it exists; ``reference_runs``: see
    :class:`Experiment`."""
    experiment = Experiment(config, reference_runs)
    experiment.prepare()  # refuses bad settings before anything is written
    run_dir = RunDirectory.create(config)
    return run_dir, _run(experiment, run_dir, announce, write_config=True)


def run_config(path: str | Path) -> ExperimentConfig:
    """The validated config of the run in ``path`` (what :func:`resume` continues)."""
    return validate_config(RunDirectory(Path(path)).read_config())


def resume(
    path: str | Path,
    announce: Callable[[Path], None] | None = None,
    reference_runs: list[str] | None = None,
    dry_run: bool = False,
) -> tuple[RunDirectory, dict[str, Any]]:
    """Continue a run from its last checkpoint (``dry_run``: check and load what it would
    continue from, return those results, with ``task_steps`` the steps of the next task that a
    checkpoint inside it holds, and write nothing)."""
    run_dir = RunDirectory(Path(path))
    config = run_config(path)
    if not dry_run:  # a folder that stayed read-only: refused before the lock is taken
        for folder in (run_dir.path, run_dir.checkpoints, run_dir.tb):
            if folder.is_dir():
                check_writable(folder, "--resume")
    checkpoint = latest_checkpoint(run_dir.checkpoints)
    experiment = Experiment(config, reference_runs)
    experiment.prepare(checkpoint)  # None: killed during the first task, start it again
    if dry_run:
        return run_dir, {**experiment.results, "task_steps": experiment.resumed_steps}
    run_dir.lock()
    return run_dir, _run(experiment, run_dir, announce, write_config=False)


def _run(
    experiment: Experiment,
    run_dir: RunDirectory,
    announce: Callable[[Path], None] | None,
    write_config: bool,
) -> dict[str, Any]:
    """Run ``experiment`` in ``run_dir``; errors and interrupts carry the run directory."""
    try:
        if announce is not None:
            announce(run_dir.path)
        if write_config:
            with writing(run_dir):
                run_dir.write_config(experiment.config.model_dump())
        return experiment.run(run_dir)
    except (KeyboardInterrupt, RunStopped) as exc:
        exc.run_dir = str(run_dir.path)  # type: ignore[union-attr]
        raise
    finally:
        run_dir.unlock()
