"""What a memory strategy's critic says about the tasks it remembers, at each task's end.

Loads every task-end checkpoint of a finished run of ``replay`` (or any strategy with per-task
episodic memories: ``replay_frozen``, ``agem``, ``gem``) and prints, for each remembered task,
the critic's loss, its mean Q-value and the mean TD target on that task's memory rows. It made
the table in docs/results.md that shows replay's past-task values running away:

    python examples/critic_on_memory.py RUN_DIR [--rows 1000]

D'Claw's reward is at most 60 a step (+10 and +50 bonuses near the goal, penalties otherwise),
so with gamma 0.99 no true Q-value exceeds 60 / (1 - 0.99) = 6,000.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from robotcl.experiment import Experiment, run_config


def critic_on_memory(run_dir: Path, rows: int) -> list[str]:
    """One line per task-end checkpoint of ``run_dir``: each remembered task's loss, Q, target."""
    config = run_config(run_dir)
    lines = []
    for checkpoint in sorted((run_dir / "checkpoints").glob("task*")):
        experiment = Experiment(config)
        experiment.prepare(checkpoint)  # the learner and the strategy's memories as saved
        memory, names = experiment.strategy.memory, experiment.suite.task_names
        generator = torch.Generator().manual_seed(0)
        cells = [checkpoint.name]
        for task in sorted(memory.tasks):
            batch = memory.sample_even([task], rows, generator)
            with torch.no_grad():
                out = experiment.learner.losses(batch)
            cells.append(
                f"{names[task]} loss {float(out['critic_loss']):10.1f} "
                f"Q {float(out['q'].mean()):9.1f} target {float(out['target_q'].mean()):9.1f}"
            )
        lines.append(" | ".join(cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished run with task-end checkpoints")
    parser.add_argument("--rows", type=int, default=1000, help="memory rows drawn a task")
    args = parser.parse_args()
    for line in critic_on_memory(args.run_dir, args.rows):
        print(line)


if __name__ == "__main__":
    main()
