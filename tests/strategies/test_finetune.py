"""Fine-tuning, the lower bound: on the toy it forgets task 0 while learning task 1."""

from __future__ import annotations

from robotcl.strategies.finetune import Finetune


def test_finetune_forgets_the_first_task(toy):
    _, errors = toy.run(Finetune())
    learned_0, forgotten_0 = errors["after_0"][0], errors["after_1"][0]
    assert learned_0 < 0.05  # task 0 is learned,
    assert errors["after_1"][1] < 0.5 * errors["after_0"][1]  # then task 1,
    assert forgotten_0 > 20 * learned_0  # and task 0 is forgotten
