"""Continual-learning metrics for lifelong RL, plus bootstrap confidence intervals across seeds.

Conventions
-----------
``R`` is the ``(T, T)`` evaluation matrix: ``R[i][j]`` is the success rate on task ``j`` after
training on task ``i`` (row = training stage, column = evaluated task). Values need not lie in
``[0, 1]`` (returns work too), except where a formula only makes sense for success rates (the
normalisation of Continual World forward transfer).

References
----------
- GEM: Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017
  (ACC, BWT, FWT).
- Continual World: Wolczyk et al., "Continual World: A Robotic Benchmark For Continual
  Reinforcement Learning", NeurIPS 2021 (forgetting, AUC-based forward transfer, 90% bootstrap
  intervals across seeds).

Undefined quantities (e.g. BWT with a single task) are ``nan`` rather than errors, so that a
whole metrics dict can always be produced and serialised; malformed inputs raise ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

__all__ = [
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
    "curve_auc",
    "cw_forward_transfer",
    "task_aucs",
    "reference_aucs",
    "fwt_auc_interval",
    "compute_metrics",
    "bootstrap_ci",
    "aggregate",
]

_NAN = float("nan")


# --------------------------------------------------------------------------- validation helpers


def _as_float_array(x: Any, name: str) -> np.ndarray:
    """Convert ``x`` to a float ndarray, turning numpy's ragged/non-numeric errors into ours."""
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}: {exc}") from exc


def _check_matrix(R: Any) -> np.ndarray:
    """Validate the evaluation matrix: square, 2-D, at least one task."""
    arr = _as_float_array(R, "R")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"R must be a square 2-D (T, T) matrix, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("R must contain at least one task, got shape (0, 0)")
    return arr


def _check_1d(x: Any, name: str, length: int | None = None) -> np.ndarray:
    arr = _as_float_array(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got {arr.shape[0]}")
    return arr


# --------------------------------------------------------------------------- matrix metrics


def average_accuracy(R: Any) -> float:
    """Average final performance ``ACC = mean_j R[T-1, j]`` (GEM, Lopez-Paz & Ranzato 2017)."""
    arr = _check_matrix(R)
    return float(arr[-1].mean())


def backward_transfer(R: Any) -> float:
    """GEM backward transfer ``BWT = mean_{j<T-1} (R[T-1, j] - R[j, j])``.

    Negative values mean forgetting. Undefined (``nan``) with fewer than two tasks.
    """
    arr = _check_matrix(R)
    T = arr.shape[0]
    if T < 2:
        return _NAN
    j = np.arange(T - 1)
    return float((arr[-1, j] - arr[j, j]).mean())


def forgetting(R: Any) -> tuple[float, np.ndarray]:
    """Continual World forgetting (Wolczyk et al. 2021).

    ``forgetting_j = R[j, j] - R[T-1, j]``: performance at the end of task ``j``'s own training
    minus performance at the end of the sequence. As in Continual World's released code (and
    so its published tables) the mean runs over all ``T`` tasks, the last contributing 0; the
    mean over the ``T-1`` tasks that can be forgotten is ``T/(T-1)`` times larger. The per-task
    vector has length ``T`` (its last entry 0); ``nan`` if ``T < 2``. Positive values mean
    forgetting (the sign is the opposite of BWT's terms).
    """
    arr = _check_matrix(R)
    T = arr.shape[0]
    j = np.arange(T)
    per_task = arr[j, j] - arr[-1, j]
    mean = float(per_task.mean()) if T >= 2 else _NAN
    return mean, per_task


def forward_transfer(R: Any, baseline: Any) -> float:
    """GEM forward transfer ``FWT = mean_{j>=1} (R[j-1, j] - b[j])``.

    ``baseline[j]`` is the success on task ``j`` of the randomly initialised policy, evaluated
    before training on task 0; it measures zero-shot transfer from earlier tasks to task ``j``.
    ``baseline[0]`` is required for shape consistency but unused. ``nan`` if ``T < 2``.
    """
    arr = _check_matrix(R)
    T = arr.shape[0]
    b = _check_1d(baseline, "baseline", length=T)
    if T < 2:
        return _NAN
    j = np.arange(1, T)
    return float((arr[j - 1, j] - b[j]).mean())


# --------------------------------------------------------------------------- curve metrics


def curve_auc(steps: Any, values: Any, start: float, end: float) -> float:
    """Normalised area under a curve over the window ``[start, end]``.

    Trapezoid rule over the evaluation points with ``start <= step <= end`` (window endpoints
    included when they were evaluated), divided by the window length ``end - start``, so a
    success curve gives an AUC in ``[0, 1]``. Nothing is interpolated or extrapolated: a part of
    the window before the first or after the last evaluation point inside it contributes zero,
    so evaluate at the task boundaries for an unbiased value. Returns ``nan`` when fewer than two
    points fall inside the window (no area can be measured). ``steps`` must be non-decreasing.
    This is the per-task quantity behind Continual World forward transfer (Wolczyk et al. 2021).
    """
    s = _check_1d(steps, "steps")
    v = _check_1d(values, "values", length=s.shape[0])
    start, end = float(start), float(end)
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise ValueError(f"window must satisfy start < end (finite), got start={start}, end={end}")
    if np.any(np.diff(s) < 0):
        raise ValueError("steps must be non-decreasing")
    inside = (s >= start) & (s <= end)
    if np.count_nonzero(inside) < 2:
        return _NAN
    x, y = s[inside], v[inside]
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return area / (end - start)


def _cw_ft_single(auc: float, auc_ref: float) -> float:
    """``FT = (AUC - AUC_ref) / (1 - AUC_ref)``, with a bounded fallback when AUC_ref == 1.

    When the reference already solves the task over its whole window (AUC_ref == 1) the
    normalisation is 0/0 or -inf; no positive transfer is possible, so we report the shortfall
    ``AUC - 1`` instead: 0 if the continual run is also perfect, in ``[-1, 0)`` otherwise.
    """
    if math.isnan(auc) or math.isnan(auc_ref):
        return _NAN
    if math.isclose(auc_ref, 1.0, rel_tol=0.0, abs_tol=1e-12):
        return auc - 1.0
    return (auc - auc_ref) / (1.0 - auc_ref)


Curve = tuple[Any, Any]


def _reference_runs(value: Curve | Sequence[Curve]) -> list[Curve]:
    """One ``(steps, success)`` pair, or a list of them (one per reference run)."""
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return value
    return [value]  # type: ignore[list-item]


def task_aucs(
    steps: Any,
    success: Any,
    bounds: Sequence[tuple[float, float]],
    training_task: Any = None,
) -> np.ndarray:
    """AUC of each task's success over its own training window (Continual World).

    ``training_task`` (one entry per evaluation point: the task being trained) restricts task
    ``i``'s window to the points made while ``i`` was trained, so the evaluation that ends task
    ``i-1`` (same step as task ``i``'s start) is left out and the one made at task ``i``'s
    true start (after the strategy's ``on_task_start``) is used.
    """
    s = _check_1d(steps, "steps")
    succ = _as_float_array(success, "success")
    if succ.ndim != 2 or succ.shape[0] != s.shape[0]:
        raise ValueError(
            f"success must have shape (P, T) with P = len(steps) = {s.shape[0]}, got {succ.shape}"
        )
    T = succ.shape[1]
    if len(bounds) != T:
        raise ValueError(
            f"bounds must have one (start, end) pair per task ({T}), got {len(bounds)}"
        )
    own = None if training_task is None else _check_1d(training_task, "training_task", len(s))
    aucs = np.full(T, np.nan)
    for i, window in enumerate(bounds):
        if len(window) != 2 or not float(window[0]) < float(window[1]):
            raise ValueError(
                f"bounds[{i}] must be a (start, end) pair with start < end, got {window!r}"
            )
        keep = np.ones(len(s), dtype=bool) if own is None else own == i
        aucs[i] = curve_auc(s[keep], succ[keep, i], float(window[0]), float(window[1]))
    return aucs


def reference_aucs(
    reference: Mapping[int, Curve | Sequence[Curve]],
    bounds: Sequence[tuple[float, float]],
) -> np.ndarray:
    """``(runs, T)`` AUCs of the single-task reference runs over each task's window length
    (``nan`` where a run has no curve of a task)."""
    T = len(bounds)
    for k in reference:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < T:
            raise ValueError(f"reference keys must be task indices in [0, {T}), got {k!r}")
    runs = max((len(_reference_runs(v)) for v in reference.values()), default=0)
    out = np.full((runs, T), np.nan)
    for i, value in reference.items():
        length = float(bounds[i][1]) - float(bounds[i][0])
        for r, (ref_steps, ref_success) in enumerate(_reference_runs(value)):
            ref_s = _check_1d(ref_steps, f"reference[{i}] steps")
            ref_v = _check_1d(ref_success, f"reference[{i}] success", length=ref_s.shape[0])
            out[r, i] = curve_auc(ref_s, ref_v, 0.0, length)
    return out


def _ft_from_aucs(auc: np.ndarray, auc_ref: np.ndarray) -> np.ndarray:
    return np.array([_cw_ft_single(float(a), float(r)) for a, r in zip(auc, auc_ref, strict=True)])


def cw_forward_transfer(
    steps: Any,
    success: Any,
    bounds: Sequence[tuple[float, float]],
    reference: Mapping[int, Curve | Sequence[Curve]],
    training_task: Any = None,
) -> tuple[float, np.ndarray]:
    """Continual World forward transfer (Wolczyk et al. 2021), based on training-curve AUC.

    For task ``i`` with training window ``bounds[i] = (start_i, end_i)`` (global env steps),
    ``AUC_i`` is :func:`task_aucs`' and ``AUC_ref_i`` the mean AUC of the single-task reference
    runs of task ``i`` over ``[0, end_i - start_i]`` (their steps are relative to their own
    start). ``FT_i = (AUC_i - AUC_ref_i) / (1 - AUC_ref_i)``; if ``AUC_ref_i == 1``,
    ``FT_i = AUC_i - 1`` (0 when both are perfect). Positive values mean the sequence made task
    ``i`` faster to learn than training from scratch.

    Args:
        steps: ``(P,)`` global env steps of the evaluation points (non-decreasing).
        success: ``(P, T)`` success of every task at every evaluation point.
        bounds: ``T`` pairs ``(start, end)``: each task's training window in global steps.
        reference: task index -> ``(ref_steps (Q,), ref_success (Q,))``, or a list of such
            pairs (one per reference run, e.g. seeds). Tasks missing here are ``nan`` in the
            per-task vector and skipped in the mean.
        training_task: optional ``(P,)`` task trained at each point (see :func:`task_aucs`).

    Returns:
        ``(mean FT over tasks with a reference, per-task FT of length T)``; the mean is ``nan``
        if no task has a reference. A ``nan`` per-task value (e.g. too few evaluation points in a
        window) propagates to the mean rather than being silently dropped.
    """
    aucs = task_aucs(steps, success, bounds, training_task)
    refs = reference_aucs(reference, bounds)
    per_task = np.full(len(aucs), np.nan)
    used = sorted(int(k) for k in reference)
    if used:
        per_task[used] = _ft_from_aucs(aucs[used], refs[:, used].mean(axis=0))
    mean = float(per_task[used].mean()) if used else _NAN
    return mean, per_task


def fwt_auc_interval(
    run_aucs: Any,
    reference_runs: Any,
    confidence: float = 0.9,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean forward transfer over runs with a bootstrap interval that resamples the continual
    runs and the reference runs independently (so the reference's seed spread widens it, as in
    Continual World's intervals).

    Args:
        run_aucs: ``(S, T)`` per-task AUCs of the continual runs (seeds).
        reference_runs: ``(Rn, T)`` per-task AUCs of the reference runs (``nan``: no curve);
            tasks without any reference are left out.
    """
    runs = _as_float_array(run_aucs, "run_aucs")
    refs = _as_float_array(reference_runs, "reference_runs")
    if runs.ndim != 2 or refs.ndim != 2 or runs.shape[1] != refs.shape[1] or not len(refs):
        raise ValueError(f"need (S, T) and (R, T) AUCs, got {runs.shape} and {refs.shape}")
    tasks = np.flatnonzero(~np.isnan(refs).all(axis=0))
    if not len(runs) or not len(tasks):
        return _NAN, _NAN, _NAN
    runs, refs = runs[:, tasks], refs[:, tasks]

    def ft(a: np.ndarray, r: np.ndarray) -> float:
        return float(_ft_from_aucs(a.mean(axis=0), np.nanmean(r, axis=0)).mean())

    mean = ft(runs, refs)
    if len(runs) == 1 and len(refs) == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            ft(
                runs[rng.integers(0, len(runs), len(runs))],
                refs[rng.integers(0, len(refs), len(refs))],
            )
            for _ in range(n_resamples)
        ]
    )
    alpha = 1.0 - confidence
    low, high = np.nanquantile(draws, [alpha / 2.0, 1.0 - alpha / 2.0])
    return mean, float(low), float(high)


# --------------------------------------------------------------------------- aggregation


def heldout_metrics(L: Any) -> dict[str, float]:
    """Metrics of a held-out loss matrix L (T x T, row i: after training task i): the final
    mean loss over tasks (``heldout_loss``) and how much the loss of each earlier task grew from
    the end of its own training to the end of the sequence (``heldout_loss_increase``, mean over
    j < T-1; the loss analogue of forgetting, positive when a task was forgotten)."""
    L = _check_matrix(L)
    T = L.shape[0]
    increase = float(np.mean(L[-1, : T - 1] - np.diag(L)[: T - 1])) if T > 1 else _NAN
    return {"heldout_loss": float(np.mean(L[-1])), "heldout_loss_increase": increase}


def compute_metrics(
    R: Any,
    baseline: Any = None,
    curves: Mapping[str, Any] | None = None,
    reference: Mapping[int, tuple[Any, Any]] | None = None,
) -> dict[str, float | list[float]]:
    """All metrics of one run as a JSON-serialisable dict of plain floats / lists of floats.

    Always: ``acc``, ``bwt``, ``forgetting``, ``forgetting_per_task``. ``fwt`` (GEM) when
    ``baseline`` is given. ``fwt_auc`` and ``fwt_auc_per_task`` (Continual World) when both
    ``curves`` (a mapping with ``"steps"``, ``"success"``, ``"bounds"``) and ``reference`` are
    given. Undefined values are ``nan`` (``json.dumps`` writes them as ``NaN``).
    """
    f_mean, f_per_task = forgetting(R)
    out: dict[str, float | list[float]] = {
        "acc": average_accuracy(R),
        "bwt": backward_transfer(R),
        "forgetting": f_mean,
        "forgetting_per_task": [float(x) for x in f_per_task],
    }
    if baseline is not None:
        out["fwt"] = forward_transfer(R, baseline)
    if curves is not None and reference is not None:
        missing = [k for k in ("steps", "success", "bounds") if k not in curves]
        if missing:
            raise ValueError(f"curves is missing key(s) {missing}")
        T = _check_matrix(R).shape[0]
        success = _as_float_array(curves["success"], "curves['success']")
        if success.ndim != 2 or success.shape[1] != T:
            raise ValueError(
                f"curves['success'] must have shape (P, {T}) to match R, got {success.shape}"
            )
        own = curves.get("training_task")
        ft_mean, ft_per_task = cw_forward_transfer(
            curves["steps"], success, curves["bounds"], reference, own
        )
        out["fwt_auc"] = ft_mean
        out["fwt_auc_per_task"] = [float(x) for x in ft_per_task]
        out["auc_per_task"] = [
            float(x) for x in task_aucs(curves["steps"], success, curves["bounds"], own)
        ]
        out["reference_auc"] = reference_aucs(reference, curves["bounds"]).tolist()
    return out


def bootstrap_ci(
    values: Any, confidence: float = 0.9, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval of the mean, e.g. across seeds.

    Continual World (Wolczyk et al. 2021) reports 90% intervals, hence the default. Returns
    ``(sample mean, low, high)``. Resampling uses ``np.random.default_rng(seed)``, so results
    are reproducible. One value gives ``(v, v, v)``; no values give ``nan``s; any ``nan`` among
    the values propagates (it is not silently dropped).
    """
    x = _check_1d(values, "values")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    n = x.shape[0]
    if n == 0:
        return _NAN, _NAN, _NAN
    mean = float(x.mean())
    if n == 1:
        return mean, mean, mean
    if np.isnan(x).any():
        return _NAN, _NAN, _NAN

    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 1_000_000 // n)  # bound the index matrix to ~1e6 entries
    for lo in range(0, n_resamples, chunk):
        hi = min(lo + chunk, n_resamples)
        idx = rng.integers(0, n, size=(hi - lo, n))
        means[lo:hi] = x[idx].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return mean, float(low), float(high)


def bootstrap_difference(
    a: Any, b: Any, confidence: float = 0.9, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a`` minus mean of ``b`` (two independent groups of runs, e.g. the RL and the
    supervised side's seeds) with a percentile-bootstrap interval: each group is resampled on
    its own. Returns ``(difference, low, high)``; an empty group or a ``nan`` gives ``nan``s."""
    x, y = _check_1d(a, "a"), _check_1d(b, "b")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not len(x) or not len(y) or np.isnan(x).any() or np.isnan(y).any():
        return _NAN, _NAN, _NAN
    diff = float(x.mean() - y.mean())
    rng = np.random.default_rng(seed)
    means_x = x[rng.integers(0, len(x), (n_resamples, len(x)))].mean(1)
    means_y = y[rng.integers(0, len(y), (n_resamples, len(y)))].mean(1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means_x - means_y, [alpha / 2.0, 1.0 - alpha / 2.0])
    return diff, float(low), float(high)


def _is_scalar(v: Any) -> bool:
    """Real scalars (Python or numpy), excluding booleans."""
    return isinstance(v, Real) and not isinstance(v, bool)


def aggregate(
    runs: Sequence[Mapping[str, Any]],
    confidence: float = 0.9,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Aggregate per-seed metric dicts into ``{key: {"mean", "low", "high", "n"}}``.

    Only keys whose value is a real scalar in every run are aggregated (per-task lists and keys
    missing from some run are skipped); key order follows the first run. Intervals come from
    :func:`bootstrap_ci` with the given confidence, resample count and seed, except ``fwt_auc``
    when every run carries its AUCs and its reference runs' (``auc_per_task``,
    ``reference_auc``): then :func:`fwt_auc_interval` resamples the reference runs too.
    """
    if not runs:
        return {}
    out: dict[str, dict[str, float]] = {}
    for key in runs[0]:
        if not all(key in run and _is_scalar(run[key]) for run in runs):
            continue
        vals = np.array([float(run[key]) for run in runs])
        mean, low, high = bootstrap_ci(vals, confidence, n_resamples, seed)
        out[key] = {"mean": mean, "low": low, "high": high, "n": len(runs)}
    if "fwt_auc" in out and all("auc_per_task" in r and r.get("reference_auc") for r in runs):
        # the runs of a grid share their reference runs: count each reference run once
        references = {
            repr([float(x) for x in row]): row for r in runs for row in r["reference_auc"]
        }
        mean, low, high = fwt_auc_interval(
            [r["auc_per_task"] for r in runs],
            [[float(x) for x in row] for row in references.values()],
            confidence,
            n_resamples,
            seed,
        )
        out["fwt_auc"] = {"mean": mean, "low": low, "high": high, "n": len(runs)}
    return out
