"""The ``robotcl`` command: run, list, report, show."""

from __future__ import annotations

import argparse
import os
import sys

from robotcl.errors import UserInputError

EXAMPLES = """examples:
  robotcl run                                   # the 'quick' preset
  robotcl run corl-gap seed=1 device=cuda
  robotcl run my.yaml agent.batch_size=256 eval.every_steps=5000
  robotcl run --resume runs/quick/dclaw10-finetune-s0-20261127-101500
  robotcl report runs/quick/*
  robotcl plot runs/quick/* --metric return --out curves.png
  robotcl show dclaw10 --out dclaw10.png
"""


def _config_help() -> str:
    import robotcl.strategies  # noqa: F401  (registers the built-in strategies)
    from robotcl.config import describe
    from robotcl.registry import STRATEGIES

    rows = describe()
    for name in STRATEGIES:
        rows += describe(STRATEGIES.get(name).Settings, prefix=f"{name}.")
    width = max(len(k) for k, _, _ in rows)
    lines = [f"  {k.ljust(width)}  {d}  (default {v})" for k, v, d in rows]
    return "config keys (set as key=value; a strategy's keys apply when it is used):\n" + "\n".join(
        lines
    )


def _parser(with_config_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robotcl",
        description="Lifelong reinforcement learning for robot manipulation.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run a preset or a YAML config through its suite",
        description="Run PRESET (default: quick) or config.yaml, with key=value overrides.",
        epilog=_config_help() if with_config_help else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=True,
    )
    run.add_argument("items", nargs="*", metavar="PRESET|config.yaml|key=value")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last task")
    run.add_argument(
        "--dry-run", action="store_true", help="print the resolved config and exit (writes nothing)"
    )
    cmp_ = sub.add_parser(
        "compare",
        help="grid of strategies x seeds on one suite, then one comparison",
        description="Run PRESET for every strategy and seed, then compare them. Grid keys: "
        "strategies=[a,b,[c,d]] (a list inside composes), seeds=N, workers=K (default: one per "
        "GPU, or one on CPU; 0 runs in this process). Other key=value items override the preset.",
    )
    cmp_.add_argument("items", nargs="*", metavar="PRESET|config.yaml|key=value")
    sub.add_parser("list", help="suites, tasks, strategies, agents and presets")
    rep = sub.add_parser("report", help="metrics table of one or more runs")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    plot = sub.add_parser("plot", help="PNG of every task's success or return along the runs")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR")
    plot.add_argument("--out", default="curves.png", help="PNG path (default: curves.png)")
    plot.add_argument("--metric", choices=["success", "return"], default="success")
    plot.add_argument("--mode", choices=["stochastic", "deterministic"], default="stochastic")
    show = sub.add_parser("show", help="write a PNG contact sheet of a suite's tasks")
    show.add_argument("suite")
    show.add_argument("--order", default="a")
    show.add_argument("--out", default=None, help="PNG path (default: SUITE.png)")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from robotcl.config import load_config

    if args.resume:
        if args.items:
            raise UserInputError("run --resume", "takes no preset or overrides", "only RUN_DIR")
        from robotcl.experiment import resume

        run_dir, results = resume(args.resume)
    else:
        source = None
        overrides = list(args.items)
        if overrides and "=" not in overrides[0]:
            source = overrides.pop(0)
        config = load_config(source, overrides)
        if args.dry_run:
            import yaml

            print(yaml.safe_dump(config.model_dump(), sort_keys=False), end="")
            return 0
        from robotcl.experiment import run

        run_dir, results = run(config)
    from robotcl.report import report

    print(f"run directory: {run_dir.path}")
    print(report([str(run_dir.path)]))
    print(f"tensorboard --logdir {run_dir.tb}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from robotcl.compare import compare

    items = list(args.items)
    source = items.pop(0) if items and "=" not in items[0] else None
    root = compare(source, items)
    print((root / "comparison.txt").read_text(), end="")
    print(f"comparison: {root}  (final_success.png, curves.png, return_curves.png)")
    print(f"tensorboard --logdir {root}")
    return 0


def _cmd_list(_: argparse.Namespace) -> int:
    import robotcl.agents  # noqa: F401
    import robotcl.strategies  # noqa: F401
    from robotcl.config import preset_names
    from robotcl.envs.suites import make_suite
    from robotcl.registry import AGENTS, STRATEGIES, SUITES

    print("suites:")
    for name in SUITES:
        suite = make_suite(name)
        print(f"  {name}: {len(suite)} tasks: {' '.join(suite.task_names)}")
        print(f"    gymnasium ids: {suite.tasks[0].env_id} ...")
    print("strategies: " + ", ".join(STRATEGIES))
    print("agents: " + ", ".join(AGENTS))
    print("presets: " + ", ".join(preset_names()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from robotcl.report import report

    print(report(args.runs))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robotcl.plots import save_curves
    from robotcl.report import read_results

    runs = [read_results(d) for d in args.runs]
    labels = [Path(d).name for d in args.runs]
    print(save_curves(runs, labels, args.out, metric=args.metric, mode=args.mode))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from robotcl.envs.render import suite_contact_sheet
    from robotcl.envs.suites import make_suite

    suite = make_suite(args.suite, args.order)
    out = args.out or f"{suite.name}.png"
    print(suite_contact_sheet(suite, out))
    return 0


COMMANDS = {
    "run": _cmd_run,
    "list": _cmd_list,
    "report": _cmd_report,
    "compare": _cmd_compare,
    "plot": _cmd_plot,
    "show": _cmd_show,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wants_help = any(a in ("-h", "--help") for a in argv)  # the key list imports every strategy
    args = _parser(with_config_help=wants_help).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserInputError as exc:
        print(f"robotcl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robotcl: interrupted; continue with: robotcl run --resume RUN_DIR", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
