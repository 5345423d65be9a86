"""Steps to success and final success of single-task runs, for docs/learning.md.

    python bench/learning_table.py RUN_DIR ... [--labels A B ...] [--out docs/learning.png]

For each run (one task each) prints, per evaluation mode, the first evaluation step with success
>= 0.8, the final success and return, and the return at step 0 (random policy); writes the
return and success curves as one PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robotcl.reporting.runs import read_results
from robotcl.reporting.tables import format_table


def first_step(steps: np.ndarray, values: np.ndarray, threshold: float = 0.8) -> str:
    """First evaluation step with success >= threshold."""
    hits = np.nonzero(values >= threshold)[0]
    return str(int(steps[hits[0]])) if len(hits) else "never"


def stable_step(steps: np.ndarray, values: np.ndarray, threshold: float = 0.8) -> str:
    """First evaluation step from which success stays >= threshold to the end."""
    below = np.nonzero(values < threshold)[0]
    if not len(below):
        return str(int(steps[0]))
    return "never" if below[-1] == len(values) - 1 else str(int(steps[below[-1] + 1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="docs/learning.png")
    parser.add_argument("--labels", nargs="+", help="one name per run (default: task and seed)")
    args = parser.parse_args()
    if args.labels and len(args.labels) != len(args.runs):
        parser.error(f"{len(args.labels)} labels for {len(args.runs)} runs")
    runs = [read_results(r) for r in args.runs]
    rows = [
        [
            "task",
            "mode",
            "return at 0",
            "first success>=0.8",
            "stays >=0.8 from",
            "final success",
            "final return",
        ]
    ]
    fig = Figure(figsize=(10, 3.4))
    FigureCanvasAgg(fig)
    ax_ret, ax_suc = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for k, run in enumerate(runs):
        task = args.labels[k] if args.labels else f"{run['tasks'][0]} s{run.get('seed', 0)}"
        steps = np.asarray(run["curves"]["steps"])
        for mode in ("deterministic", "stochastic"):
            success = np.asarray(run["curves"][mode]["success"])[:, 0]
            ret = np.asarray(run["curves"][mode]["return"])[:, 0]
            rows.append(
                [
                    task,
                    mode,
                    f"{ret[0]:.0f}",
                    first_step(steps, success),
                    stable_step(steps, success),
                    f"{success[-1]:.1f}",
                    f"{ret[-1]:.0f}",
                ]
            )
            style = "-" if mode == "deterministic" else ":"
            ax_ret.plot(steps, ret, style, color=f"C{k}", label=f"{task} {mode}")
            ax_suc.plot(steps, success, style, color=f"C{k}", label=f"{task} {mode}")
    ax_ret.set_ylabel("episode return")
    ax_suc.set_ylabel("success")
    for ax in (ax_ret, ax_suc):
        ax.set_xlabel("env steps")
    ax_suc.legend(fontsize=7)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(format_table(rows))
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
