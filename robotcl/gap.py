"""``robotcl gap``: the same strategies in supervised and in reinforcement lifelong learning.

The CoRL 2021 question ("Evaluations of the gap between supervised and reinforcement lifelong
learning on robotic manipulation tasks", Yang et al.): do methods that work in supervised
lifelong learning also work in RL? For every strategy and seed of a preset:

1. the experts (robotcl.experts): one single-task run a task, cached and reused;
2. their datasets, gathered into ``<gap>/expert_data`` (``<task>.npz`` + provenance);
3. the supervised side: a ``robotcl compare`` grid of the ``bc`` agent (behaviour cloning with
   the RL actor's network shape) on those datasets, ``<gap>/sl-<hash of gap.*>``;
4. the RL side: the preset's own grid, ``<gap>/rl``, with the experts as its reference runs
   (Continual World's forward transfer);
5. one table: ACC, memory, BWT, forgetting and FWT (GEM's, the same definition on both sides)
   for SL and RL, and RL - SL, each a mean with a 90% bootstrap interval over seeds; a figure of
   it, the supervised side's held-out action-loss matrices, all in ``<gap>`` and TensorBoard.

The gap folder is named by a hash of the settings that decide its runs, so running the same
command again reuses every finished run (and resumes stopped ones), and adding strategies or
seeds adds only their runs; other ``gap.*`` settings (BC's epochs, learning rate, batch) make
another supervised grid beside the same RL one. gap.txt and gap.json are of the last call.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robotcl.compare import GridRun, _strip, cell_results, compare, grid_cells, parse_grid
from robotcl.config import ExperimentConfig, load_source, merge_overrides, validate_config
from robotcl.errors import UserInputError
from robotcl.experts import Expert, gather_datasets, train_experts
from robotcl.metrics import bootstrap_ci, bootstrap_difference
from robotcl.outputs import atomic_write_text
from robotcl.report import format_table, size_text

#: the metrics the gap table compares (GEM's FWT: defined the same way on both sides)
GAP_METRICS = ("acc", "bwt", "forgetting", "fwt")
SIDES = ("sl", "rl")
#: keys that do not change what a gap's runs compute, or that its grid sets (left out of its
#: folder's hash; the strategies' own settings are in it)
UNHASHED = ("seed", "run_dir", "runs_dir", "progress", "torch_threads", "device", "strategy")
UNHASHED += ("gap",)  # the supervised side's own settings name its grid's folder instead


class GapStopped(KeyboardInterrupt):
    """The gap was stopped; running the same command again continues it."""

    def __init__(self, root: Path | None) -> None:
        super().__init__()
        self.root = root


def _key(data: Any, length: int = 10) -> str:
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:length]


def gap_root(config: ExperimentConfig) -> Path:
    """The gap's folder: ``<runs_dir>/<name>/gap-<hash of the settings>``."""
    data = {k: v for k, v in config.model_dump().items() if k not in UNHASHED}
    return (Path(config.runs_dir) / config.name / f"gap-{_key(data)}").absolute()


def grid_folders(config: ExperimentConfig) -> dict[str, str]:
    """Each side's grid folder in the gap's: ``rl``, and ``sl-<hash of the gap.* settings>``
    (other BC settings are another supervised grid beside the same RL one)."""
    return {"sl": f"sl-{_key(config.gap.model_dump(), 6)}", "rl": "rl"}


def supervised_config(config: ExperimentConfig, data_folder: Path, rows: int) -> dict[str, Any]:
    """The supervised side's settings: the preset with the ``bc`` agent (the actor's network
    shape, BC's own learning rate and batch), ``gap.epochs`` passes over the largest task's
    ``rows`` training rows, and as many evaluations a task as the RL side makes."""
    settings = config.gap
    steps = max(1, math.ceil(settings.epochs * rows / settings.batch_size))
    evaluations = max(1, config.steps_per_task // config.eval.every_steps)
    data = _strip(config.model_dump())
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
    """Run (or reuse) the experts and both sides, then write the gap table; return the gap's
    folder and the number of failed runs. Raises :class:`GapStopped` when interrupted."""
    grid, rest = parse_grid(overrides, load_source(source).get("compare"))
    if grid["orders"] is not None:
        raise UserInputError("orders", "the gap compares one task order", "drop orders=")
    base = validate_config(merge_overrides(_strip(load_source(source)), rest))
    if base.reference is not None:
        raise UserInputError(
            "reference", "the gap uses its experts as the reference runs", "drop reference="
        )
    experts = _experts(base, grid["workers"])
    root = gap_root(base)
    data_folder = root / "expert_data"
    provenance = gather_datasets(base, experts, data_folder)
    rows = max(
        math.ceil(p["transitions"] * (1 - base.agent.heldout_fraction)) for p in provenance.values()
    )
    rl = {**_strip(base.model_dump()), "reference": [str(e.run_dir) for e in experts]}
    grids = {side: root / folder for side, folder in grid_folders(base).items()}
    sources = {
        "sl": _write_source(
            grids["sl"].with_suffix(".yaml"), supervised_config(base, data_folder, rows)
        ),
        "rl": _write_source(grids["rl"].with_suffix(".yaml"), validate_config(rl).model_dump()),
    }
    items = [f"strategies={json.dumps(grid['strategies'])}", f"seeds={json.dumps(grid['seeds'])}"]
    for key in ("workers", "executor", "ray_address"):
        if grid[key] is not None and (key != "executor" or grid[key] != "local"):
            items.append(f"{key}={grid[key]}")
    failed = 0
    try:
        for side in SIDES:  # supervised first: it is the quick one
            _, side_failed = compare(sources[side], items, root=grids[side])
            failed += side_failed
    except KeyboardInterrupt:
        raise GapStopped(root) from None
    write_gap(root, grids, experts, provenance, base.eval.metric)
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


# -- the table --------------------------------------------------------------------------------


def _side_metrics(cells: list[GridRun]) -> dict[str, list[dict[str, Any]]]:
    """Each strategy's finished runs: their metrics and held-out loss matrices."""
    out: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        results = cell_results(cell)
        if results is None:
            continue
        out.setdefault(cell.label, []).append({**results["metrics"], "L": results.get("L")})
    return out


def gap_summary(sl_cells: list[GridRun], rl_cells: list[GridRun]) -> dict[str, Any]:
    """Per strategy: each side's mean [90% interval] of every gap metric, RL - SL with its
    interval, the memory each side's strategy keeps, and the runs counted."""
    sides = {"sl": _side_metrics(sl_cells), "rl": _side_metrics(rl_cells)}
    labels = list(dict.fromkeys(c.label for c in [*sl_cells, *rl_cells]))
    summary: dict[str, Any] = {}
    for label in labels:
        entry: dict[str, Any] = {}
        values = {}
        for side in SIDES:
            runs = sides[side].get(label, [])
            entry[f"{side}_runs"] = len(runs)
            memory = [r["memory"] for r in runs if "memory" in r]
            entry[f"{side}_memory"] = float(np.mean(memory)) if memory else None
            values[side] = {m: [float(r.get(m, math.nan)) for r in runs] for m in GAP_METRICS}
            entry[side] = {m: _interval(bootstrap_ci(v)) for m, v in values[side].items() if v}
        entry["diff"] = {
            m: _interval(bootstrap_difference(values["rl"][m], values["sl"][m]))
            for m in GAP_METRICS
        }
        losses = [np.asarray(r["L"], float) for r in sides["sl"].get(label, []) if r.get("L")]
        entry["heldout_loss_matrix"] = np.mean(losses, 0).tolist() if losses else None
        summary[label] = entry
    return summary


def _interval(stat: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("mean", "low", "high"), stat, strict=True))


def _cell(stats: dict[str, float] | None) -> str:
    if not stats or stats["mean"] != stats["mean"]:
        return "-"
    return f"{stats['mean']:+.3f} [{stats['low']:+.3f}, {stats['high']:+.3f}]"


def gap_table(summary: dict[str, Any], experts: list[Expert] | None = None) -> str:
    """Three rows a strategy (SL, RL, RL - SL) by ACC, memory, BWT, forgetting and FWT."""
    rows = [["strategy", "side", "runs", "acc", "memory", "bwt", "forgetting", "fwt"]]
    for label, entry in summary.items():
        for side in SIDES:
            memory = entry[f"{side}_memory"]
            rows.append(
                [
                    label if side == "sl" else "",
                    side.upper(),
                    str(entry[f"{side}_runs"]),
                    _cell(entry[side].get("acc")),
                    "-" if memory is None else size_text(memory),
                    *(_cell(entry[side].get(m)) for m in GAP_METRICS[1:]),
                ]
            )
        diff = entry["diff"]
        rest = (_cell(diff[m]) for m in GAP_METRICS[1:])
        rows.append(["", "RL-SL", "", _cell(diff["acc"]), "", *rest])
    text = "mean [90% bootstrap interval] over seeds; RL-SL resamples each side's seeds\n"
    text += format_table(rows)
    flagged = [e for e in experts or [] if e.flagged]
    if flagged:
        text += "\n\nexperts below their success threshold (the SL side clones them as they are):"
        text += "".join(f"\n  {e.task}: {e.success:.2f} < {e.threshold:g}" for e in flagged)
    return text


def gap_figure(summary: dict[str, Any]) -> Figure:
    """One panel a metric: SL and RL bars for each strategy with their 90% intervals."""
    labels = list(summary)
    fig = Figure(figsize=(3.2 * len(GAP_METRICS), 3.2))
    FigureCanvasAgg(fig)
    x = np.arange(len(labels))
    for k, metric in enumerate(GAP_METRICS):
        ax = fig.add_subplot(1, len(GAP_METRICS), k + 1)
        for offset, side, color in ((-0.2, "sl", "tab:blue"), (0.2, "rl", "tab:orange")):
            stats = [summary[lab][side].get(metric) or {} for lab in labels]
            mean = np.array([s.get("mean", np.nan) for s in stats])
            low = np.array([s.get("low", np.nan) for s in stats])
            high = np.array([s.get("high", np.nan) for s in stats])
            err = np.nan_to_num(np.stack([mean - low, high - mean]))
            ax.bar(x + offset, mean, 0.4, yerr=err, color=color, label=side.upper(), capsize=2)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(metric.upper() if metric != "forgetting" else "forgetting")
        if k == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def heldout_figure(summary: dict[str, Any], tasks: list[str]) -> Figure | None:
    """The supervised side's held-out action-loss matrix of each strategy (mean over seeds)."""
    matrices = {k: v["heldout_loss_matrix"] for k, v in summary.items() if v["heldout_loss_matrix"]}
    if not matrices:
        return None
    fig = Figure(figsize=(3.0 * len(matrices), 3.0))
    FigureCanvasAgg(fig)
    top = max(np.nanmax(np.asarray(m)) for m in matrices.values()) or 1.0
    for k, (label, matrix) in enumerate(matrices.items()):
        ax = fig.add_subplot(1, len(matrices), k + 1)
        values = np.asarray(matrix)
        image = ax.imshow(values, vmin=0, vmax=top, cmap="viridis_r")
        for (i, j), v in np.ndenumerate(values):
            color = "w" if v > top / 2 else "k"
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_title(label, fontsize=8)
        ax.set_xticks(range(len(tasks)), tasks, fontsize=6, rotation=90)
        ax.set_yticks(range(len(tasks)), tasks, fontsize=6)
        ax.set_xlabel("held-out task j", fontsize=7)
        if k == 0:
            ax.set_ylabel("after training task i", fontsize=7)
    fig.colorbar(image, ax=fig.axes, shrink=0.8, label="action MSE")
    return fig


def is_gap(path: str | Path) -> bool:
    """A ``robotcl gap`` folder (it holds gap.json)."""
    return (Path(path) / "gap.json").is_file()


def gap_report(root: str | Path) -> str:
    """The gap table of a gap folder, from its grids as they are now (``robotcl report``)."""
    root = Path(root)
    try:
        record = json.loads((root / "gap.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserInputError(f"gap '{root}'", f"gap.json cannot be read ({exc})") from None
    experts = [
        Expert(e["task"], Path(e["run"]), "cached", e["success"], e["threshold"])
        for e in record["experts"]
    ]
    summary = gap_summary(grid_cells(record["sl_grid"]), grid_cells(record["rl_grid"]))
    return f"{root}\n" + gap_table(summary, experts)


def write_gap(
    root: Path,
    grids: dict[str, Path],
    experts: list[Expert],
    provenance: dict[str, Any],
    mode: str,
) -> str:
    """gap.txt, gap.json, gap.png, heldout_loss.png and TensorBoard (``<gap>/tb``)."""
    from torch.utils.tensorboard import SummaryWriter

    sl_cells, rl_cells = grid_cells(grids["sl"]), grid_cells(grids["rl"])
    summary = gap_summary(sl_cells, rl_cells)
    text = gap_table(summary, experts)
    atomic_write_text(root / "gap.txt", text + "\n")
    record = {
        "strategies": summary,
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
        "metric_mode": mode,
        "datasets": provenance,
        "sl_grid": str(grids["sl"]),
        "rl_grid": str(grids["rl"]),
    }
    atomic_write_text(root / "gap.json", json.dumps(record, indent=1))
    writer = SummaryWriter(str(root / "tb"))
    writer.add_text("gap/table", "<pre>" + text + "</pre>")
    figure = gap_figure(summary)
    figure.savefig(root / "gap.png", dpi=110)
    writer.add_figure("gap/metrics", figure)
    losses = heldout_figure(summary, [e.task for e in experts])
    if losses is not None:
        losses.savefig(root / "heldout_loss.png", dpi=110)
        writer.add_figure("gap/heldout_loss", losses)
    for label, entry in summary.items():
        for metric in GAP_METRICS:
            for side in (*SIDES, "diff"):
                value = (entry[side].get(metric) or {}).get("mean", math.nan)
                if value == value:
                    writer.add_scalar(f"gap/{label}/{metric}/{side}", value, 0)
    writer.close()
    return text
