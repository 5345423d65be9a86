"""The figures' content, read back from matplotlib's artists."""

from __future__ import annotations

from matplotlib.patches import Polygon, Rectangle

from robotcl.reporting.plots import curves_figure


def _run(tasks: list[str], span: int) -> dict:
    """A finished run of ``tasks``, ``span`` steps each, evaluated at every task's start and end."""
    steps = [k * span for k in range(len(tasks) + 1)]
    values = [[0.0] * len(tasks) for _ in steps]
    return {
        "tasks": tasks,
        "bounds": [[j * span, (j + 1) * span] for j in range(len(tasks))],
        "curves": {"steps": steps, "deterministic": {"success": values, "return": values}},
    }


def test_every_task_is_shaded_over_its_own_training_also_in_a_second_piece():
    """Two pieces of one study (different tasks): each task's panel shades its training span,
    taken from the run that trained it (only the first run's tasks were shaded before)."""
    fig = curves_figure(
        [_run(["a", "b"], 100), _run(["c"], 300)], ["s0", "s0"], mode="deterministic"
    )
    spans = {}
    for ax in fig.axes:
        shades = [p for p in ax.patches if isinstance(p, (Polygon, Rectangle))]
        assert len(shades) == 1, ax.get_title()
        shade = shades[0]
        if isinstance(shade, Rectangle):  # axvspan's patch in matplotlib >= 3.9
            xs = [shade.get_x(), shade.get_x() + shade.get_width()]
        else:
            xs = list(shade.get_xy()[:, 0])
        spans[ax.get_title()] = (min(xs), max(xs))
    assert spans == {"a": (0, 100), "b": (100, 200), "c": (0, 300)}
