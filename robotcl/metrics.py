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
    minus performance at the end of the sequence. The last task cannot be forgotten, so the
    per-task vector has length ``T-1`` and the mean is over ``j < T-1`` (``nan`` if ``T < 2``).
    Positive values mean forgetting (the sign is the opposite of BWT's terms).
    """
    arr = _check_matrix(R)
    T = arr.shape[0]
    j = np.arange(T - 1)
    per_task = arr[j, j] - arr[-1, j]
    mean = float(per_task.mean()) if per_task.size else _NAN
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


def cw_forward_transfer(
    steps: Any,
    success: Any,
    bounds: Sequence[tuple[float, float]],
    reference: Mapping[int, tuple[Any, Any]],
) -> tuple[float, np.ndarray]:
    """Continual World forward transfer (Wolczyk et al. 2021), based on training-curve AUC.

    For task ``i`` with training window ``bounds[i] = (start_i, end_i)`` (global env steps),
    ``AUC_i = curve_auc(steps, success[:, i], start_i, end_i)`` and ``AUC_ref_i`` is the AUC of a
    single-task reference run of task ``i`` over ``[0, end_i - start_i]`` (its steps are relative
    to its own start). ``FT_i = (AUC_i - AUC_ref_i) / (1 - AUC_ref_i)``; if ``AUC_ref_i == 1``,
    ``FT_i = AUC_i - 1`` (0 when both are perfect). Positive values mean the sequence made task
    ``i`` faster to learn than training from scratch.

    Args:
        steps: ``(P,)`` global env steps of the evaluation points (non-decreasing).
        success: ``(P, T)`` success of every task at every evaluation point.
        bounds: ``T`` pairs ``(start, end)``: each task's training window in global steps.
        reference: task index -> ``(ref_steps (Q,), ref_success (Q,))``. Tasks missing here are
            ``nan`` in the per-task vector and skipped in the mean.

    Returns:
        ``(mean FT over tasks with a reference, per-task FT of length T)``; the mean is ``nan``
        if no task has a reference. A ``nan`` per-task value (e.g. too few evaluation points in a
        window) propagates to the mean rather than being silently dropped.
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
    for k in reference:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < T:
            raise ValueError(f"reference keys must be task indices in [0, {T}), got {k!r}")

    windows: list[tuple[float, float]] = []
    for i, window in enumerate(bounds):
        if len(window) != 2 or not float(window[0]) < float(window[1]):
            raise ValueError(
                f"bounds[{i}] must be a (start, end) pair with start < end, got {window!r}"
            )
        windows.append((float(window[0]), float(window[1])))

    per_task = np.full(T, np.nan)
    used: list[int] = []
    for i, (start, end) in enumerate(windows):
        if i not in reference:
            continue
        ref_steps, ref_success = reference[i]
        ref_s = _check_1d(ref_steps, f"reference[{i}] steps")
        ref_v = _check_1d(ref_success, f"reference[{i}] success", length=ref_s.shape[0])
        auc = curve_auc(s, succ[:, i], start, end)
        auc_ref = curve_auc(ref_s, ref_v, 0.0, end - start)
        per_task[i] = _cw_ft_single(auc, auc_ref)
        used.append(i)

    mean = float(per_task[used].mean()) if used else _NAN
    return mean, per_task


# --------------------------------------------------------------------------- aggregation


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
        ft_mean, ft_per_task = cw_forward_transfer(
            curves["steps"], success, curves["bounds"], reference
        )
        out["fwt_auc"] = ft_mean
        out["fwt_auc_per_task"] = [float(x) for x in ft_per_task]
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
    :func:`bootstrap_ci` with the given confidence, resample count and seed.
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
    return out
