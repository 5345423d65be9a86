"""A grid: the cells of a study in one folder, listed in its manifest (``grid.json``).

A grid is strategies x seeds (x task orders) of one preset, one run directory a cell. Planning a
grid checks every cell before anything is written; running it keeps the cells that finished,
resumes the stopped ones and runs the rest (:mod:`robotcl.study.executors`). The grid keys
(``strategies=``, ``seeds=``, ``orders=``, ``workers=``, ``executor=``, ``ray_address=``,
``records=``) come from the command line or a preset's ``compare:`` block. With ``records=FOLDER``
a cell whose key has a record there is taken as finished, and every cell that finishes leaves
one (:mod:`robotcl.study.records`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robotcl.config import (
    ExperimentConfig,
    load_source,
    merge_overrides,
    unused_settings,
    validate_config,
)
from robotcl.envs.orders import expand_orders, order_label
from robotcl.errors import UserInputError, warn
from robotcl.experiment import Experiment
from robotcl.outputs import atomic_write_text, check_writable, make_free_dir
from robotcl.study import records
from robotcl.study.cells import Cell, finished_results
from robotcl.study.executors import EXECUTORS, execute, shielded
from robotcl.study.keys import run_key
from robotcl.study.placement import spread
from robotcl.study.records import check_records_folder
from robotcl.study.references import reference_runs

GRID_KEYS = ("strategies", "seeds", "orders", "workers", "executor", "ray_address", "records")
MANIFEST = "grid.json"


class GridStopped(KeyboardInterrupt):
    """The grid was stopped (Ctrl-C, SIGTERM, SIGHUP); its runs keep their last checkpoints."""

    def __init__(self, root: Path, cells: list[Cell]) -> None:
        super().__init__()
        self.root, self.cells = root, cells

    @property
    def stopped(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "stopped"]


def _seed_list(value: Any) -> list[int]:
    """``seeds=N`` (0..N-1) or ``seeds=[3,4]``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return list(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        and len(set(value)) == len(value)
    ):
        return list(value)
    raise UserInputError(
        "seeds",
        f"{value!r} is neither a count nor a list of distinct seeds",
        "seeds=3 or seeds=[3,4]",
    )


def parse_grid(
    overrides: list[str], defaults: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Split ``strategies=``, ``seeds=`` (a count or a list), ``orders=`` (a list of orders or
    ``random:K``), ``workers=`` from the experiment overrides; a preset's ``compare:`` block gives
    the defaults. ``seed=S`` alone means ``seeds=[S]``; next to ``seeds=`` it is refused;
    ``order=random:K`` means ``orders=random:K``."""
    grid: dict[str, Any] = dict(defaults or {})
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise UserInputError(
            f"config key 'compare.{unknown[0]}'", "unknown key", f"allowed: {', '.join(GRID_KEYS)}"
        )
    rest, given = [], set()
    for item in overrides:
        key, _, raw = item.partition("=")
        if key in GRID_KEYS:
            try:
                grid[key] = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise UserInputError(
                    f"{key}", f"'{raw}' is not a valid value", "e.g. seeds=3 or seeds=[3,4]"
                ) from None
            given.add(key)
        else:
            rest.append(item)
    sweep = [i for i in rest if i.startswith("order=random:")]
    if sweep and "orders" in given:
        raise UserInputError(sweep[0], "conflicts with orders= (the grid's orders)", "give one")
    if sweep:
        rest = [item for item in rest if item not in sweep]
        grid["orders"] = sweep[-1].partition("=")[2]
    seed_items = [item for item in rest if item.partition("=")[0] == "seed"]
    if seed_items and "seeds" in given:
        raise UserInputError(
            seed_items[0], "conflicts with seeds= (the grid's seeds)", "give one of them"
        )
    if seed_items:
        rest = [item for item in rest if item not in seed_items]
        grid["seeds"] = [yaml.safe_load(seed_items[-1].partition("=")[2])]
    strategies = grid.get("strategies", ["finetune"])
    if isinstance(strategies, str):
        strategies = [strategies]
    if not isinstance(strategies, list) or not strategies:
        raise UserInputError("strategies", f"{strategies!r} is not a list", "e.g. [finetune,ewc]")
    labels = [strategy_label(s)[0] for s in strategies]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:  # two cells would share one run directory
        raise UserInputError(f"strategies={labels}", f"'{twice[0]}' is given twice", "once each")
    for s in strategies:
        names = strategy_label(s)[1]
        if len(set(names)) < len(names):
            raise UserInputError(
                f"strategies: {'+'.join(names)}", "composes a strategy with itself", "once each"
            )
    seeds = _seed_list(grid.get("seeds", 1))
    workers = grid.get("workers")
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or workers < 0
    ):
        raise UserInputError("workers", f"{workers!r} is not a non-negative integer", "e.g. 2")
    orders = expand_orders(grid["orders"]) if grid.get("orders") is not None else None
    executor = grid.get("executor") or "local"
    if executor not in EXECUTORS:
        raise UserInputError("executor", f"unknown executor {executor!r}", "local or ray")
    address = grid.get("ray_address")
    if address is not None and not isinstance(address, str):
        raise UserInputError("ray_address", f"{address!r} is not an address", "e.g. auto")
    if address is not None and executor != "ray":
        raise UserInputError("ray_address", "is used by executor=ray only", "add executor=ray")
    folder = grid.get("records")
    if folder is not None and (not isinstance(folder, str) or not folder):
        raise UserInputError("records", f"{folder!r} is not a folder", "e.g. docs/results/study")
    return {
        "strategies": strategies,
        "seeds": seeds,
        "orders": orders,
        "workers": workers,
        "executor": executor,
        "ray_address": address,
        "records": folder,
    }, rest


def strategy_label(strategy: Any) -> tuple[str, list[str]]:
    """A grid's strategy entry (a name, or a list that composes) as its label and names."""
    names = strategy if isinstance(strategy, list) else [strategy]
    return "+".join(str(n) for n in names), [str(n) for n in names]


def without_grid(data: dict[str, Any]) -> dict[str, Any]:
    """A preset's data without its ``compare:`` block (the grid, not one run's settings)."""
    data.pop("compare", None)
    return data


def cell_config(
    source: str | None,
    rest: list[str],
    names: list[str],
    seed: int,
    run_dir: str,
    device: str,
    order: str | list[str] | None = None,
) -> dict[str, Any]:
    """One cell's config: the source with the grid's overrides, its strategies and seed."""
    data = without_grid(load_source(source))
    items = [*rest, f"seed={seed}", f"run_dir={run_dir}", f"device={device}", "progress=false"]
    if order is not None:
        items.append(f"order={json.dumps(order)}")
    data = merge_overrides(data, items, quiet=True)  # the grid's base config has said it once
    data["strategy"] = names
    return validate_config(data).model_dump()


def check_cells(configs: list[tuple[Cell, dict[str, Any]]]) -> None:
    """Prepare one run of each strategy without writing: what a run would refuse at its start
    (a group its learner lacks, a reference file, missing experts) is refused before the study
    starts."""
    seen: set[str] = set()
    prepared: set[str] = set()
    for cell, data in configs:
        if cell.group in seen or cell.status != "pending":
            continue
        seen.add(cell.group)
        # on the CPU: the device itself was checked with the config; this process stays off GPUs
        config = validate_config({**data, "device": "cpu"})
        experiment = Experiment(config, reference_runs(config))  # checks the order
        if cell.label not in prepared:
            prepared.add(cell.label)
            experiment.prepare()
        experiment.evaluator.close()


def write_manifest(root: Path, plan: GridPlan) -> None:
    """``grid.json``: the grid's source, overrides, grid keys and every cell with its config."""
    grid = plan.grid
    atomic_write_text(
        root / MANIFEST,
        json.dumps(
            {
                "source": plan.source,
                "overrides": plan.rest,
                "workers": grid["workers"],
                "executor": grid["executor"],
                "ray_address": grid["ray_address"],
                "orders": grid["orders"],
                "records": grid["records"],
                "cells": [{"cell": asdict(c), "config": d} for c, d in plan.configs],
            },
            indent=1,
        ),
    )


def read_manifest(root: Path) -> dict[str, Any]:
    """A grid folder's manifest, or a one-line error."""
    try:
        return json.loads((root / MANIFEST).read_text())
    except OSError:
        raise UserInputError(
            f"grid '{root}'", f"has no {MANIFEST}", "name a compare-* folder"
        ) from None
    except ValueError as exc:
        raise UserInputError(f"grid '{root}'", f"{MANIFEST} is corrupt ({exc})") from None


def grid_cells(root: str | Path) -> list[Cell]:
    """The cells of a grid directory (from its manifest)."""
    manifest = read_manifest(Path(root))
    return [Cell(**c["cell"]) for c in manifest["cells"]]


def is_grid(path: str | Path) -> bool:
    """A grid folder (it holds grid.json)."""
    return (Path(path) / MANIFEST).is_file()


@dataclass
class GridPlan:
    """A grid ready to run: its folder, source, overrides, grid keys and cells (checked)."""

    root: Path
    source: str | None
    rest: list[str]
    grid: dict[str, Any]
    base: ExperimentConfig
    configs: list[tuple[Cell, dict[str, Any]]] = field(default_factory=list)
    resumed: bool = False
    stamped: bool = False  # root is a new compare-<time> folder, named by the clock

    @property
    def cells(self) -> list[Cell]:
        return [cell for cell, _ in self.configs]


def plan_grid(
    source: str | None,
    overrides: list[str],
    resume_root: str | Path | None = None,
    root: str | Path | None = None,
    check: bool = True,
) -> GridPlan:
    """The grid of ``source`` and ``overrides``, every cell checked (``check``; else the caller
    calls :func:`check_cells` on ``plan.configs`` before running) and nothing written. With
    ``resume_root`` an existing grid goes on: finished runs are kept, stopped ones of the
    strategies, seeds and orders asked for resumed (the grid's own unless given; the others are
    left as they are, for a command that asks for them), and cells for new ``seeds=`` or
    ``strategies=`` added. ``root``: the grid's folder (default: a
    new ``compare-<time>`` one); a grid already there goes on as with ``resume_root``
    (``overrides`` then holds grid keys only)."""
    if root is not None and is_grid(root):
        resume_root = root
    if resume_root is not None:
        root = Path(resume_root).absolute()
        manifest = read_manifest(root)
        source, rest = manifest["source"], list(manifest["overrides"])
        grid_only = [o for o in overrides if o.partition("=")[0] not in GRID_KEYS]
        if grid_only:
            raise UserInputError(
                f"compare --resume: '{grid_only[0]}'",
                "a grid keeps its settings",
                f"only {', '.join(k + '=' for k in GRID_KEYS)} may be given",
            )
        configs = [(Cell(**c["cell"]), c["config"]) for c in manifest["cells"]]
        known = {(c.label, c.seed, c.order) for c, _ in configs}
        # the grid as it is; strategies=, seeds=, orders= given now replace these
        labels = list(dict.fromkeys(c.label for c, _ in configs))
        defaults = {
            "workers": manifest.get("workers"),
            "executor": manifest.get("executor"),
            "ray_address": manifest.get("ray_address"),
            "orders": manifest.get("orders"),
            "records": manifest.get("records"),
            "strategies": [lab.split("+") for lab in labels],
            "seeds": sorted({c.seed for c, _ in configs}),
        }
        grid, _ = parse_grid(overrides, defaults)
    else:
        grid, rest = parse_grid(overrides, load_source(source).get("compare"))
        configs, known = [], set()
    base = validate_config(merge_overrides(without_grid(load_source(source)), list(rest)))
    stamped = root is None
    if stamped:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        root = Path(base.runs_dir) / base.name / f"compare-{stamp}"
    root = Path(root).absolute()
    used = {n for s in grid["strategies"] for n in strategy_label(s)[1]}
    unused = unused_settings(base, used)
    if unused:
        warn(
            "settings of strategies outside the grid are ignored: "
            + ", ".join(k + ".*" for k in unused)
        )
    orders = [(o, "" if o is None else order_label(o)) for o in grid["orders"] or [None]]
    wanted = {  # the cells asked for, by (label, seed, order's label)
        (strategy_label(s)[0], seed, tag): (s, seed, order, tag)
        for s in grid["strategies"]
        for order, tag in orders
        for seed in grid["seeds"]
    }
    new = [cell for name, cell in wanted.items() if name not in known]
    ray = grid["executor"] == "ray"
    # Ray gives each task its GPUs (CUDA_VISIBLE_DEVICES): the config's device stays as it is
    count = len(configs) + len(new)
    devices = [base.device] * count if ray else spread(base.device, count)
    for strategy, seed, order, tag in new:  # all checked before anything is written
        label, names = strategy_label(strategy)
        run_dir = str(root / (f"{label}-{tag}-s{seed}" if tag else f"{label}-s{seed}"))
        cell = Cell(label, seed, run_dir, devices[len(configs)], order=tag)
        data = cell_config(source, rest, names, seed, run_dir, cell.device, order)
        cell.key = run_key(validate_config(data))
        configs.append((cell, data))
    recorded: dict[str, Path] = {}
    if grid["records"] is not None:
        folder = check_records_folder(grid["records"])
        grid["records"] = str(folder)
        recorded = records.index(folder)
    for cell, _ in configs:
        if cell.status == "done" and finished_results(cell.run_dir) is not None:
            continue
        if cell.key in recorded:  # finished on another machine
            cell.run_dir, cell.status, cell.error = str(recorded[cell.key]), "done", None
        elif (cell.label, cell.seed, cell.order) in wanted:
            cell.status, cell.error = "pending", None
        elif cell.status != "failed":  # not asked for now: waits, as it is, for a command that is
            cell.status = "stopped"
    if check:
        check_cells(configs)
    check_writable(root, "runs_dir")
    resumed = resume_root is not None
    return GridPlan(root, source, rest, grid, base, configs, resumed=resumed, stamped=stamped)


def claim_root(plan: GridPlan) -> None:
    """Make the grid's folder. A clock-named folder that another grid started in the same second
    has taken gets a ``~N`` suffix (as a run's folder does), and the plan's cells move with it:
    run folders enter no key."""
    if plan.resumed or not plan.stamped:
        plan.root.mkdir(parents=True, exist_ok=plan.resumed)
        return
    taken = plan.root
    root = make_free_dir(taken)
    for cell, data in plan.configs:
        if root != taken and Path(cell.run_dir).parent == taken:
            cell.run_dir = data["run_dir"] = str(root / Path(cell.run_dir).name)
    plan.root = root


def run_grid(plan: GridPlan) -> list[Cell]:
    """Run the plan's pending cells and keep its manifest current; return the cells. Raises
    :class:`GridStopped` (after writing the manifest) when stopped."""

    def start() -> None:  # the grid's folder and manifest, once the executor is ready
        claim_root(plan)
        write_manifest(plan.root, plan)

    folder = plan.grid.get("records")

    def finished(cell: Cell) -> None:  # a record as soon as a cell is done
        if folder is not None and cell.status == "done":
            records.export(cell, Path(folder))

    try:
        desc = f"grid of {len(plan.configs)}"
        execute(plan.configs, plan.base, plan.grid, before=start, desc=desc, finished=finished)
    except KeyboardInterrupt:
        with shielded():
            write_manifest(plan.root, plan)
        raise GridStopped(plan.root, plan.cells) from None
    for cell in plan.cells:  # cells done before the grid had a records folder
        finished(cell)
    write_manifest(plan.root, plan)
    return plan.cells
