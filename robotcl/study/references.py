"""Where a study's single-task reference runs (the experts) live, and the reference runs a run
is given.

An expert is the preset's agent trained on one task alone (the ``single`` strategy), kept in
``<runs_dir>/experts/<suite>/<task>/<key>-s<seed>/`` where the key is the run key
(:mod:`robotcl.study.keys`) of the expert's own run. The experiment never looks for experts:
``reference=experts`` is resolved here, by whoever starts the run, into the run directories it
then reads its reference curves from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robotcl.config import ExperimentConfig, validate_config
from robotcl.errors import UserInputError, warn
from robotcl.experiment import suite_of
from robotcl.outputs import suite_label
from robotcl.study.cells import finished_results
from robotcl.study.keys import KEY_VERSION, result_settings, settings_key

EXPERTS_FOLDER = "experts"
#: written beside an expert's run: the settings its key hashes and the key's version
EXPERT_FILE = "expert.json"


def expert_steps(config: ExperimentConfig) -> int:
    """Env steps of each expert: ``experts.steps_per_task``, or the preset's."""
    return config.experts.steps_per_task or config.steps_per_task


def expert_config(config: ExperimentConfig, task: str, run_dir: Path | None) -> dict[str, Any]:
    """The run of ``task``'s expert: the preset on that task alone with the single strategy."""
    data = config.model_dump()
    data.update(
        name=EXPERTS_FOLDER,
        tasks=[task],
        num_tasks=None,
        strategy=["single"],
        seed=config.experts.seed,
        steps_per_task=expert_steps(config),
        run_dir=None if run_dir is None else str(run_dir),
        reference=None,
        overwrite=False,
        keep_best=config.experts.policy == "best",
    )
    data["video"]["enabled"] = False
    data["probe"]["samples"] = 0
    for name in config.model_extra or {}:  # the preset's strategy settings do not apply
        data.pop(name, None)
    return validate_config(data).model_dump()


def suite_name(config: ExperimentConfig) -> str:
    """The suite's name in the cache: a registered name, a suite file's stem, a factory's
    ``module-factory``."""
    return suite_label(config.suite)


def expert_settings(config: ExperimentConfig, task: str) -> dict[str, Any]:
    """What ``task``'s expert learns and measures (its key hashes this)."""
    return result_settings(validate_config(expert_config(config, task, None)))


def expert_dir(config: ExperimentConfig, task: str) -> Path:
    """Where ``task``'s expert of ``config`` lives."""
    key = settings_key(expert_settings(config, task))
    folder = Path(config.runs_dir) / EXPERTS_FOLDER / suite_name(config) / task
    return (folder / f"{key}-s{config.experts.seed}").absolute()


def write_expert_file(config: ExperimentConfig, task: str, run_dir: Path) -> None:
    """``expert.json`` beside a finished expert: its task, key version and settings."""
    from robotcl.outputs import atomic_write_text

    record = {"task": task, "key_version": KEY_VERSION, **expert_settings(config, task)}
    atomic_write_text(run_dir / EXPERT_FILE, json.dumps(record, indent=1, default=str))


def older_experts(config: ExperimentConfig, tasks: list[str]) -> int:
    """How many finished experts of ``tasks`` were cached under an earlier key version (they
    are not used: their keys hashed other settings)."""
    count = 0
    for task in tasks:
        folder = Path(config.runs_dir) / EXPERTS_FOLDER / suite_name(config) / task
        for path in folder.glob("*/" + EXPERT_FILE):
            try:
                version = json.loads(path.read_text()).get("key_version", 1)
            except (OSError, ValueError, AttributeError):
                version = 1
            count += version != KEY_VERSION
    return count


def note_older_experts(config: ExperimentConfig, tasks: list[str]) -> None:
    """One line when experts cached by an earlier robotcl are ignored."""
    count = older_experts(config, tasks)
    if count:
        warn(
            f"{count} expert(s) under {Path(config.runs_dir) / EXPERTS_FOLDER} were keyed by an "
            "earlier robotcl and are ignored (robotcl experts trains them again)"
        )


def expert_success(run_dir: Path) -> float | None:
    """The expert's success on its task (its eval.metric) at its best evaluation where the run
    kept it (experts.policy=best), else at its end; None if unfinished."""
    results = finished_results(run_dir)
    if results is None:
        return None
    best = results.get("best")
    if best:
        return float(next(iter(best.values()))["success"])
    return float(results["R"][results["metric_mode"]]["success"][-1][0])


def finished_experts(config: ExperimentConfig, tasks: list[str]) -> list[str]:
    """The run directories of the finished experts of ``tasks`` under ``config``'s settings; a
    one-line error names the first one missing."""
    paths = []
    for task in tasks:
        path = expert_dir(config, task)
        if expert_success(path) is None:
            note_older_experts(config, tasks)
            raise UserInputError(
                "reference=experts",
                f"no finished expert of {task} with these settings ({path})",
                "run robotcl experts with the same preset and settings first",
            )
        paths.append(str(path))
    return paths


def reference_runs(config: ExperimentConfig) -> list[str] | None:
    """The reference runs a run of ``config`` reads: ``reference=experts`` resolved into the
    experts' run directories, any other list as it is."""
    if config.reference == ["experts"]:
        return finished_experts(config, suite_of(config).task_names)
    return config.reference
