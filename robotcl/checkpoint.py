"""Checkpoints: learner, optimizers, strategy state, results, random states.

One is written at each task's end (``task003/``: task 3 finished) and, where
``checkpoint_every_steps`` asks, inside a task (``partial/``: the task being trained, with its
replay buffer; it is replaced by the next one and removed once the task's end is saved), and,
where ``keep_best`` asks, at the best evaluation of each task while it was trained
(``best003/``, without replay buffer, with ``best.json``: its step, success and return).
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

#: the folder of the checkpoint inside a task
PARTIAL = "partial"
#: beside a best checkpoint: the evaluation it was taken at
BEST_FILE = "best.json"


def best_folder(folder: Path, task: int) -> Path:
    """Where the policy at ``task``'s best evaluation is kept (``keep_best``)."""
    return folder / f"best{task:03d}"


def best_score(folder: Path, task: int) -> dict[str, Any] | None:
    """``{"step", "success", "return"}`` of ``task``'s kept best checkpoint, or None."""
    try:
        return json.loads((best_folder(folder, task) / BEST_FILE).read_text())
    except (OSError, ValueError):
        return None


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
    partial: bool = False,
    best: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint after ``task`` finished, or (``partial``) inside ``task``, or
    (``best``: its evaluation) at ``task``'s best evaluation so far; ``extra``: the
    experiment's own state, such as the probe's held-out data. Returns its folder."""
    name = PARTIAL if partial else f"task{task:03d}"
    if best is not None:
        name = best_folder(folder, task).name
    final = folder / name
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        learner.save(tmp / "learner.zip")
        if best is None and (partial or not getattr(learner, "reset_buffer", True)):
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
        if best is not None:
            (tmp / BEST_FILE).write_text(json.dumps(best))
    except BaseException:  # a full disk, a kill: the earlier checkpoints stay as they were
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint folder, or None: the partial one where it is inside a
    task after the last finished one (a kill between a task's end and the partial's removal
    leaves an older partial beside it)."""
    done = sorted(p for p in folder.glob("task[0-9][0-9][0-9]") if (p / "state.pt").is_file())
    latest = done[-1] if done else None
    part = folder / PARTIAL
    if (part / "state.pt").is_file() and (part / "results.json").is_file():
        try:
            finished = int(json.loads((part / "results.json").read_text())["completed_tasks"])
        except (ValueError, KeyError, TypeError):
            return part  # corrupt: loading it says so in one line
        if latest is None or finished > int(latest.name[4:]):
            return part
    return latest


def remove_partial(folder: Path) -> None:
    """Drop the partial checkpoint (its task's end is saved)."""
    shutil.rmtree(folder / PARTIAL, ignore_errors=True)


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
