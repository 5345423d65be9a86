"""Tests for robotcl.metrics against small hand-computed examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from robotcl.metrics import (
    aggregate,
    average_accuracy,
    backward_transfer,
    bootstrap_ci,
    compute_metrics,
    curve_auc,
    cw_forward_transfer,
    forgetting,
    forward_transfer,
    fwt_auc_interval,
    reference_aucs,
    task_aucs,
)

# R[i][j] = success on task j after training task i. Deliberately not symmetric, so swapping
# rows and columns changes every answer below.
R3 = [
    [0.9, 0.2, 0.1],
    [0.6, 0.8, 0.3],
    [0.5, 0.7, 1.0],
]
# Random-init success per task, evaluated before task 0.
B3 = [0.0, 0.1, 0.05]


# --------------------------------------------------------------------------- matrix metrics


def test_average_accuracy_hand_computed():
    # ACC = mean of last row = (0.5 + 0.7 + 1.0) / 3 = 2.2 / 3
    assert average_accuracy(R3) == pytest.approx(2.2 / 3)


def test_backward_transfer_hand_computed():
    # BWT = ((R[2][0] - R[0][0]) + (R[2][1] - R[1][1])) / 2 = ((0.5-0.9) + (0.7-0.8)) / 2 = -0.25
    assert backward_transfer(R3) == pytest.approx(-0.25)


def test_forgetting_hand_computed_over_all_tasks_as_continual_world():
    # forgetting_j = R[j][j] - R[2][j]: [0.9-0.5, 0.8-0.7, 1.0-1.0] = [0.4, 0.1, 0]; Continual
    # World's code averages over all T = 3 tasks: 0.5 / 3 (not 0.25 over the T-1 = 2)
    mean, per_task = forgetting(R3)
    assert mean == pytest.approx(0.5 / 3)
    np.testing.assert_allclose(per_task, [0.4, 0.1, 0.0])
    assert per_task.shape == (3,)


def test_forgetting_negative_when_task_improves():
    # Task 0 goes from 0.3 (end of its training) to 0.5 (end of sequence): forgetting = -0.2,
    # BWT = +0.2. No clipping at zero.
    R = [[0.3, 0.0], [0.5, 0.9]]
    mean, per_task = forgetting(R)
    assert mean == pytest.approx(-0.2 / 2)
    np.testing.assert_allclose(per_task, [-0.2, 0.0])
    assert backward_transfer(R) == pytest.approx(0.2)


def test_forward_transfer_hand_computed():
    # FWT = ((R[0][1] - b[1]) + (R[1][2] - b[2])) / 2 = ((0.2-0.1) + (0.3-0.05)) / 2 = 0.175
    assert forward_transfer(R3, B3) == pytest.approx(0.175)


def test_single_task_undefined_metrics_are_nan():
    R = [[0.7]]
    assert average_accuracy(R) == pytest.approx(0.7)
    assert math.isnan(backward_transfer(R))
    assert math.isnan(forward_transfer(R, [0.1]))
    mean, per_task = forgetting(R)
    assert math.isnan(mean)
    np.testing.assert_allclose(per_task, [0.0])


# --------------------------------------------------------------------------- AUC

STEPS = [0, 10, 20, 40]
VALUES = [0.0, 0.5, 1.0, 1.0]


def test_curve_auc_full_window():
    # Trapezoids: 10*(0+0.5)/2 + 10*(0.5+1)/2 + 20*(1+1)/2 = 2.5 + 7.5 + 20 = 30; / 40 = 0.75
    assert curve_auc(STEPS, VALUES, 0, 40) == pytest.approx(0.75)


def test_curve_auc_sub_window_uses_only_points_inside():
    # Window [10, 40]: 7.5 + 20 = 27.5; / 30
    assert curve_auc(STEPS, VALUES, 10, 40) == pytest.approx(27.5 / 30)


def test_curve_auc_missing_endpoint_not_interpolated():
    # Window [5, 40]: points 10, 20, 40 -> area 27.5, normalised by the full window length 35.
    assert curve_auc(STEPS, VALUES, 5, 40) == pytest.approx(27.5 / 35)


def test_curve_auc_too_few_points_is_nan():
    assert math.isnan(curve_auc(STEPS, VALUES, 21, 39))  # no point inside
    assert math.isnan(curve_auc(STEPS, VALUES, 15, 30))  # one point inside


def test_curve_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="non-decreasing"):
        curve_auc([0, 20, 10], [0.0, 1.0, 0.5], 0, 20)
    with pytest.raises(ValueError, match="start < end"):
        curve_auc(STEPS, VALUES, 40, 40)
    with pytest.raises(ValueError, match="values"):
        curve_auc(STEPS, VALUES[:3], 0, 40)


# --------------------------------------------------------------------------- CW forward transfer

# Two tasks of 100 steps each; evaluation every 50 global steps.
CW_STEPS = [0, 50, 100, 150, 200]
CW_SUCCESS = [  # columns: task 0, task 1
    [0.0, 0.0],
    [0.5, 0.2],
    [1.0, 0.4],
    [0.8, 1.0],
    [0.6, 1.0],
]
CW_BOUNDS = [(0, 100), (100, 200)]
CW_REFERENCE = {
    # Task 0 reference: 50*(0+1)/2 + 50*(1+1)/2 = 25 + 50 = 75 -> AUC_ref_0 = 0.75.
    0: ([0, 50, 100], [0.0, 1.0, 1.0]),
    # Task 1 reference (steps relative to its own start); the point at 150 lies outside
    # [0, 100] and must be ignored: 50*(0+0.4)/2 + 50*(0.4+0.8)/2 = 10 + 30 = 40 -> 0.4.
    1: ([0, 50, 100, 150], [0.0, 0.4, 0.8, 0.0]),
}
# AUC_0 over [0, 100]: 50*(0+0.5)/2 + 50*(0.5+1)/2 = 12.5 + 37.5 = 50 -> 0.5
#   FT_0 = (0.5 - 0.75) / (1 - 0.75) = -1.0
# AUC_1 over [100, 200]: 50*(0.4+1)/2 + 50*(1+1)/2 = 35 + 50 = 85 -> 0.85
#   FT_1 = (0.85 - 0.4) / (1 - 0.4) = 0.75
# FT = (-1.0 + 0.75) / 2 = -0.125


def test_cw_forward_transfer_hand_computed():
    mean, per_task = cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS, CW_REFERENCE)
    np.testing.assert_allclose(per_task, [-1.0, 0.75])
    assert mean == pytest.approx(-0.125)


def test_cw_forward_transfer_missing_reference_is_skipped():
    mean, per_task = cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS, {1: CW_REFERENCE[1]})
    assert math.isnan(per_task[0])
    assert per_task[1] == pytest.approx(0.75)
    assert mean == pytest.approx(0.75)

    mean, per_task = cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS, {})
    assert math.isnan(mean)
    assert np.isnan(per_task).all()


def test_cw_forward_transfer_perfect_reference():
    # AUC_ref = 1: FT = AUC - 1. Task 1 has AUC 0.85 -> -0.15. A perfect task 0 gives 0.
    perfect = ([0, 100], [1.0, 1.0])
    _, per_task = cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS, {1: perfect})
    assert per_task[1] == pytest.approx(-0.15)

    success = [[1.0], [1.0], [1.0]]
    mean, per_task = cw_forward_transfer([0, 50, 100], success, [(0, 100)], {0: perfect})
    assert mean == 0.0
    assert per_task[0] == 0.0


def test_cw_forward_transfer_rejects_bad_input():
    with pytest.raises(ValueError, match="success"):
        cw_forward_transfer(CW_STEPS, CW_SUCCESS[:4], CW_BOUNDS, CW_REFERENCE)
    with pytest.raises(ValueError, match="bounds"):
        cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS[:1], CW_REFERENCE)
    with pytest.raises(ValueError, match="bounds"):
        cw_forward_transfer(CW_STEPS, CW_SUCCESS, [(0, 100), (200, 100)], CW_REFERENCE)
    with pytest.raises(ValueError, match="reference"):
        cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS, {2: CW_REFERENCE[0]})
    with pytest.raises(ValueError, match=r"reference\[1\] success"):
        cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS, {1: ([0, 50, 100], [0.0, 0.4])})


# --------------------------------------------------------------------------- compute_metrics


def test_compute_metrics_matrix_only():
    out = compute_metrics(R3)
    assert set(out) == {"acc", "bwt", "forgetting", "forgetting_per_task"}
    assert out["acc"] == pytest.approx(2.2 / 3)
    assert out["bwt"] == pytest.approx(-0.25)
    assert out["forgetting"] == pytest.approx(0.5 / 3)
    assert out["forgetting_per_task"] == pytest.approx([0.4, 0.1, 0.0])
    assert type(out["acc"]) is float
    assert all(type(x) is float for x in out["forgetting_per_task"])


def test_compute_metrics_all_and_json_serialisable():
    R = [[1.0, 0.0], [0.6, 0.6]]
    curves = {"steps": CW_STEPS, "success": CW_SUCCESS, "bounds": CW_BOUNDS}
    out = compute_metrics(R, baseline=[0.0, 0.1], curves=curves, reference={1: CW_REFERENCE[1]})
    assert out["fwt"] == pytest.approx(-0.1)  # R[0][1] - b[1] = 0.0 - 0.1
    assert out["fwt_auc"] == pytest.approx(0.75)
    assert math.isnan(out["fwt_auc_per_task"][0])
    assert out["forgetting_per_task"] == pytest.approx([0.4, 0.0])
    decoded = json.loads(json.dumps(out))
    assert decoded["fwt_auc"] == pytest.approx(0.75)
    assert math.isnan(decoded["fwt_auc_per_task"][0])


def test_compute_metrics_needs_both_curves_and_reference():
    curves = {"steps": CW_STEPS, "success": CW_SUCCESS, "bounds": CW_BOUNDS}
    R = [[1.0, 0.0], [0.6, 0.6]]
    assert "fwt_auc" not in compute_metrics(R, curves=curves)
    assert "fwt_auc" not in compute_metrics(R, reference=CW_REFERENCE)
    with pytest.raises(ValueError, match="bounds"):
        compute_metrics(R, curves={"steps": CW_STEPS, "success": CW_SUCCESS}, reference={})
    with pytest.raises(ValueError, match="success"):
        compute_metrics(R3, curves=curves, reference=CW_REFERENCE)  # 2 curve tasks, 3 in R


# --------------------------------------------------------------------------- bad shapes


@pytest.mark.parametrize(
    "bad",
    [
        [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],  # not square
        [0.1, 0.2],  # 1-D
        np.zeros((2, 2, 2)),  # 3-D
        [[0.1, 0.2], [0.3]],  # ragged
        np.zeros((0, 0)),  # no tasks
    ],
)
def test_bad_matrix_raises(bad):
    for fn in (average_accuracy, backward_transfer, forgetting):
        with pytest.raises(ValueError, match="R"):
            fn(bad)


def test_bad_baseline_raises():
    with pytest.raises(ValueError, match="baseline"):
        forward_transfer(R3, [0.0, 0.1])
    with pytest.raises(ValueError, match="baseline"):
        forward_transfer(R3, [[0.0, 0.1, 0.2]])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_contains_mean_and_within_range():
    values = [0.2, 0.4, 0.5, 0.7, 0.9]
    mean, low, high = bootstrap_ci(values)
    assert mean == pytest.approx(0.54)
    assert min(values) <= low < mean < high <= max(values)


def test_bootstrap_matches_normal_approximation():
    # For large n the 90% percentile interval of the mean ~ mean +- 1.645 * sd / sqrt(n).
    x = np.random.default_rng(123).normal(0.5, 0.2, size=400)
    mean, low, high = bootstrap_ci(x, n_resamples=5_000)
    half = 1.645 * x.std() / math.sqrt(len(x))
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert (mean + low + high) / 3 == pytest.approx(mean, abs=0.2 * half)


def _width(values, **kwargs) -> float:
    _, low, high = bootstrap_ci(values, **kwargs)
    return high - low


def test_bootstrap_narrows():
    rng = np.random.default_rng(7)
    spread = rng.uniform(0.0, 1.0, size=10)
    tight = 0.5 + rng.uniform(-0.005, 0.005, size=10)  # nearly identical values
    many = rng.uniform(0.0, 1.0, size=200)
    w_spread, w_tight, w_many = _width(spread), _width(tight), _width(many)
    assert w_spread > 0.1
    assert 0 < w_tight < 0.01
    assert 0 < w_many < w_spread
    # Higher confidence gives a wider interval.
    assert _width(spread, confidence=0.99) > w_spread


def test_bootstrap_reproducible():
    values = np.random.default_rng(1).uniform(size=20)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_bootstrap_degenerate_inputs():
    assert bootstrap_ci([0.42]) == (0.42, 0.42, 0.42)
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert all(math.isnan(v) for v in bootstrap_ci([0.1, float("nan")]))
    with pytest.raises(ValueError, match="values"):
        bootstrap_ci([[0.1, 0.2]])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([0.1, 0.2], confidence=1.5)


# --------------------------------------------------------------------------- aggregate


def test_aggregate_scalar_keys_present_in_all_runs():
    runs = [
        {"acc": 0.5, "bwt": -0.1, "forgetting_per_task": [0.1], "extra": 1.0, "ok": True},
        {"acc": 0.7, "bwt": np.float32(-0.3), "forgetting_per_task": [0.3], "ok": False},
        {"acc": 0.6, "bwt": -0.2, "forgetting_per_task": [0.2], "ok": True},
    ]
    out = aggregate(runs)
    assert list(out) == ["acc", "bwt"]  # lists, partial keys and booleans skipped
    assert out["acc"]["mean"] == pytest.approx(0.6)
    assert out["bwt"]["mean"] == pytest.approx(-0.2)
    assert out["acc"]["n"] == 3
    assert 0.5 <= out["acc"]["low"] < 0.6 < out["acc"]["high"] <= 0.7
    mean, low, high = bootstrap_ci([0.5, 0.7, 0.6], seed=5)
    assert aggregate(runs, seed=5)["acc"] == {"mean": mean, "low": low, "high": high, "n": 3}


def test_aggregate_over_compute_metrics_and_empty():
    assert aggregate([]) == {}
    runs = [compute_metrics(R3, baseline=B3), compute_metrics([[0.8, 0.0], [0.7, 0.9]])]
    out = aggregate(runs)
    assert set(out) == {"acc", "bwt", "forgetting"}  # fwt missing from the second run
    assert out["forgetting"]["mean"] == pytest.approx((0.5 / 3 + 0.1 / 2) / 2)


# --------------------------------------------------------------------------- reference runs


def test_several_reference_runs_are_averaged_per_task():
    two = {1: [CW_REFERENCE[1], ([0, 50, 100], [0.0, 0.0, 0.0])]}  # AUCs 0.4 and 0.0
    refs = reference_aucs(two, CW_BOUNDS)
    np.testing.assert_allclose(refs[:, 1], [0.4, 0.0])
    assert np.isnan(refs[:, 0]).all()
    _, per_task = cw_forward_transfer(CW_STEPS, CW_SUCCESS, CW_BOUNDS, two)
    assert per_task[1] == pytest.approx((0.85 - 0.2) / (1 - 0.2))  # against the mean, 0.2


def test_a_task_window_holds_only_the_points_made_while_it_was_trained():
    # task 1 starts at step 100 twice: the end of task 0 (old network: 0.9 on task 1) and
    # task 1's own start after on_task_start (a fresh network: 0.0)
    steps = [0, 50, 100, 100, 150, 200]
    success = [[0, 0], [0, 0], [0, 0.9], [0, 0.0], [0, 0.4], [0, 0.8]]
    trained = [0, 0, 0, 1, 1, 1]
    aucs = task_aucs(steps, success, CW_BOUNDS, trained)
    assert aucs[1] == pytest.approx((50 * 0.2 + 50 * 0.6) / 100)
    # a reference run written as such a results.json: its window starts at the fresh point
    curve = load_reference_from(steps, success, trained)
    np.testing.assert_allclose(curve[0], [0, 50, 100])
    np.testing.assert_allclose(curve[1], [0.0, 0.4, 0.8])


def load_reference_from(steps, success, trained):
    import tempfile
    from pathlib import Path

    from robotcl.experiment import load_reference

    folder = Path(tempfile.mkdtemp())
    results = {
        "tasks": ["A", "B"],
        "bounds": [[0, 100], [100, 200]],
        "strategy": ["single"],
        "curves": {"steps": steps, "training_task": trained, "stochastic": {"success": success}},
    }
    (folder / "results.json").write_text(json.dumps(results))
    (curve,) = load_reference([str(folder)], ["B"], "stochastic")[0]
    return curve


def test_fwt_auc_interval_widens_with_the_spread_of_the_reference_runs():
    runs = [[0.5, 0.6], [0.55, 0.65], [0.45, 0.7]]
    same = [[0.3, 0.4]] * 3
    spread = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    mean_same, low_same, high_same = fwt_auc_interval(runs, same, seed=1)
    mean_spread, low_spread, high_spread = fwt_auc_interval(runs, spread, seed=1)
    expected = np.mean(
        [(np.mean(a) - r) / (1 - r) for a, r in zip(np.array(runs).T, [0.3, 0.4], strict=True)]
    )
    assert mean_same == pytest.approx(expected) and mean_spread == pytest.approx(expected)
    assert high_spread - low_spread > 2 * (high_same - low_same) > 0
    assert fwt_auc_interval([[0.5, 0.6]], [[0.3, 0.4]]) == pytest.approx((expected,) * 3, abs=0.1)


def test_aggregate_takes_forward_transfer_intervals_over_runs_and_references():
    curves = {"steps": CW_STEPS, "success": CW_SUCCESS, "bounds": CW_BOUNDS}
    refs = {1: [CW_REFERENCE[1], ([0, 50, 100], [0.0, 0.0, 0.0])]}
    runs = [compute_metrics([[1.0, 0.0], [0.6, 0.6]], curves=curves, reference=refs)] * 2
    assert runs[0]["reference_auc"][0][1] == pytest.approx(0.4)
    out = aggregate(runs)
    assert out["fwt_auc"]["mean"] == pytest.approx(runs[0]["fwt_auc"])
    plain = bootstrap_ci([r["fwt_auc"] for r in runs])
    assert out["fwt_auc"]["high"] - out["fwt_auc"]["low"] > plain[2] - plain[1] == 0
