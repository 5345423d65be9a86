"""Tables of continual-learning metrics from one or more run directories."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from robotcl.errors import UserInputError
from robotcl.metrics import aggregate

COLUMNS = ("acc", "bwt", "forgetting", "fwt", "fwt_auc", "final_return")


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """results.json of a run directory (or the file itself), with a clear error if unusable."""
    path = Path(run_dir)
    path = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(path.read_text())
    except OSError:
        raise UserInputError(f"run '{run_dir}'", "has no results.json") from None
    except ValueError as exc:
        raise UserInputError(f"run '{run_dir}'", f"results.json is corrupt ({exc})") from None
    if not isinstance(results, dict) or not {"metrics", "curves", "tasks"} <= set(results):
        raise UserInputError(f"run '{run_dir}'", "results.json is not a robotcl results file")
    results["_path"] = str(run_dir)
    return results


def _fmt(value: Any) -> str:
    return "-" if not isinstance(value, int | float) or value != value else f"{value:+.3f}"


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(run_dirs: list[str]) -> str:
    """One row per run; then, for strategies with several seeds, the mean and 90% interval."""
    runs = [read_results(d) for d in run_dirs]
    header = ["run", "strategy", "seed", "tasks", *COLUMNS]
    rows = [header]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in runs:
        m = r["metrics"]
        strategy = "+".join(r.get("strategy", ["?"]))
        done = f"{r.get('completed_tasks', '?')}/{len(r.get('tasks', []))}"
        rows.append(
            [Path(r["_path"]).name, strategy, str(r.get("seed", "?")), done]
            + [_fmt(m.get(c)) for c in COLUMNS]
        )
        groups[(r.get("suite", "?"), strategy)].append(m)
    out = format_table(rows)
    multi = {k: v for k, v in groups.items() if len(v) > 1}
    if multi:
        agg_rows = [["suite", "strategy", "n", *COLUMNS]]
        for (suite, strategy), metrics in sorted(multi.items()):
            stats = aggregate(metrics)
            cells = []
            for c in COLUMNS:
                s = stats.get(c)
                cells.append(
                    "-" if s is None else f"{s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}]"
                )
            agg_rows.append([suite, strategy, str(len(metrics)), *cells])
        out += "\n\nmean [90% bootstrap interval] over seeds\n" + format_table(agg_rows)
    return out
