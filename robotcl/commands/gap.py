"""``robotcl gap``: the same strategies in supervised and in reinforcement lifelong learning.

The CoRL 2021 question ("Evaluations of the gap between supervised and reinforcement lifelong
learning on robotic manipulation tasks", Yang et al.): do methods that work in supervised
lifelong learning also work in RL? For every strategy and seed of a preset:

1. the experts (:mod:`robotcl.commands.experts`): one single-task run a task, cached and reused;
2. their datasets, gathered into ``<gap>/expert_data`` (``<task>.npz`` + provenance);
3. the supervised side: a grid of the ``bc`` agent (behaviour cloning with the RL actor's network
   shape) on those datasets, ``<gap>/sl-<hash of gap.*>``;
4. the RL side: the preset's own grid, ``<gap>/rl`` (its cells are those of ``robotcl compare``
   with the same preset, same keys: with ``records=`` the two share their records);
5. ``gap.json``: the experts, the datasets' provenance and both grids, from which
   :mod:`robotcl.reporting.gap` makes the table (ACC, memory, BWT, forgetting, FWT for SL, RL and
   RL - SL with 90% bootstrap intervals over seeds) and its figures.

The gap folder is named by the study key of the settings that decide its runs
(:mod:`robotcl.study.keys`, less the cells' seeds and strategies, plus the datasets' episodes,
noise and seed), so running the same command again reuses every finished run (and resumes
its stopped ones), and other strategies or seeds run only theirs; other ``gap.*`` settings
(BC's epochs, learning rate, batch) make another supervised grid beside the same RL one.

With ``records=FOLDER`` every finished cell of both sides leaves a record there, and the gap its
own ``gap-<key>.json`` (the experts' success, the datasets' provenance, the rows the supervised
budget is made from). The supervised cells' keys hash what their data is made of
(``expert_data/data.json``: the experts' keys, episodes, noise, seed), not the data itself, so
on a fresh clone a gap whose cells all have records trains nothing, not even its experts; the
experts are trained only when a supervised cell still has to run; if their datasets are the
recorded ones (the same sha256), the record stays as committed (its paths and dates included).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from robotcl.commands.experts import Expert, gather_datasets, train_experts
from robotcl.config import ExperimentConfig, load_source, merge_overrides, validate_config
from robotcl.errors import UserInputError, warn
from robotcl.experiment import suite_of
from robotcl.learner import unmet_needs
from robotcl.outputs import atomic_write_text
from robotcl.registry import AGENTS, STRATEGIES
from robotcl.study.grid import (
    GridPlan,
    check_cells,
    parse_grid,
    plan_grid,
    run_grid,
    strategy_label,
    without_grid,
)
from robotcl.study.keys import DATA_FILE, GAP_FILE, KEY_VERSION, result_settings, settings_key
from robotcl.study.records import check_records_folder
from robotcl.study.references import expert_dir

#: the gap's manifest: experts, datasets and grids (the table is added by robotcl.reporting.gap)
KEY_FILE = "key.json"
SIDES = ("sl", "rl")


class GapStopped(KeyboardInterrupt):
    """The gap was stopped; running the same command again continues it."""

    def __init__(self, root: Path | None) -> None:
        super().__init__()
        self.root = root


def gap_settings(config: ExperimentConfig) -> dict[str, Any]:
    """What a gap's runs learn and measure, less the cells' seeds and strategies: the preset's
    settings with every strategy settings block given, and what the expert data is made of
    (the experts' steps, seed and policy, the datasets' episodes, noise and seed)."""
    settings = result_settings(config, without=("seed", "strategy"))
    for name in list(config.model_extra or {}):
        one = validate_config({**config.model_dump(), "strategy": [name]})
        settings[name] = result_settings(one)[name]
    data = config.experts
    settings["expert_data"] = {
        "steps_per_task": data.steps_per_task,
        "experts_seed": data.seed,
        "episodes": data.episodes,
        "noise": data.noise,
        "seed": data.seed,
    }
    if data.policy != "final":  # gaps of final experts keep the keys they had before
        settings["expert_data"]["policy"] = data.policy
    if data.successful_only:  # likewise: all rollouts, the default, as before
        settings["expert_data"]["successful_only"] = True
    return settings


def gap_root(config: ExperimentConfig, key: str | None = None) -> Path:
    """The gap's folder: ``<runs_dir>/<name>/gap-<key>``, the key of :func:`gap_settings`
    (computed here unless given)."""
    key = key or settings_key(gap_settings(config))
    return (Path(config.runs_dir) / config.name / f"gap-{key}").absolute()


def _note_older_gaps(config: ExperimentConfig) -> None:
    older = [
        p
        for p in (Path(config.runs_dir) / config.name).glob("gap-*")
        if p.is_dir() and not (p / KEY_FILE).is_file()
    ]
    if older:
        warn(
            f"{len(older)} gap folder(s) in {older[0].parent} were keyed by an earlier robotcl "
            "and are ignored (their runs are not reused)"
        )


def grid_folders(config: ExperimentConfig) -> dict[str, str]:
    """Each side's grid folder in the gap's: ``rl``, and ``sl-<hash of the gap.* settings>``
    (other BC settings are another supervised grid beside the same RL one)."""
    return {"sl": f"sl-{settings_key(config.gap.model_dump(), 6)}", "rl": "rl"}


def supervised_config(config: ExperimentConfig, data_folder: Path, rows: int) -> dict[str, Any]:
    """The supervised side's settings: the preset with the ``bc`` agent (the actor's network
    shape, BC's own learning rate and batch), ``gap.epochs`` passes over the largest task's
    ``rows`` training rows, and as many evaluations a task as the RL side makes."""
    settings = config.gap
    steps = max(1, math.ceil(settings.epochs * rows / settings.batch_size))
    evaluations = max(1, config.steps_per_task // config.eval.every_steps)
    data = without_grid(config.model_dump())
    agent = config.agent
    data["agent"] = {
        "name": "bc",
        "net_arch": agent.net_arch,
        "activation": agent.activation,
        "layer_norm": agent.layer_norm,
        "encoder": agent.encoder.model_dump(),
        "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size,
        "reset_optimizer": agent.reset_optimizer,
        "log_every_updates": agent.log_every_updates,
        "expert_data": str(data_folder),
        "heldout_fraction": agent.heldout_fraction,
    }
    data.update(steps_per_task=steps, reference=None)
    data["eval"] = {**data["eval"], "every_steps": max(1, steps // evaluations)}
    return validate_config(data).model_dump()


def _write_source(path: Path, data: dict[str, Any]) -> str:
    data = {k: v for k, v in data.items() if k not in ("seed", "run_dir", "strategy")}
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _declare_data(config: ExperimentConfig, folder: Path, tasks: list[str]) -> None:
    """``data.json``: what the datasets in ``folder`` are made of (the supervised cells' keys
    hash it, so they are known before any expert is trained)."""
    settings = config.experts
    declared = {
        "experts": {task: expert_dir(config, task).name for task in tasks},
        "episodes": settings.episodes,
        "noise": settings.noise,
        "seed": settings.seed,
    }
    if settings.successful_only:  # other data; all rollouts (the default) keep their keys
        declared["successful_only"] = True
    atomic_write_text(folder / DATA_FILE, json.dumps(declared, indent=1))


def _gap_record(records: Path | None, key: str) -> dict[str, Any] | None:
    """The gap's own record in the records folder (its experts, datasets and the rows its
    supervised budget was made from), or None."""
    if records is None:
        return None
    try:
        record = json.loads((records / f"gap-{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "rows" in record else None


def recorded_unless_changed(
    recorded: dict[str, Any] | None, made: dict[str, Any]
) -> dict[str, Any]:
    """The gap's committed record when ``made`` describes the same data (the same rows and each
    dataset's sha256), else ``made``: a gap run on another machine or ``runs_dir`` leaves the
    record's provenance (run paths, dates) as committed instead of rewriting it."""
    if recorded is None or recorded.get("rows") != made["rows"]:
        return made

    def digests(record: dict[str, Any]) -> dict[str, Any]:
        return {task: d.get("sha256") for task, d in record.get("datasets", {}).items()}

    return recorded if digests(recorded) == digests(made) else made


def gap(source: str | None, overrides: list[str]) -> tuple[Path, int]:
    """Run (or reuse) the experts and both sides, then write ``gap.json``; return the gap's
    folder and the number of failed runs. With ``records=`` (a grid key) a gap whose cells all
    have records trains nothing, not even its experts. Raises :class:`GapStopped` when
    interrupted."""
    grid, rest = parse_grid(overrides, load_source(source).get("compare"))
    if grid["orders"] is not None:
        raise UserInputError("orders", "the gap compares one task order", "drop orders=")
    base = validate_config(merge_overrides(without_grid(load_source(source)), rest))
    if base.reference is not None:
        raise UserInputError(
            "reference", "the gap uses its experts as the reference runs", "drop reference="
        )
    _check_supervised_side(grid["strategies"])
    plan_grid(source, overrides)  # the RL side's cells, checked as compare checks them
    records = None if grid["records"] is None else check_records_folder(grid["records"])
    tasks = suite_of(base).task_names
    settings = gap_settings(base)
    key = settings_key(settings)
    root = gap_root(base, key)
    if not root.is_dir():
        _note_older_gaps(base)
    atomic_write_text(
        root / KEY_FILE,
        json.dumps({"key_version": KEY_VERSION, **settings}, indent=1, default=str),
    )
    data_folder = root / "expert_data"
    _declare_data(base, data_folder, tasks)
    grids = {side: root / folder for side, folder in grid_folders(base).items()}
    items = [f"strategies={json.dumps(grid['strategies'])}", f"seeds={json.dumps(grid['seeds'])}"]
    for name in ("workers", "executor", "ray_address", "records"):
        if grid[name] is not None and (name != "executor" or grid[name] != "local"):
            items.append(f"{name}={grid[name]}")

    def plans(rows: int, check: bool) -> dict[str, GridPlan]:
        sources = {
            "sl": _write_source(
                grids["sl"].with_suffix(".yaml"), supervised_config(base, data_folder, rows)
            ),
            "rl": _write_source(grids["rl"].with_suffix(".yaml"), without_grid(base.model_dump())),
        }
        return {
            side: plan_grid(sources[side], items, root=grids[side], check=check) for side in SIDES
        }

    record = _gap_record(records, key)
    planned = plans(record["rows"], check=False) if record else None
    if planned is None or any(c.status == "pending" for c in planned["sl"].cells):
        experts = _experts(base, grid["workers"])  # the supervised side needs their data
        provenance = gather_datasets(base, experts, data_folder)
        rows = max(
            math.ceil(p["transitions"] * (1 - base.agent.heldout_fraction))
            for p in provenance.values()
        )
        made = {
            "rows": rows,
            "experts": [_expert_entry(e) for e in experts],
            "datasets": provenance,
        }
        record = recorded_unless_changed(record, made)
        planned = plans(rows, check=True)
    else:
        check_cells(planned["rl"].configs)
    failed = 0
    try:
        for side in SIDES:  # supervised first: it is the quick one
            cells = run_grid(planned[side])
            failed += sum(c.status == "failed" for c in cells)
    except KeyboardInterrupt:
        raise GapStopped(root) from None
    if records is not None:
        atomic_write_text(records / f"gap-{key}.json", json.dumps(record, indent=1))
    manifest = {
        "experts": record["experts"],
        "metric_mode": base.eval.metric,
        "datasets": record["datasets"],
        "sl_grid": str(grids["sl"]),
        "rl_grid": str(grids["rl"]),
    }
    atomic_write_text(root / GAP_FILE, json.dumps(manifest, indent=1))
    return root, failed


def _check_supervised_side(strategies: list[Any]) -> None:
    """Every strategy of the grid exists and can serve the bc agent: refused before any expert
    is trained."""
    bc = AGENTS.get("bc")
    for strategy in strategies:
        for name in strategy_label(strategy)[1]:
            missing = unmet_needs(STRATEGIES.get(name), bc)
            if missing:
                raise UserInputError(
                    f"strategies: {name}",
                    f"the supervised side's bc agent lacks what it needs ({', '.join(missing)})",
                    "leave it out of robotcl gap",
                )


def _expert_entry(expert: Expert) -> dict[str, Any]:
    return {
        "task": expert.task,
        "run": str(expert.run_dir),
        "success": expert.success,
        "threshold": expert.threshold,
        "flagged": expert.flagged,
    }


def _experts(config: ExperimentConfig, workers: int | None) -> list[Expert]:
    try:
        experts = train_experts(config, workers)
    except KeyboardInterrupt:
        raise GapStopped(None) from None
    broken = [e for e in experts if e.success is None]
    if broken:
        e = broken[0]
        raise UserInputError(
            f"expert of {e.task}",
            f"{e.status}: {e.error or 'no result'}",
            f"see {e.run_dir}; robotcl experts shows them all",
        )
    return experts
