"""Formatting: the metric columns, numbers and sizes as text, aligned tables."""

from __future__ import annotations

from typing import Any

COLUMNS = ("acc", "memory", "bwt", "forgetting", "fwt", "fwt_auc", "final_return", "probe_acc")
COLUMNS += ("probe_forgetting",)
#: the columns that are scores (``memory`` is bytes: what the strategy keeps beyond the learner)
SCORES = tuple(c for c in COLUMNS if c != "memory")


def size_text(n: float) -> str:
    """Bytes for a table: 0 B, 12.3 KiB, 4.5 MiB, 1.2 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def value_text(value: Any, column: str = "") -> str:
    """One run's value of a column (``-`` when missing or NaN)."""
    if not isinstance(value, int | float) or value != value:
        return "-"
    return size_text(value) if column == "memory" else f"{value:+.3f}"


#: below this many runs no bootstrap interval is printed: over two values a percentile bootstrap
#: gives their range, which holds the true mean about half the time, and over one it is a point
MIN_RUNS_FOR_INTERVAL = 3


def interval_text(mean: float, low: float, high: float, n: int) -> str:
    """``mean [low, high] n=N``, or ``mean (n=N)`` below :data:`MIN_RUNS_FOR_INTERVAL` runs."""
    if mean != mean:
        return "-"
    if n < MIN_RUNS_FOR_INTERVAL:
        return f"{mean:+.3f} (n={n})"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] n={n}"


def stat_text(column: str, stats: dict[str, float] | None) -> str:
    """A column's mean [90% interval] and n over runs (memory: the mean size alone)."""
    if stats is None:
        return "-"
    if column == "memory":
        return size_text(stats["mean"])
    return interval_text(stats["mean"], stats["low"], stats["high"], int(stats.get("n", 0)))


def format_table(rows: list[list[str]]) -> str:
    """Rows of text as aligned columns, the first row a header underlined."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def experts_table(experts: list[Any], mode: str) -> str:
    """One row per task: its expert's status, success (of its policy) and whether it is flagged
    (``experts``: objects with task, status, success, threshold, flagged, run_dir, error)."""
    rows = [["task", "expert", f"success ({mode})", "flag", "run"]]
    for e in experts:
        success = "-" if e.success is None else f"{e.success:.2f}"
        flag = f"below {e.threshold:g}" if e.flagged else ""
        rows.append([e.task, e.status, success, flag, str(e.run_dir)])
    text = format_table(rows)
    failed = [e for e in experts if e.status == "failed"]
    if failed:
        text += "\n\nfailed experts:\n" + "\n".join(
            f"  {e.task}: {e.error} (see {e.run_dir}/error.txt)" for e in failed
        )
    return text
