"""Checkpoints at each task's end: learner, optimizers, strategy state, results, random states.

A checkpoint is written into a temporary folder and renamed into place, so a run killed while
writing one still has the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robotcl.errors import UserInputError


def _rng_state(learner: Any) -> dict[str, Any]:
    space = getattr(learner, "action_space", None)
    return {
        "action_space": None if space is None else space.np_random.bit_generator.state,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict[str, Any], learner: Any) -> None:
    # SB3's load reseeds the action space (used for random warm-up actions): restore it too.
    if state["action_space"] is not None:
        learner.action_space.np_random.bit_generator.state = state["action_space"]
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: Path,
    task: int,
    learner: Any,
    strategy: Any,
    results: dict,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint after ``task`` finished (``extra``: the experiment's own state, such
    as the probe's held-out data); returns its folder."""
    final = folder / f"task{task:03d}"
    tmp = folder / f".task{task:03d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        learner.save(tmp / "learner.zip")
        if not getattr(learner, "reset_buffer", True):
            learner.save_replay_buffer(tmp / "replay_buffer.pkl")
        torch.save(
            {
                "strategy": strategy.state_dict(),
                "rng": _rng_state(learner),
                "task": task,
                "extra": extra or {},
            },
            tmp / "state.pt",
        )
        (tmp / "results.json").write_text(json.dumps(results))
    except BaseException:  # a full disk, a kill: the earlier checkpoints stay as they were
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    done = sorted(p for p in folder.glob("task[0-9][0-9][0-9]") if (p / "state.pt").is_file())
    return done[-1] if done else None


def load_checkpoint(
    path: Path, learner_cls: Any, device: str, strategy: Any
) -> tuple[Any, dict, dict]:
    """Restore the learner, the strategy state and the random states; return the learner, the
    results and the experiment's extra state."""
    try:
        # a checkpoint written on a GPU machine still loads on a CPU-only one
        where = None if torch.cuda.is_available() else "cpu"
        state = torch.load(path / "state.pt", weights_only=False, map_location=where)
        results = json.loads((path / "results.json").read_text())
    except Exception as exc:  # corrupt or partial files
        raise UserInputError(f"checkpoint '{path}'", f"cannot be read ({exc})") from None
    # the strategy first: it may reshape the learner (prepare) before the weights load
    strategy.load_state_dict(state["strategy"])
    try:
        learner = learner_cls.load(path / "learner.zip", device=device, prepare=strategy.prepare)
    except Exception as exc:
        raise UserInputError(f"checkpoint '{path}'", f"cannot be read ({exc})") from None
    if (path / "replay_buffer.pkl").is_file():
        learner.load_replay_buffer(path / "replay_buffer.pkl")
    _set_rng_state(state["rng"], learner)
    return learner, results, state.get("extra", {})
