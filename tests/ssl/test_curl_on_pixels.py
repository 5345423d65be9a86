"""CURL inside the pixel agent learns: on rendered frames of one D'Claw task, a couple of hundred
SAC updates bring the contrastive loss below chance (ln B) and its top-1 accuracy above 1/B.

Summed into the critic's loss (``agent.encoder.ssl_update=joint``) it does not: the critic's
gradient, scaled by D'Claw's rewards (about -10 a step), sets the encoder's Adam step and the
logits collapse to a constant (the loss sits at exactly ln B). CURL steps its loss on its own
(``separate``, the default), as Laskin et al. 2020 do.
"""

from __future__ import annotations

import math
import statistics

import pytest

from robotcl.config import load_config
from robotcl.experiment import Experiment

BATCH = 32
UPDATES = 200
PIXELS = [
    "num_tasks=1",
    "probe.samples=0",
    f"agent.batch_size={BATCH}",
    "agent.random_steps=300",
    "agent.update_after=300",
    "agent.train_freq=1",
    "agent.gradient_steps=1",
    "torch_threads=2",
]


def contrastive_curve(tmp_path, *items: str) -> list[tuple[float, float]]:
    """(loss, accuracy) of every SSL computation in the first ``UPDATES`` updates of task 0."""
    config = load_config("pixels-quick", [*PIXELS, f"runs_dir={tmp_path}", *items])
    experiment = Experiment(config)
    experiment.prepare()
    learner = experiment.learner
    wiring, curve = learner.ssl_wiring, []
    term = wiring.term

    def recorded(*args, **kwargs):
        loss = term(*args, **kwargs)
        out = args[4]
        curve.append((float(out["ssl_loss"].detach()), float(out["ssl_accuracy"])))
        return loss

    wiring.term = recorded
    learner.start_task(0, experiment.suite.make_env(0), seed=0)
    learner.learn_task(300 + UPDATES)
    return curve


@pytest.mark.usefixtures("gl_ok")
def test_curl_learns_on_rendered_frames_of_one_task(tmp_path):
    curve = contrastive_curve(tmp_path)
    assert len(curve) >= UPDATES  # one update at the step where updates start, then one a step
    loss = statistics.mean(loss for loss, _ in curve[-50:])
    accuracy = statistics.mean(accuracy for _, accuracy in curve[-50:])
    assert loss < math.log(BATCH) - 0.3, loss  # measured: 2.98 against ln 32 = 3.47
    assert accuracy > 2 / BATCH, accuracy  # measured: 0.09 against 1/32 = 0.03
