"""Strategy comparison grids: strategies x seeds (x task orders) on one suite, one run directory
each.

Runs go to worker processes, as many at once as fit the cores, the host memory and the GPUs' free
memory (robotcl.placement; ``workers=N`` sets the count, ``workers=0`` runs them in this
process), or with ``executor=ray`` to a Ray cluster (robotcl.ray_executor; ``ray_address=``).
A run that fails is reported with its error; the others' results are kept. The grid
ends with one comparison: a table of ACC, BWT, forgetting and FWT with bootstrap intervals over
seeds, and figures (final success per task per strategy; success on every task along the whole
sequence, as in Continual World's figures; the same for return, which moves before success does
in short runs) written as PNG and into TensorBoard. A grid over several task orders (``orders=``)
also gives the spread of each metric across orders.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection as mp_connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from robotcl.config import (
    ExperimentConfig,
    load_source,
    merge_overrides,
    unused_settings,
    validate_config,
)
from robotcl.envs.orders import expand_orders, order_label
from robotcl.errors import UserInputError, warn
from robotcl.metrics import aggregate
from robotcl.outputs import atomic_write_text, check_writable
from robotcl.placement import THREADS_PER_RUN, Placement, plan, spread
from robotcl.plots import curves_figure
from robotcl.report import COLUMNS, SCORES, format_table, stat_text

GRID_KEYS = ("strategies", "seeds", "orders", "workers", "executor", "ray_address")
EXECUTORS = ("local", "ray")
MANIFEST = "grid.json"


@dataclass
class GridRun:
    """One cell of the grid and how it ended: ``status`` is done, failed, stopped or pending."""

    label: str
    seed: int
    run_dir: str
    device: str
    error: str | None = None
    status: str = "pending"
    order: str = ""  # the order's label in a grid over orders ("" otherwise)

    @property
    def group(self) -> str:
        """What curves and bars are averaged over seeds by: the strategy (and the order)."""
        return f"{self.label} @ {self.order}" if self.order else self.label


class GridStopped(KeyboardInterrupt):
    """The grid was stopped (Ctrl-C, SIGTERM, SIGHUP); its runs keep their last checkpoints."""

    def __init__(self, root: Path, stopped: list[GridRun]) -> None:
        super().__init__()
        self.root, self.stopped = root, stopped


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
    return {
        "strategies": strategies,
        "seeds": seeds,
        "orders": orders,
        "workers": workers,
        "executor": executor,
        "ray_address": address,
    }, rest


def _label(strategy: Any) -> tuple[str, list[str]]:
    names = strategy if isinstance(strategy, list) else [strategy]
    return "+".join(str(n) for n in names), [str(n) for n in names]


def _cell_config(
    source: str | None,
    rest: list[str],
    names: list[str],
    seed: int,
    run_dir: str,
    device: str,
    order: str | list[str] | None = None,
) -> dict[str, Any]:
    data = load_source(source)
    data.pop("compare", None)
    items = [*rest, f"seed={seed}", f"run_dir={run_dir}", f"device={device}", "progress=false"]
    if order is not None:
        items.append(f"order={json.dumps(order)}")
    data = merge_overrides(data, items, quiet=True)  # the grid's base config has said it once
    data["strategy"] = names
    return validate_config(data).model_dump()


def _placement(base: ExperimentConfig, pending: int, workers: int | None) -> Placement:
    """How many of the grid's runs go at once (see robotcl.placement)."""
    if workers is not None:
        return plan(base.device, pending, 0, workers=workers)
    from robotcl.experiment import memory_needs, suite_of

    suite = suite_of(base)
    replay, ssl = memory_needs(base, suite)
    return plan(base.device, pending, replay + ssl, pixels=suite.layout is not None)


def _check_cells(configs: list[tuple[GridRun, dict[str, Any]]]) -> None:
    """Prepare one run of each strategy without writing: what a run would refuse at its start
    (a group its learner lacks, a reference file) is refused before the grid starts."""
    from robotcl.experiment import Experiment

    seen: set[str] = set()
    prepared: set[str] = set()
    for cell, data in configs:
        if cell.group in seen or cell.status != "pending":
            continue
        seen.add(cell.group)
        # on the CPU: the device itself was checked with the config; this process stays off GPUs
        experiment = Experiment(validate_config({**data, "device": "cpu"}))  # checks the order
        if cell.label not in prepared:
            prepared.add(cell.label)
            experiment.prepare()
        experiment.evaluator.close()


# -- running the grid ---------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker if the compare process dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _execute(config_data: dict[str, Any]) -> None:
    """Run one cell: resume its directory when it holds a stopped run, else start it."""
    from robotcl.experiment import resume, run

    run_dir = Path(config_data["run_dir"])
    if (run_dir / "config.yaml").is_file():
        resume(run_dir)
    else:
        run(validate_config(config_data))


def _outcome(config_data: dict[str, Any]) -> tuple[str, str | None]:
    """Run one cell; return (status, error) and leave the traceback in error.txt."""
    try:
        _execute(config_data)
    except KeyboardInterrupt:
        return "stopped", None
    except Exception as exc:  # report, do not lose the grid
        run_dir = Path(config_data["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        return "failed", f"{type(exc).__name__}: {exc}"
    return "done", None


def _worker(config_data: dict[str, Any], conn: Any) -> None:
    """Body of a worker process: one run, its outcome sent back through ``conn``."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    conn.send(_outcome(config_data))
    conn.close()


class _Workers:
    """At most ``size`` runs at once, each in its own spawned process: a process that dies takes
    only its own run with it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.context = multiprocessing.get_context("spawn")
        self.running: dict[Any, tuple[GridRun, Any]] = {}

    def run(self, jobs: list[tuple[GridRun, dict[str, Any]]], done: Any) -> None:
        queue = list(jobs)
        while queue or self.running:
            while queue and len(self.running) < self.size:
                cell, data = queue.pop(0)
                receive, send = self.context.Pipe(duplex=False)
                process = self.context.Process(target=_worker, args=(data, send), daemon=True)
                process.start()
                send.close()
                self.running[process] = (cell, receive)
            sentinels = [p.sentinel for p in self.running]
            for ready in mp_connection.wait(sentinels, timeout=5):
                process = next(p for p in self.running if p.sentinel == ready)
                cell, receive = self.running.pop(process)
                self._finish(process, cell, receive)
                done(cell)

    @staticmethod
    def _finish(process: Any, cell: GridRun, receive: Any) -> None:
        process.join()
        try:
            cell.status, cell.error = receive.recv()
        except EOFError:  # killed (out of memory, a signal) or crashed inside native code
            cell.status = "failed"
            cell.error = f"worker process died (exit code {process.exitcode})"
            run_dir = Path(cell.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(cell.error + "\n")
        receive.close()

    def stop(self, grace_s: float = 30.0) -> None:
        """Interrupt every running run (each keeps its last checkpoint), then reap them."""
        for process in self.running:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process, (cell, receive) in list(self.running.items()):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
            self._finish(process, cell, receive)
            if cell.status != "failed":
                cell.status, cell.error = "stopped", None
        self.running.clear()


@contextlib.contextmanager
def _signals(handler: Any, *signals: signal.Signals) -> Iterator[None]:
    """``handler`` for ``signals`` inside the block, the previous handlers after it (only the
    main thread may set handlers; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _write_manifest(
    root: Path,
    source: str | None,
    rest: list[str],
    grid: dict[str, Any],
    configs: list[tuple[GridRun, dict[str, Any]]],
) -> None:
    atomic_write_text(
        root / MANIFEST,
        json.dumps(
            {
                "source": source,
                "overrides": rest,
                "workers": grid["workers"],
                "executor": grid["executor"],
                "ray_address": grid["ray_address"],
                "orders": grid["orders"],
                "cells": [{"cell": asdict(c), "config": d} for c, d in configs],
            },
            indent=1,
        ),
    )


def _read_manifest(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / MANIFEST).read_text())
    except OSError:
        raise UserInputError(
            f"grid '{root}'", f"has no {MANIFEST}", "name a compare-* folder"
        ) from None
    except ValueError as exc:
        raise UserInputError(f"grid '{root}'", f"{MANIFEST} is corrupt ({exc})") from None


def finished_results(run_dir: str | Path) -> dict[str, Any] | None:
    """The results of a run that finished every task (metrics written), or None."""
    try:
        data = json.loads((Path(run_dir) / "results.json").read_text())
    except (OSError, ValueError):
        return None
    done = data.get("metrics") and data.get("completed_tasks") == len(data.get("tasks", []))
    return data if done else None


def compare(
    source: str | None,
    overrides: list[str],
    resume_root: str | Path | None = None,
    root: str | Path | None = None,
) -> tuple[Path, int]:
    """Run the grid and write the comparison; return its directory and the number of failed
    runs. With ``resume_root`` an existing grid goes on: finished runs are kept, stopped ones
    resumed, and cells for new ``seeds=`` or ``strategies=`` added. ``root``: the grid's folder
    (default: a new ``compare-<time>`` one); a grid already there goes on as with
    ``resume_root`` (``overrides`` then holds grid keys only).

    Raises :class:`GridStopped` (after writing the comparison of what finished) when stopped.
    """
    if root is not None and (Path(root) / MANIFEST).is_file():
        resume_root = root
    if resume_root is not None:
        root = Path(resume_root).absolute()
        manifest = _read_manifest(root)
        source, rest = manifest["source"], list(manifest["overrides"])
        grid_only = [o for o in overrides if o.partition("=")[0] not in GRID_KEYS]
        if grid_only:
            raise UserInputError(
                f"compare --resume: '{grid_only[0]}'",
                "a grid keeps its settings",
                f"only {', '.join(k + '=' for k in GRID_KEYS)} may be given",
            )
        configs = [(GridRun(**c["cell"]), c["config"]) for c in manifest["cells"]]
        known = {(c.label, c.seed, c.order) for c, _ in configs}
        # the grid as it is; strategies=, seeds=, orders= given now replace these
        labels = list(dict.fromkeys(c.label for c, _ in configs))
        defaults = {
            "workers": manifest.get("workers"),
            "executor": manifest.get("executor"),
            "ray_address": manifest.get("ray_address"),
            "orders": manifest.get("orders"),
            "strategies": [lab.split("+") for lab in labels],
            "seeds": sorted({c.seed for c, _ in configs}),
        }
        grid, _ = parse_grid(overrides, defaults)
    else:
        grid, rest = parse_grid(overrides, load_source(source).get("compare"))
        configs, known = [], set()
    base = validate_config(merge_overrides(_strip(load_source(source)), list(rest)))
    if root is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        root = Path(base.runs_dir) / base.name / f"compare-{stamp}"
    root = Path(root).absolute()
    used = {n for s in grid["strategies"] for n in _label(s)[1]}
    unused = unused_settings(base, used)
    if unused:
        warn(
            "settings of strategies outside the grid are ignored: "
            + ", ".join(k + ".*" for k in unused)
        )
    orders = [(o, "" if o is None else order_label(o)) for o in grid["orders"] or [None]]
    new = [
        (s, seed, order, tag)
        for s in grid["strategies"]
        for order, tag in orders
        for seed in grid["seeds"]
        if (_label(s)[0], seed, tag) not in known
    ]
    ray = grid["executor"] == "ray"
    # Ray gives each task its GPUs (CUDA_VISIBLE_DEVICES): the config's device stays as it is
    count = len(configs) + len(new)
    devices = [base.device] * count if ray else spread(base.device, count)
    for strategy, seed, order, tag in new:  # all checked before anything is written
        label, names = _label(strategy)
        run_dir = str(root / (f"{label}-{tag}-s{seed}" if tag else f"{label}-s{seed}"))
        cell = GridRun(label, seed, run_dir, devices[len(configs)], order=tag)
        data = _cell_config(source, rest, names, seed, run_dir, cell.device, order)
        configs.append((cell, data))
    for cell, _ in configs:
        if cell.status != "done" or finished_results(cell.run_dir) is None:
            cell.status, cell.error = "pending", None
    _check_cells(configs)
    check_writable(root, "runs_dir")
    cells = [cell for cell, _ in configs]

    def start() -> None:  # the grid's folder and manifest, once the executor is ready
        root.mkdir(parents=True, exist_ok=resume_root is not None)
        _write_manifest(root, source, rest, grid, configs)

    try:
        execute(configs, base, grid, before=start, desc=f"grid of {len(configs)}")
    except KeyboardInterrupt:
        with _signals(signal.SIG_IGN, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            _write_manifest(root, source, rest, grid, configs)
            write_comparison(root, cells)
        raise GridStopped(root, [c for c in cells if c.status == "stopped"]) from None
    _write_manifest(root, source, rest, grid, configs)
    write_comparison(root, cells)
    return root, sum(c.status == "failed" for c in cells)


def execute(
    configs: list[tuple[GridRun, dict[str, Any]]],
    base: ExperimentConfig,
    grid: dict[str, Any],
    before: Any = None,
    desc: str = "runs",
) -> None:
    """Run the pending cells of ``configs`` (local worker processes placed by what fits, or Ray
    with ``grid["executor"] == "ray"``); each cell's status and error are set as it ends.
    ``before()`` runs once the executor is ready and before the first run starts (a wrong Ray
    address is refused before it writes). Ctrl-C, SIGTERM and SIGHUP stop every run (each keeps
    its last checkpoint); the cells not done are then "stopped" and KeyboardInterrupt is raised.
    """
    jobs = [(cell, data) for cell, data in configs if cell.status == "pending"]
    pool: Any
    if grid.get("executor") == "ray":
        from robotcl.ray_executor import RayWorkers

        pool = RayWorkers(grid.get("ray_address"), gpu_runs=base.device != "cpu")
        workers, reason = max(1, len(jobs)), pool.describe(len(jobs))
        for _, data in configs:
            data["torch_threads"] = base.torch_threads or THREADS_PER_RUN
    else:
        placement = _placement(base, len(jobs), grid.get("workers"))
        workers, reason = placement.workers, placement.reason
        pool = _Workers(max(1, workers))
        if workers > 1 and base.torch_threads is None:  # share the cores, not oversubscribe
            for _, data in configs:
                data["torch_threads"] = max(1, (os.cpu_count() or 1) // workers)
    if jobs and workers:
        print(f"robotcl: {reason}", file=sys.stderr)
    if before is not None:
        before()
    bar = tqdm(total=len(jobs), unit="run", desc=desc, dynamic_ncols=True)
    try:
        with _signals(_interrupt, signal.SIGTERM, signal.SIGHUP):  # stop as Ctrl-C does
            if workers == 0:
                for cell, data in jobs:
                    cell.status, cell.error = _outcome(data)
                    if cell.status == "stopped":
                        raise KeyboardInterrupt
                    bar.update(1)
            else:
                pool.run(jobs, lambda cell: bar.update(1))
    except KeyboardInterrupt:
        # while the runs wind down, a second Ctrl-C or SIGTERM does not cut it short
        with _signals(signal.SIG_IGN, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            pool.stop()
            for cell, _ in configs:
                if cell.status == "pending":
                    cell.status = "stopped"
        raise
    finally:
        bar.close()


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("compare", None)
    return data


def grid_cells(root: str | Path) -> list[GridRun]:
    """The cells of a grid directory (from its manifest)."""
    manifest = _read_manifest(Path(root))
    return [GridRun(**c["cell"]) for c in manifest["cells"]]


def cell_results(cell: GridRun) -> dict[str, Any] | None:
    path = Path(cell.run_dir) / "results.json"
    if cell.status != "done" or not path.is_file():
        return None
    return json.loads(path.read_text())


def comparison_table(
    cells: list[GridRun],
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """Mean [90% interval] of each metric per strategy, the spread across task orders (None for
    a grid of one order), and the failed runs."""
    by_label: dict[str, list[dict]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is not None:
            by_label.setdefault(cell.label, []).append(results["metrics"])
    rows = [["strategy", "runs", *COLUMNS]]
    summary: dict[str, Any] = {}
    for label in dict.fromkeys(c.label for c in cells):
        metrics = by_label.get(label, [])
        stats = aggregate(metrics) if metrics else {}
        summary[label] = stats
        cells_txt = [stat_text(column, stats.get(column)) for column in COLUMNS]
        rows.append([label, str(len(metrics)), *cells_txt])
    text = format_table(rows)
    spread = order_spread(cells)
    if spread:
        text += "\n\n" + spread[0]
    spread_summary = spread[1] if spread else None
    failed = [c for c in cells if c.status == "failed"]
    if failed:
        text += "\n\nfailed runs:\n" + "\n".join(
            f"  {c.label} seed {c.seed}: {c.error} (see {c.run_dir}/error.txt)" for c in failed
        )
    stopped = [c for c in cells if c.status in ("stopped", "pending")]
    if stopped:
        text += "\n\nstopped runs (robotcl compare --resume continues them):\n" + "\n".join(
            f"  {c.label} seed {c.seed}: {c.run_dir}" for c in stopped
        )
    return text, summary, spread_summary


def order_spread(cells: list[GridRun]) -> tuple[str, dict[str, Any]] | None:
    """How each metric moves with the task order: per strategy, the mean over seeds of each
    order, then their standard deviation and range across orders. None for a grid of one order."""
    means: dict[str, dict[str, list[dict]]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is not None and cell.order:
            means.setdefault(cell.label, {}).setdefault(cell.order, []).append(results["metrics"])
    if not any(len(orders) > 1 for orders in means.values()):
        return None
    rows = [["strategy", "orders", *SCORES]]
    summary: dict[str, Any] = {}
    for label, orders in means.items():
        per_order = {o: aggregate(ms) for o, ms in orders.items()}
        summary[label] = {}
        texts = []
        for column in SCORES:
            values = [st[column]["mean"] for st in per_order.values() if column in st]
            if not values:
                texts.append("-")
                continue
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            summary[label][column] = {
                "by_order": {o: st[column]["mean"] for o, st in per_order.items() if column in st},
                "sd": sd,
                "min": min(values),
                "max": max(values),
            }
            texts.append(f"sd {sd:.3f} [{min(values):+.3f}, {max(values):+.3f}]")
        rows.append([label, str(len(orders)), *texts])
    title = "across task orders (each order's mean over seeds: sd [min, max]):"
    return title + "\n" + format_table(rows), summary


def final_success_figure(cells: list[GridRun]) -> Figure | None:
    """Grouped bars: final success on each task (by name, whatever the order), one bar per
    strategy (mean over seeds and orders)."""
    by_task: dict[str, dict[str, list[float]]] = {}
    tasks: list[str] = []
    for cell in cells:
        results = cell_results(cell)
        if results is None:
            continue
        R = np.asarray(results["R"][results["metric_mode"]]["success"])
        for name, value in zip(results["tasks"], R[-1], strict=True):
            by_task.setdefault(cell.label, {}).setdefault(name, []).append(float(value))
        tasks += [t for t in results["tasks"] if t not in tasks]
    if not by_task:
        return None
    finals = {label: [np.mean(v.get(t, [np.nan])) for t in tasks] for label, v in by_task.items()}
    fig = Figure(figsize=(max(6.0, 0.9 * len(tasks) * max(1, len(finals)) / 2), 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(finals)
    for k, (label, values) in enumerate(finals.items()):
        x = np.arange(len(tasks)) + (k - (len(finals) - 1) / 2) * width
        ax.bar(x, values, width, label=label)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("final success")
    ax.legend(fontsize=7, ncols=min(4, len(finals)))
    fig.tight_layout()
    return fig


def mean_curves(cells: list[GridRun]) -> tuple[list[dict[str, Any]], list[str]]:
    """One pseudo-run per strategy (and order) whose success and return curves are means over its
    seeds."""
    grouped: dict[str, list[dict]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is not None:
            grouped.setdefault(cell.group, []).append(results)
    runs, labels = [], []
    for label, group in grouped.items():
        mode = group[0]["metric_mode"]
        length = min(len(r["curves"]["steps"]) for r in group)
        means = {
            metric: np.mean([np.asarray(r["curves"][mode][metric])[:length] for r in group], 0)
            for metric in ("success", "return")
        }
        steps = group[0]["curves"]["steps"][:length]
        runs.append(
            {
                "tasks": group[0]["tasks"],
                "bounds": group[0]["bounds"],
                "curves": {"steps": steps, mode: means},
                "metric_mode": mode,
            }
        )
        labels.append(label)
    return runs, labels


def write_comparison(root: Path, cells: list[GridRun]) -> str:
    """comparison.json, comparison.txt, final_success.png, curves.png and TensorBoard."""
    from torch.utils.tensorboard import SummaryWriter

    text, summary, spread = comparison_table(cells)
    atomic_write_text(root / "comparison.txt", text + "\n")
    atomic_write_text(
        root / "comparison.json",
        json.dumps(
            {
                "runs": [asdict(c) for c in cells],
                "metrics": summary,
                "orders": spread,
            },
            indent=1,
        ),
    )
    writer = SummaryWriter(str(root / "tb"))
    writer.add_text("compare/table", "<pre>" + text + "</pre>")
    bars = final_success_figure(cells)
    if bars is not None:
        bars.savefig(root / "final_success.png", dpi=110)
        writer.add_figure("compare/final_success", bars)
    runs, labels = mean_curves(cells)
    if runs:
        mode = runs[0]["metric_mode"]
        for metric, name in (("success", "curves.png"), ("return", "return_curves.png")):
            fig = curves_figure(runs, labels, metric=metric, mode=mode)
            fig.savefig(root / name, dpi=110)
            writer.add_figure(f"compare/{metric}_curves", fig)
    writer.close()
    return text
