"""Small committed records of finished cells, so that a study outlives the machine it ran on.

A record is what a finished run's numbers can be rebuilt from, without checkpoints or event
files (a few tens of kilobytes)::

    <records>/<label>[-<order>]-s<seed>-<key>/
        config.yaml  results.json  evaluations.jsonl   copied from the run directory
        scalars.json                                    (where the run wrote it: training curves)
        suite.yaml          (a suite file's run) the suite file       the key hashes them, and
        expert_data.json    (a supervised cell's) what its expert     what they come from lives
                            data was made of                          on the machine that ran it
        record.json                                     key, key version, cell, robotcl, commit

A grid with ``records=<folder>`` (the ``study`` preset: ``docs/results/study``) takes a cell
whose key has a record there as finished (it runs only what is missing), and leaves a record of
every cell that finishes. ``robotcl report <folder>`` rebuilds every table and figure from them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import robotcl
from robotcl.config import validate_config
from robotcl.envs.suite_file import is_suite_file
from robotcl.errors import UserInputError
from robotcl.experiment import run_config
from robotcl.outputs import RunDirectory
from robotcl.study.cells import Cell, finished_results
from robotcl.study.keys import DATA_FILE, KEY_VERSION, result_settings, run_key, settings_key

RECORD_FILE = "record.json"
#: the files of a run directory a record keeps
KEPT = ("config.yaml", "results.json", "evaluations.jsonl", "scalars.json")
#: a supervised cell's ``data.json`` of its ``agent.expert_data`` folder, kept in its record
EXPERT_DATA_FILE = "expert_data.json"
#: the suite file of a run on one, kept in its record
SUITE_FILE = "suite.yaml"


def record_name(cell: Cell) -> str:
    """The record's folder name: the cell's label, order, seed and key."""
    order = f"-{cell.order}" if cell.order else ""
    return f"{cell.label}{order}-s{cell.seed}-{cell.key}"


def _commit() -> str | None:
    """The git commit of the robotcl source tree, where it is a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(robotcl.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip() if done.returncode == 0 else ""
    return commit or None


def check_records_folder(folder: str | Path) -> Path:
    """The records folder as an absolute path; a one-line error if it is a file or cannot be
    written."""
    from robotcl.outputs import check_writable

    path = Path(folder).absolute()
    if path.exists() and not path.is_dir():
        raise UserInputError(f"records '{folder}'", "is a file", "name a folder")
    check_writable(path, "records")
    return path


def index(folder: Path) -> dict[str, Path]:
    """The records in ``folder`` by key (a record of another key version is not indexed)."""
    out: dict[str, Path] = {}
    for path in sorted(folder.glob(f"*/{RECORD_FILE}")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (
            isinstance(record, dict)
            and record.get("key_version") == KEY_VERSION
            and finished_results(path.parent) is not None
        ):
            out[record["key"]] = path.parent
    return out


def export(cell: Cell, folder: Path) -> Path | None:
    """Leave a record of ``cell`` in ``folder``; None when it has not finished. The record
    appears whole or not at all (written aside, then renamed)."""
    run_dir = Path(cell.run_dir)
    if finished_results(run_dir) is None:
        return None
    if not cell.key:  # a cell of a grid made before cells carried their key
        cell.key = run_key(run_config(run_dir))
    target = folder / record_name(cell)
    if run_dir.absolute() == target.absolute() or (target / RECORD_FILE).is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{target.name}."))
    try:
        for name in KEPT:
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, staging / name)
        config = RunDirectory(run_dir).read_config()
        data = config.get("agent", {}).get("expert_data")
        if data and (Path(data) / DATA_FILE).is_file():
            shutil.copyfile(Path(data) / DATA_FILE, staging / EXPERT_DATA_FILE)
        if is_suite_file(config.get("suite", "")) and Path(config["suite"]).is_file():
            shutil.copyfile(config["suite"], staging / SUITE_FILE)
        record = {
            "key": cell.key,
            "key_version": KEY_VERSION,
            "label": cell.label,
            "seed": cell.seed,
            "order": cell.order,
            "robotcl": robotcl.__version__,
            "commit": _commit(),
            "run_dir": str(run_dir),
            "recorded": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        (staging / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n")
        os.chmod(staging, 0o777 & ~_umask())
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def record_key(record: str | Path) -> str:
    """The key that this robotcl gives the record's config, with the suite file and the expert
    data that the record kept (what the config names lives on the machine that ran it)."""
    folder = Path(record)
    config = RunDirectory(folder).read_config()
    if (folder / SUITE_FILE).is_file():
        config["suite"] = str(folder / SUITE_FILE)
    settings = result_settings(validate_config(config))
    if (folder / EXPERT_DATA_FILE).is_file():
        settings["agent"]["expert_data"] = json.loads((folder / EXPERT_DATA_FILE).read_text())
    return settings_key(settings)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_records(path: str | Path) -> bool:
    """A records folder (at least one ``*/record.json``)."""
    return Path(path).is_dir() and any(Path(path).glob(f"*/{RECORD_FILE}"))


def record_cells(folder: str | Path) -> list[Cell]:
    """Every finished record in ``folder`` as a done cell (run_dir: the record)."""
    cells = []
    for key, path in index(Path(folder)).items():
        record = json.loads((path / RECORD_FILE).read_text())
        cells.append(
            Cell(
                record["label"],
                int(record["seed"]),
                str(path),
                "cpu",
                status="done",
                order=record.get("order", ""),
                key=key,
            )
        )
    return cells
