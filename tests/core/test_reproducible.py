"""Two fresh runs of one config with one seed give the same numbers (what docs/results.md
promises for re-running a study cell): SAC with an encoder and a contrastive objective on the
CPU, its evaluations, matrices and probe; another seed gives others."""

from __future__ import annotations

import json

from robotcl.config import load_config
from robotcl.experiment import run


def numbers(tiny: list[str], where: str, *items: str) -> str:
    config = load_config("quick", [*tiny[:-1], f"runs_dir={where}", *items])
    _, results = run(config)
    # as text: the probe's matrix holds NaN above its diagonal, and NaN != NaN
    return json.dumps([results["R"], results["curves"], results["P"]])


def test_a_seeded_run_repeats_exactly(tiny, tmp_path):
    # SAC with an encoder and CURL: the augmentations' and the SSL memory's generators too
    items = (
        "agent.encoder.type=mlp",
        "agent.encoder.feature_dim=16",
        "agent.encoder.objective=curl",
    )
    first = numbers(tiny, str(tmp_path / "a"), *items)
    again = numbers(tiny, str(tmp_path / "b"), *items)
    other = numbers(tiny, str(tmp_path / "c"), *items, "seed=1")
    assert first == again  # matrices, every evaluation's returns, the probe
    assert json.loads(first)[1] != json.loads(other)[1]  # the evaluations' returns
