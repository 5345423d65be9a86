"""The ``robotcl`` command: run, list, report, show."""

from __future__ import annotations

import argparse
import os
import sys

from robotcl.errors import RunStopped, UserInputError, warn

EXAMPLES = """examples:
  robotcl run                                   # the 'quick' preset
  robotcl run corl-gap seed=1 device=cuda
  robotcl run my.yaml agent.batch_size=256 eval.every_steps=5000
  robotcl run --resume runs/quick/dclaw10-finetune-s0-20261127-101500
  robotcl experts gap-quick                     # one single-task expert a task (cached)
  robotcl gap gap-quick                         # the same strategies by BC and by RL
  robotcl report runs/quick/*
  robotcl plot runs/quick/* --metric return --out curves.png
  robotcl show dclaw10 --out dclaw10.png

exit codes: 0 done; 1 a bug (traceback) or, for compare, some runs failed; 2 bad input (one
line, nothing written); 3 a run stopped (NaN loss, full disk; its last checkpoint is kept);
130 interrupted (Ctrl-C, SIGTERM or SIGHUP; resume with the printed command)
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
        "--dry-run",
        action="store_true",
        help="print the resolved config (with --resume: what it would resume) and exit; writes "
        "nothing",
    )
    cmp_ = sub.add_parser(
        "compare",
        help="grid of strategies x seeds on one suite, then one comparison",
        description="Run PRESET for every strategy and seed, then compare them. Grid keys: "
        "strategies=[a,b,[c,d]] (a list inside composes), seeds=N (0..N-1) or seeds=[3,4], "
        "workers=K (default: as many as fit the cores, memory and GPUs; 0 runs in this process), "
        "executor=ray [ray_address=ADDR] (every run a task on a Ray cluster). Other "
        "key=value items override the preset. Ctrl-C, SIGTERM or SIGHUP stop every run (each "
        "keeps its last checkpoint); --resume GRID_DIR continues them (with seeds= or strategies=, "
        "those asked for; the others wait) and with new seeds= or "
        "strategies= adds runs to the grid. robotcl report GRID_DIR ... combines grids.",
    )
    cmp_.add_argument("items", nargs="*", metavar="PRESET|config.yaml|key=value")
    cmp_.add_argument("--resume", metavar="GRID_DIR", help="continue or extend a grid")
    cmp_.add_argument(
        "--dry-run",
        action="store_true",
        help="list every cell: done (here or as a record) or to run, with how long the runs to "
        "come took before; writes nothing",
    )
    experts = sub.add_parser(
        "experts",
        help="single-task expert runs of every task of a preset, and their datasets",
        description="Train (or find in <runs_dir>/experts) one expert a task of PRESET: its "
        "agent on that task alone, cached by suite, task, agent settings, steps and "
        "experts.seed; then each expert's dataset (experts.episodes rollouts, experts.noise). "
        "Experts below experts.threshold are flagged. workers=K as for compare.",
    )
    experts.add_argument("items", nargs="*", metavar="PRESET|config.yaml|key=value")
    gap = sub.add_parser(
        "gap",
        help="the same strategies by behaviour cloning and by RL: the gap table",
        description="For every strategy and seed of PRESET: experts (robotcl experts), the "
        "supervised side (the bc agent on the experts' data) and the RL side (the preset), "
        "then one table of ACC, memory, BWT, forgetting and FWT for SL, RL and RL-SL with "
        "90% bootstrap intervals, a figure and TensorBoard. Grid keys as for compare "
        "(strategies=, seeds=, workers=, executor=); the same command again reuses every "
        "finished run.",
    )
    gap.add_argument("items", nargs="*", metavar="PRESET|config.yaml|key=value")
    sub.add_parser("list", help="suites, tasks, strategies, agents and presets")
    rep = sub.add_parser("report", help="metrics table of one or more runs")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    plot = sub.add_parser("plot", help="PNG of every task's success or return along the runs")
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR")
    plot.add_argument("--out", default="curves.png", help="PNG path (default: curves.png)")
    plot.add_argument("--metric", choices=["success", "return"], default="success")
    plot.add_argument("--mode", choices=["stochastic", "deterministic"], default="stochastic")
    plot.add_argument(
        "--scalars",
        nargs="+",
        metavar="TAG",
        help="training scalars instead (scalars.json or tb/ of each run; a TAG may end in *: "
        "--scalars 'train/ssl/*')",
    )
    plot.add_argument("--labels", nargs="+", help="one label a run (default: folder names)")
    show = sub.add_parser("show", help="write a PNG contact sheet of a suite's tasks")
    show.add_argument("suite")
    show.add_argument("--order", default="a")
    show.add_argument("--out", default=None, help="PNG path (default: SUITE.png)")
    show.add_argument(
        "--size",
        default="240",
        help="frame width and height in pixels (default 240; a pixel "
        "agent's pixels.size shows what it sees)",
    )
    return parser


def _announce(path: object) -> None:
    print(f"run directory: {path}", file=sys.stderr, flush=True)


def _cmd_run(args: argparse.Namespace) -> int:
    """robotcl run; SIGTERM and SIGHUP stop it as Ctrl-C does (the last task kept)."""
    import signal

    from robotcl.study.executors import handling_signals
    from robotcl.study.local_workers import interrupt

    with handling_signals(interrupt, signal.SIGTERM, signal.SIGHUP):
        return _run_or_resume(args)


def _run_or_resume(args: argparse.Namespace) -> int:
    from robotcl.config import load_config, unused_settings

    if args.resume:
        if args.items:
            raise UserInputError("run --resume", "takes no preset or overrides", "only RUN_DIR")
        from robotcl.experiment import resume, run_config
        from robotcl.study.cells import finished_results
        from robotcl.study.references import reference_runs

        config = run_config(args.resume)  # a broken config is refused, finished or not
        if finished_results(args.resume) is not None:  # left as it is, dry run or not
            print(f"robotcl: {args.resume} finished every task; nothing to resume", file=sys.stderr)
            return 0
        references = reference_runs(config)
        if args.dry_run:
            _, results = resume(args.resume, reference_runs=references, dry_run=True)
            print(_would_resume(args.resume, results))
            return 0
        run_dir, results = resume(args.resume, announce=_announce, reference_runs=references)
    else:
        source = None
        overrides = list(args.items)
        if overrides and "=" not in overrides[0]:
            source = overrides.pop(0)
        config = load_config(source, overrides)
        unused = unused_settings(config)
        if unused:
            warn(
                f"settings of strategies not in strategy={config.strategy} are ignored: "
                + ", ".join(f"{k}.*" for k in unused)
            )
        from robotcl.experiment import Experiment, run
        from robotcl.study.references import reference_runs

        references = reference_runs(config)
        if args.dry_run:
            import yaml

            from robotcl.outputs import RunDirectory

            experiment = Experiment(config, references)
            experiment.prepare()  # refuses what a real run refuses
            RunDirectory.check(config)
            print(yaml.safe_dump(config.model_dump(), sort_keys=False), end="")
            print(f"# tasks: [{', '.join(experiment.suite.task_names)}]")  # the order it trains
            return 0
        run_dir, results = run(config, announce=_announce, reference_runs=references)
    from robotcl.reporting.runs import report

    print(report([str(run_dir.path)]))  # the run directory was said when it was made
    print(f"tensorboard --logdir {run_dir.tb}")
    return 0


def _would_resume(path: str, results: dict) -> str:
    """What ``robotcl run --resume PATH`` would do from ``results`` (its last checkpoint's)."""
    done, tasks = results["completed_tasks"], results["tasks"]
    if done == len(tasks):
        return f"would resume {path}: every task trained, its metrics to write"
    left = len(tasks) - done
    inside = results.get("task_steps", 0)  # from a checkpoint inside that task
    where = f", from its step {inside:,}" if inside else ""
    return (
        f"would resume {path} at task {done + 1}/{len(tasks)} ({tasks[done]}){where}, "
        f"{left} task{'s' if left > 1 else ''} left"
    )


def _cmd_compare(args: argparse.Namespace) -> int:
    from robotcl.commands.compare import compare
    from robotcl.reporting.comparison import write_comparison
    from robotcl.study.executors import shielded
    from robotcl.study.grid import GridStopped

    source, items = _source_and_items(args.items)
    if args.resume and source:
        raise UserInputError("compare --resume", f"takes no preset ('{source}')", "only GRID_DIR")
    if args.dry_run:
        from robotcl.commands.compare import plan_text

        print(plan_text(source, items, args.resume))
        return 0
    try:
        root, cells = compare(source, items, resume_root=args.resume)
    except GridStopped as stop:
        with shielded():
            write_comparison(stop.root, stop.cells)
        lines = [f"  {c.label} seed {c.seed}: {c.run_dir}" for c in stop.stopped]
        print("robotcl: stopped runs (each keeps its last checkpoint):", file=sys.stderr)
        print("\n".join(lines), file=sys.stderr)
        print(
            f"robotcl: interrupted; continue with: robotcl compare --resume {stop.root}",
            file=sys.stderr,
        )
        return 130
    print(write_comparison(root, cells))
    failed = sum(c.status == "failed" for c in cells)
    print(f"comparison: {root}  (final_success.png, curves.png, return_curves.png)")
    print(f"tensorboard --logdir {root}")
    if failed:
        print(f"robotcl: error: compare: {failed} run(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0


def _source_and_items(items: list[str]) -> tuple[str | None, list[str]]:
    """A leading PRESET or config.yaml (None when the items start with key=value), and the
    rest."""
    items = list(items)
    return (items.pop(0) if items and "=" not in items[0] else None), items


def _cmd_experts(args: argparse.Namespace) -> int:
    from robotcl.commands.experts import dataset_of, train_experts
    from robotcl.config import load_config
    from robotcl.reporting.tables import experts_table

    source, items = _source_and_items(args.items)
    workers = [i for i in items if i.startswith("workers=")]
    items = [i for i in items if i not in workers]
    count = None
    if workers:
        raw = workers[-1].partition("=")[2]
        if not raw.isdigit():
            raise UserInputError(f"workers ({raw!r})", "not a non-negative integer", "e.g. 2")
        count = int(raw)
    config = load_config(source, items)
    try:
        experts = train_experts(config, count)
    except KeyboardInterrupt:
        print("robotcl: interrupted; the same command continues the experts", file=sys.stderr)
        return 130
    print(experts_table(experts, config.eval.metric))
    if any(e.success is None for e in experts):
        print("robotcl: error: experts: some did not finish (listed above)", file=sys.stderr)
        return 1
    import json

    settings = config.experts
    which = "successful episodes" if settings.successful_only else "episodes"
    print(f"datasets ({settings.episodes} {which}, action noise {settings.noise:g}):")
    for expert in experts:
        path = dataset_of(expert, settings)
        info = json.loads(path.with_suffix(".json").read_text())
        print(
            f"  {expert.task}: {info['transitions']} transitions, rollout success "
            f"{info['rollout_success']:.2f}: {path}"
        )
    return 0


def _cmd_gap(args: argparse.Namespace) -> int:
    from robotcl.commands.gap import GapStopped, gap
    from robotcl.reporting.gap import write_gap

    source, items = _source_and_items(args.items)
    try:
        root, failed = gap(source, items)
    except GapStopped as stop:
        where = f" ({stop.root})" if stop.root else ""
        print(
            f"robotcl: interrupted{where}; every run keeps its last checkpoint: the same "
            "robotcl gap command continues",
            file=sys.stderr,
        )
        return 130
    print(write_gap(root))
    print(f"gap: {root}  (gap.png, heldout_loss.png, sl-*/, rl/, expert_data/)")
    print(f"tensorboard --logdir {root}")
    if failed:
        print(f"robotcl: error: gap: {failed} run(s) failed (see sl-*/ and rl/)", file=sys.stderr)
        return 1
    return 0


def _cmd_list(_: argparse.Namespace) -> int:
    import robotcl.agents  # noqa: F401
    import robotcl.strategies  # noqa: F401
    from robotcl.config import preset_names
    from robotcl.envs.suites import make_suite
    from robotcl.registry import AGENTS, STRATEGIES, SUITES

    def names(registry) -> str:  # a plugin that fails to load is marked, not fatal
        return ", ".join([*registry, *(f"{n} (broken: {w})" for n, w in registry.broken.items())])

    print("suites:")
    for name in SUITES:
        try:
            suite = make_suite(name)
        except UserInputError as exc:  # an optional extra that is not installed
            print(f"  {name}: {exc.problem} ({exc.allowed})")
            continue
        print(f"  {name}: {len(suite)} tasks: {' '.join(suite.task_names)}")
        print(f"    gymnasium ids: {suite.tasks[0].env_id} ...")
    for name, why in SUITES.broken.items():
        print(f"  {name} (broken: {why})")
    print("strategies: " + names(STRATEGIES))
    print("agents: " + names(AGENTS))
    print("presets: " + ", ".join(preset_names()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from robotcl.reporting.runs import report

    print(report(args.runs))
    return 0


def check_figure_path(out: str, where: str = "--out") -> None:
    """Refuse, before any work, a figure path whose format matplotlib cannot write or whose
    folder is missing or read-only."""
    from pathlib import Path

    from matplotlib.figure import Figure

    from robotcl.outputs import check_writable

    path = Path(out)
    formats = sorted(Figure().canvas.get_supported_filetypes())
    if path.suffix.lstrip(".").lower() not in formats:
        raise UserInputError(
            f"{where} '{out}'",
            "unknown figure format",
            f"end it with one of .{', .'.join(formats)}",
        )
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UserInputError(f"{where} '{out}'", f"folder '{folder}' does not exist")
    check_writable(folder, where)


def _saving(out: str, save: object) -> int:
    """Run ``save()`` (which writes ``out``); an OS refusal becomes one line."""
    from pathlib import Path

    from robotcl.outputs import output_error

    try:
        print(save())  # type: ignore[operator]
    except OSError as exc:
        raise output_error("--out", Path(out), exc) from None
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robotcl.reporting.plots import save_curves, save_scalars, tag_matches
    from robotcl.reporting.runs import read_curves
    from robotcl.scalars import load_scalars

    check_figure_path(args.out)
    labels = args.labels or [Path(d).name for d in args.runs]
    if len(labels) != len(args.runs):
        raise UserInputError(
            "--labels", f"{len(labels)} labels for {len(args.runs)} runs", "one label a run"
        )
    if args.scalars:
        scalars = [load_scalars(d) for d in args.runs]
        if not any(tag_matches(run, tag) for run in scalars for tag in args.scalars):
            raise UserInputError(
                "--scalars", f"no run logged {' or '.join(args.scalars)}", "see the runs' tb/"
            )
        return _saving(args.out, lambda: save_scalars(scalars, labels, args.scalars, args.out))
    runs = [read_curves(d) for d in args.runs]  # a run not finished: its evaluations so far
    return _saving(
        args.out, lambda: save_curves(runs, labels, args.out, metric=args.metric, mode=args.mode)
    )


def _cmd_show(args: argparse.Namespace) -> int:
    from robotcl.envs.render import suite_contact_sheet
    from robotcl.envs.suites import make_suite

    if not args.size.isdigit() or not 16 <= int(args.size) <= 1024:
        raise UserInputError("--size", f"got {args.size!r}", "a whole number of pixels, 16..1024")
    suite = make_suite(args.suite, args.order)
    out = args.out or f"{suite.name}.png"
    check_figure_path(out)
    return _saving(out, lambda: suite_contact_sheet(suite, out, size=int(args.size)))


COMMANDS = {
    "run": _cmd_run,
    "list": _cmd_list,
    "report": _cmd_report,
    "compare": _cmd_compare,
    "experts": _cmd_experts,
    "gap": _cmd_gap,
    "plot": _cmd_plot,
    "show": _cmd_show,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering (pixels, videos, show)
    wants_help = any(a in ("-h", "--help") for a in argv)  # the key list imports every strategy
    parser = _parser(with_config_help=wants_help)
    args, extra = parser.parse_known_args(argv)
    # options and key=value items in any order: "run quick --dry-run tasks=[T0]"
    if extra and (not hasattr(args, "items") or any(a.startswith("-") for a in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.items = [*args.items, *extra]
    try:
        return COMMANDS[args.command](args)
    except UserInputError as exc:
        print(f"robotcl: error: {exc}", file=sys.stderr)
        return 2
    except RunStopped as exc:
        where = f"; the last checkpoint is kept: robotcl run --resume {exc.run_dir}"
        print(f"robotcl: stopped: {exc}{where if exc.run_dir else ''}", file=sys.stderr)
        return 3
    except KeyboardInterrupt as exc:
        run_dir = getattr(exc, "run_dir", None)
        hint = f"; continue with: robotcl run --resume {run_dir}" if run_dir else ""
        print(f"robotcl: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
