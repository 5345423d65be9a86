"""Which condition of the spin success rule a run's spin policies fail.

dexterous20's spin tasks succeed when, over an episode's last two seconds, the valve's mean speed
is within 0.25 rad/s of the goal (0.5 rad/s, either way) and every half second turns the goal's
way at a third of that speed or more (``robotcl.envs.dclaw.family_spin``). For every spin task
of a finished run this loads the checkpoint saved at that task's end (for the ``single``
strategy: the task's own single-task agent), runs its policy and prints, episode by episode, the
two conditions and the speeds they read. It made the spin paragraph of docs/results.md:

    python examples/spin_success.py RUN_DIR [--episodes 10] [--stochastic]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from robotcl.envs.dclaw.family_spin import Spin
from robotcl.experiment import Experiment, run_config, suite_of


def spin_episodes(
    run_dir: Path, episodes: int, deterministic: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """For each spin task of ``run_dir``: one entry an episode of its task-end policy, with the
    env's success and the rule's judgement at the episode's end (episode k is reset with seed k)."""
    config = run_config(run_dir)
    found: dict[str, list[dict[str, Any]]] = {}
    for task, name in enumerate(suite_of(config).task_names):
        checkpoint = run_dir / "checkpoints" / f"task{task:03d}"
        if not name.startswith("spin-") or not checkpoint.is_dir():
            continue
        experiment = Experiment(config)
        experiment.prepare(checkpoint)
        found[name] = []
        env = experiment.suite.make_env(task)
        rules = env.unwrapped.task
        assert isinstance(rules, Spin)
        for k in range(episodes):
            obs, _ = env.reset(seed=k)
            done = False
            with experiment.strategy.acting(task), torch.no_grad():
                while not done:
                    action = experiment.learner.act(obs[None], deterministic=deterministic)[0]
                    obs, _, terminated, truncated, info = env.step(action)
                    done = terminated or truncated
            success = bool(info.get("is_success", False))
            found[name].append({"success": success, "judgement": rules.judge(env.unwrapped)})
        env.close()
        experiment.evaluator.close()
    return found


def describe(found: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Lines for :func:`spin_episodes`' result: an episode a line, then a count a task."""
    lines = []
    for name, rows in found.items():
        for k, row in enumerate(rows):
            j = row["judgement"]
            speeds = " ".join(f"{v:+.2f}" for v in j.segment_speeds)
            lines.append(
                f"{name} episode {k}: success {row['success']!s:5}  mean {j.mean_speed:+.2f} rad/s "
                f"(on target: {j.mean_on_target!s:5})  half seconds {speeds} "
                f"(onward: {j.onward})"
            )
        on_target = sum(r["judgement"].mean_on_target for r in rows)
        onward = sum(r["judgement"].onward for r in rows)
        lines.append(
            f"{name}: {sum(r['success'] for r in rows)} of {len(rows)} succeed; the mean speed "
            f"on target in {on_target}, every half second onward in {onward}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run with task-end checkpoints")
    parser.add_argument("--episodes", type=int, default=10, help="episodes a task")
    parser.add_argument("--stochastic", action="store_true", help="sample the policy's actions")
    args = parser.parse_args()
    found = spin_episodes(args.run_dir, args.episodes, deterministic=not args.stochastic)
    if not found:
        parser.exit(1, f"{args.run_dir}: no spin task with a task-end checkpoint\n")
    print("\n".join(describe(found)))


if __name__ == "__main__":
    main()
