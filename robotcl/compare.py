"""Strategy comparison grids: strategies x seeds on one suite, one run directory each.

Runs go to worker processes (default: one per GPU, or one on CPU; ``workers=0`` runs them in this
process). A run that fails is reported with its error; the others' results are kept. The grid
ends with one comparison: a table of ACC, BWT, forgetting and FWT with bootstrap intervals over
seeds, and figures (final success per task per strategy; success on every task along the whole
sequence, as in Continual World's figures; the same for return, which moves before success does
in short runs) written as PNG and into TensorBoard.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from robotcl.config import ExperimentConfig, apply_overrides, load_source, validate_config
from robotcl.errors import UserInputError
from robotcl.metrics import aggregate
from robotcl.outputs import atomic_write_text
from robotcl.plots import curves_figure
from robotcl.report import COLUMNS, format_table

GRID_KEYS = ("strategies", "seeds", "workers")


@dataclass
class GridRun:
    """One cell of the grid and how it ended."""

    label: str
    seed: int
    run_dir: str
    device: str
    error: str | None = None


def parse_grid(
    overrides: list[str], defaults: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Split ``strategies=``, ``seeds=``, ``workers=`` from the experiment overrides; a preset's
    ``compare:`` block gives the defaults."""
    grid: dict[str, Any] = dict(defaults or {})
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise UserInputError(
            f"config key 'compare.{unknown[0]}'", "unknown key", f"allowed: {', '.join(GRID_KEYS)}"
        )
    rest = []
    for item in overrides:
        key, _, raw = item.partition("=")
        if key in GRID_KEYS:
            grid[key] = yaml.safe_load(raw)
        else:
            rest.append(item)
    strategies = grid.get("strategies", ["finetune"])
    if isinstance(strategies, str):
        strategies = [strategies]
    if not isinstance(strategies, list) or not strategies:
        raise UserInputError("strategies", f"{strategies!r} is not a list", "e.g. [finetune,ewc]")
    seeds = grid.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise UserInputError("seeds", f"{seeds!r} is not a positive integer", "e.g. seeds=3")
    workers = grid.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 0):
        raise UserInputError("workers", f"{workers!r} is not a non-negative integer", "e.g. 2")
    return {"strategies": strategies, "seeds": seeds, "workers": workers}, rest


def _default_workers() -> int:
    import torch

    return max(1, torch.cuda.device_count())


def _devices(config: ExperimentConfig, count: int) -> list[str]:
    """Spread runs over the GPUs when the config asks for auto/cuda and several are present."""
    import torch

    gpus = torch.cuda.device_count()
    if config.device in ("auto", "cuda") and gpus > 1:
        return [f"cuda:{k % gpus}" for k in range(count)]
    return [config.device] * count


def _run_one(config_data: dict[str, Any]) -> str | None:
    """Worker body: run one config; return None or the error (the traceback goes to error.txt)."""
    from robotcl.experiment import run

    config = validate_config(config_data)
    try:
        run(config)
    except Exception as exc:  # report, do not lose the grid
        run_dir = Path(config.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        return f"{type(exc).__name__}: {exc}"
    return None


def compare(source: str | None, overrides: list[str]) -> Path:
    """Run the grid and write the comparison; returns the comparison directory."""
    preset = load_source(source)
    grid, rest = parse_grid(overrides, preset.pop("compare", None))
    base = validate_config(apply_overrides(preset, list(rest)))
    configs: list[tuple[GridRun, dict[str, Any]]] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = (Path(base.runs_dir) / base.name / f"compare-{stamp}").absolute()  # cwd-independent
    devices = _devices(base, len(grid["strategies"]) * grid["seeds"])
    for strategy in grid["strategies"]:
        names = strategy if isinstance(strategy, list) else [strategy]
        label = "+".join(str(n) for n in names)
        for seed in range(grid["seeds"]):
            cell = GridRun(label, seed, str(root / f"{label}-s{seed}"), devices[len(configs)])
            data = load_source(source)
            data.pop("compare", None)
            data = apply_overrides(
                data,
                [
                    *rest,
                    f"seed={seed}",
                    f"run_dir={cell.run_dir}",
                    f"device={cell.device}",
                    "progress=false",
                ],
            )
            data["strategy"] = names
            configs.append((cell, validate_config(data).model_dump()))  # all checked up front
    root.mkdir(parents=True, exist_ok=False)
    workers = _default_workers() if grid["workers"] is None else grid["workers"]
    if workers > 1 and base.torch_threads is None:  # share the cores instead of oversubscribing
        for _, data in configs:
            data["torch_threads"] = max(1, (os.cpu_count() or 1) // workers)
    bar = tqdm(total=len(configs), unit="run", desc=f"grid of {len(configs)}", dynamic_ncols=True)
    if workers == 0:
        for cell, data in configs:
            cell.error = _run_one(data)
            bar.update(1)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_run_one, data): cell for cell, data in configs}
            for future in as_completed(futures):
                cell = futures[future]
                try:
                    cell.error = future.result()
                except Exception as exc:  # the worker itself died
                    cell.error = f"worker failed: {type(exc).__name__}: {exc}"
                bar.update(1)
    bar.close()
    write_comparison(root, [cell for cell, _ in configs])
    return root


def _load(cell: GridRun) -> dict[str, Any] | None:
    path = Path(cell.run_dir) / "results.json"
    if cell.error or not path.is_file():
        return None
    return json.loads(path.read_text())


def comparison_table(cells: list[GridRun]) -> tuple[str, dict[str, Any]]:
    """Mean [90% interval] of each metric per strategy, and the failed runs."""
    by_label: dict[str, list[dict]] = {}
    for cell in cells:
        results = _load(cell)
        if results is not None:
            by_label.setdefault(cell.label, []).append(results["metrics"])
    rows = [["strategy", "runs", *COLUMNS]]
    summary: dict[str, Any] = {}
    for label in dict.fromkeys(c.label for c in cells):
        metrics = by_label.get(label, [])
        stats = aggregate(metrics) if metrics else {}
        summary[label] = stats
        cells_txt = []
        for column in COLUMNS:
            s = stats.get(column)
            cells_txt.append(
                "-" if s is None else f"{s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}]"
            )
        rows.append([label, str(len(metrics)), *cells_txt])
    text = format_table(rows)
    failed = [c for c in cells if c.error]
    if failed:
        text += "\n\nfailed runs:\n" + "\n".join(
            f"  {c.label} seed {c.seed}: {c.error} (see {c.run_dir}/error.txt)" for c in failed
        )
    return text, summary


def final_success_figure(cells: list[GridRun]) -> Figure | None:
    """Grouped bars: final success on each task, one bar per strategy (mean over seeds)."""
    finals: dict[str, list[np.ndarray]] = {}
    tasks: list[str] = []
    for cell in cells:
        results = _load(cell)
        if results is None:
            continue
        R = np.asarray(results["R"][results["metric_mode"]]["success"])
        finals.setdefault(cell.label, []).append(R[-1])
        tasks = results["tasks"]
    if not finals:
        return None
    fig = Figure(figsize=(max(6.0, 0.9 * len(tasks) * max(1, len(finals)) / 2), 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(finals)
    for k, (label, rows) in enumerate(finals.items()):
        x = np.arange(len(tasks)) + (k - (len(finals) - 1) / 2) * width
        ax.bar(x, np.mean(rows, axis=0), width, label=label)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("final success")
    ax.legend(fontsize=7, ncols=min(4, len(finals)))
    fig.tight_layout()
    return fig


def mean_curves(cells: list[GridRun]) -> tuple[list[dict[str, Any]], list[str]]:
    """One pseudo-run per strategy whose success and return curves are means over its seeds."""
    grouped: dict[str, list[dict]] = {}
    for cell in cells:
        results = _load(cell)
        if results is not None:
            grouped.setdefault(cell.label, []).append(results)
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

    text, summary = comparison_table(cells)
    atomic_write_text(root / "comparison.txt", text + "\n")
    atomic_write_text(
        root / "comparison.json",
        json.dumps({"runs": [asdict(c) for c in cells], "metrics": summary}, indent=1),
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
