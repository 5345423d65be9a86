"""``robotcl gap``: the same strategies in supervised and in reinforcement lifelong learning.

The CoRL 2021 question ("Evaluations of the gap between supervised and reinforcement lifelong
learning on robotic manipulation tasks", Yang et al.): do methods that work in supervised
lifelong learning also work in RL? For every strategy and seed of a preset:

1. the experts (:mod:`robotcl.commands.experts`): one single-task run a task, cached and reused;
2. their datasets, gathered into ``<gap>/expert_data`` (``<task>.npz`` + provenance);
3. the supervised side: a grid of the ``bc`` agent (behaviour cloning with the RL actor's network
   shape) on those datasets, ``<gap>/sl-<hash of gap.*>``;
4. the RL side: the preset's own grid, ``<gap>/rl``, with ``reference=experts`` (Continual
   World's forward transfer against the experts);
5. ``gap.json``: the experts, the datasets' provenance and both grids, from which
   :mod:`robotcl.reporting.gap` makes the table (ACC, memory, BWT, forgetting, FWT for SL, RL and
   RL - SL with 90% bootstrap intervals over seeds) and its figures.

The gap folder is named by the study key of the settings that decide its runs
(:mod:`robotcl.study.keys`, less the cells' seeds and strategies, plus the datasets' episodes,
noise and seed), so running the same command again reuses every finished run (and resumes
stopped ones), and adding strategies or seeds adds only their runs; other ``gap.*`` settings
(BC's epochs, learning rate, batch) make another supervised grid beside the same RL one.
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
from robotcl.outputs import atomic_write_text
from robotcl.study.grid import parse_grid, plan_grid, run_grid, without_grid
from robotcl.study.keys import KEY_VERSION, result_settings, settings_key

#: the gap's manifest: experts, datasets and grids (the table is added by robotcl.reporting.gap)
GAP_FILE = "gap.json"
KEY_FILE = "key.json"


class GapStopped(KeyboardInterrupt):
    """The gap was stopped; running the same command again continues it."""

    def __init__(self, root: Path | None) -> None:
        super().__init__()
        self.root = root


def rl_config(config: ExperimentConfig) -> ExperimentConfig:
    """The RL side's settings: the preset with its experts as the reference runs."""
    return validate_config({**without_grid(config.model_dump()), "reference": ["experts"]})


def gap_settings(config: ExperimentConfig) -> dict[str, Any]:
    """What a gap's runs learn and measure, less the cells' seeds and strategies: the RL side's
    settings with every strategy settings block given, and the expert datasets' settings."""
    rl = rl_config(config)
    settings = result_settings(rl, without=("seed", "strategy"))
    for name in list(config.model_extra or {}):
        settings[name] = result_settings(validate_config({**rl.model_dump(), "strategy": [name]}))[
            name
        ]
    data = config.experts
    settings["expert_data"] = {"episodes": data.episodes, "noise": data.noise, "seed": data.seed}
    return settings


def gap_root(config: ExperimentConfig) -> Path:
    """The gap's folder: ``<runs_dir>/<name>/gap-<key of gap_settings>``."""
    key = settings_key(gap_settings(config))
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


def gap(source: str | None, overrides: list[str]) -> tuple[Path, int]:
    """Run (or reuse) the experts and both sides, then write ``gap.json``; return the gap's
    folder and the number of failed runs. Raises :class:`GapStopped` when interrupted."""
    grid, rest = parse_grid(overrides, load_source(source).get("compare"))
    if grid["orders"] is not None:
        raise UserInputError("orders", "the gap compares one task order", "drop orders=")
    base = validate_config(merge_overrides(without_grid(load_source(source)), rest))
    if base.reference is not None:
        raise UserInputError(
            "reference", "the gap uses its experts as the reference runs", "drop reference="
        )
    experts = _experts(base, grid["workers"])
    root = gap_root(base)
    if not root.is_dir():
        _note_older_gaps(base)
    atomic_write_text(
        root / KEY_FILE,
        json.dumps({"key_version": KEY_VERSION, **gap_settings(base)}, indent=1, default=str),
    )
    data_folder = root / "expert_data"
    provenance = gather_datasets(base, experts, data_folder)
    rows = max(
        math.ceil(p["transitions"] * (1 - base.agent.heldout_fraction)) for p in provenance.values()
    )
    grids = {side: root / folder for side, folder in grid_folders(base).items()}
    sources = {
        "sl": _write_source(
            grids["sl"].with_suffix(".yaml"), supervised_config(base, data_folder, rows)
        ),
        "rl": _write_source(grids["rl"].with_suffix(".yaml"), rl_config(base).model_dump()),
    }
    items = [f"strategies={json.dumps(grid['strategies'])}", f"seeds={json.dumps(grid['seeds'])}"]
    for key in ("workers", "executor", "ray_address"):
        if grid[key] is not None and (key != "executor" or grid[key] != "local"):
            items.append(f"{key}={grid[key]}")
    failed = 0
    try:
        for side in ("sl", "rl"):  # supervised first: it is the quick one
            cells = run_grid(plan_grid(sources[side], items, root=grids[side]))
            failed += sum(c.status == "failed" for c in cells)
    except KeyboardInterrupt:
        raise GapStopped(root) from None
    record = {
        "experts": [
            {
                "task": e.task,
                "run": str(e.run_dir),
                "success": e.success,
                "threshold": e.threshold,
                "flagged": e.flagged,
            }
            for e in experts
        ],
        "metric_mode": base.eval.metric,
        "datasets": provenance,
        "sl_grid": str(grids["sl"]),
        "rl_grid": str(grids["rl"]),
    }
    atomic_write_text(root / GAP_FILE, json.dumps(record, indent=1))
    return root, failed


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
