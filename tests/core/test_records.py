"""A study outlives its machine: finished cells leave small records, a grid on a fresh clone
takes them as finished and runs only what is missing, and robotcl report rebuilds the study's
tables from the committed records alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from aim_task import SMALL, SUITE

from robotcl.cli import main
from robotcl.experiment import load_reference
from robotcl.metrics import cw_forward_transfer
from robotcl.study.records import EXPERT_DATA_FILE, RECORD_FILE, SUITE_FILE, record_key

COMMITTED = Path(__file__).parents[1] / "data" / "study-records"


@pytest.fixture
def aim(tmp_path) -> list[str]:
    suite = tmp_path / "aim.yaml"
    suite.write_text(SUITE)
    return [f"suite={suite}", f"runs_dir={tmp_path / 'runs'}", *SMALL]


def _records(folder: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob(f"*/{RECORD_FILE}")}


def test_a_study_stopped_part_way_goes_on_from_its_records_on_a_fresh_clone(aim, tmp_path, capsys):
    records = tmp_path / "records"
    grid = ["workers=0", f"records={records}"]
    # the first piece: finetune's two seeds (the study's other cells are not run yet)
    assert main(["compare", *aim, "strategies=[finetune]", "seeds=2", *grid]) == 0
    first = _records(records)
    moved = tmp_path / "aim.yaml"
    moved.rename(tmp_path / "elsewhere.yaml")  # the record's key does not need the suite file
    assert all(record_key(records / name) == r["key"] for name, r in first.items())
    (tmp_path / "elsewhere.yaml").rename(moved)
    assert sorted(r["label"] for r in first.values()) == ["finetune", "finetune"]
    kept = sorted(p.name for p in next(iter(records.iterdir())).iterdir())
    assert kept == [
        "config.yaml",
        "evaluations.jsonl",
        RECORD_FILE,
        "results.json",
        "scalars.json",
        SUITE_FILE,  # the run's suite file: its key hashes the file's content
    ]
    stamps = {p: p.stat().st_mtime_ns for p in records.glob("*/results.json")}
    # a fresh clone: the committed records, no runs directory
    shutil.rmtree(tmp_path / "runs")
    capsys.readouterr()
    # --dry-run: which cells are done (by their records) and which would run, how long by the
    # finished runs of the same strategy; nothing written
    assert main(["compare", *aim, "strategies=[finetune,ewc]", "seeds=3", *grid, "--dry-run"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:8]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("finetune", "0", "done"),
        ("finetune", "1", "done"),
        ("finetune", "2", "to"),
        ("ewc", "0", "to"),
        ("ewc", "1", "to"),
        ("ewc", "2", "to"),
    ]
    finetune = [json.loads(p.read_text())["wall_time_s"] for p in records.glob("*/results.json")]
    assert rows[2][4:] == [f"{np.mean(finetune) / 60:.0f}", "min"] and rows[3][4:] == ["-"]
    assert not (tmp_path / "runs").exists()
    assert main(["compare", *aim, "strategies=[finetune,ewc]", "seeds=2", *grid]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:4]}
    assert rows == {"finetune": "2", "ewc": "2"}  # every cell in the comparison
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # finetune not re-run
    (root,) = (tmp_path / "runs" / "quick").glob("compare-*")
    assert sorted(p.name for p in root.iterdir() if p.is_dir() and "-s" in p.name) == [
        "ewc-s0",
        "ewc-s1",
    ]
    assert sorted(r["label"] for r in _records(records).values()) == ["ewc"] * 2 + ["finetune"] * 2
    # once everything is recorded, the same piece again runs nothing
    shutil.rmtree(tmp_path / "runs")
    assert main(["compare", *aim, "strategies=[ewc]", "seeds=2", *grid]) == 0
    (root,) = (tmp_path / "runs" / "quick").glob("compare-*")
    assert not [p for p in root.iterdir() if p.name.startswith("ewc-s")]


def test_report_rebuilds_the_study_tables_from_committed_records(tmp_path, capsys):
    folder = tmp_path / "study"
    shutil.copytree(COMMITTED, folder)
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    results = {
        name: json.loads((folder / name / "results.json").read_text()) for name in _records(folder)
    }
    by_label: dict[str, list[dict]] = {}
    for name, r in results.items():
        by_label.setdefault(_records(folder)[name]["label"], []).append(r)
    lines = out.splitlines()
    # learnability: the single cells' success at the end of each task's own training
    singles = sorted(by_label["single"], key=lambda r: r["seed"])
    for j, task in enumerate(singles[0]["tasks"]):
        row = next(line.split() for line in lines if line.startswith(task + " "))
        finals = [r["R"]["deterministic"]["success"][j][j] for r in singles]
        assert row[1 : 1 + len(finals)] == [f"{v:.2f}" for v in finals]
        # and how many of the last 4 evaluations of the task's own training were at success
        lasts = []
        for r in singles:
            own = [
                v[j]
                for v, t in zip(
                    r["curves"]["deterministic"]["success"],
                    r["curves"]["training_task"],
                    strict=True,
                )
                if t == j
            ]
            lasts.append(f"{sum(v >= 0.8 for v in own[-4:])}/4")
        assert row[-len(singles) :] == lasts
    # the strategy table: ACC mean over seeds, and CW forward transfer against the single cells
    tasks = singles[0]["tasks"]
    reference = load_reference(
        [str(folder / n) for n in results if results[n] in singles], tasks, "deterministic"
    )
    for label in ("finetune", "ewc"):
        row = next(line for line in lines if line.startswith(label + " "))
        runs = by_label[label]
        acc = np.mean([r["metrics"]["acc"] for r in runs])
        fwt_auc = np.mean(
            [
                cw_forward_transfer(
                    r["curves"]["steps"],
                    r["curves"]["deterministic"]["success"],
                    r["bounds"],
                    reference,
                    r["curves"]["training_task"],
                )[0]
                for r in runs
            ]
        )
        cells = row.split()
        assert cells[1] == str(len(runs))
        assert cells[2] == f"{acc:+.3f}"
        assert f"{fwt_auc:+.3f}" in row
    study = json.loads((folder / "study.json").read_text())
    assert study["records"] == len(results)
    assert study["strategies"]["finetune"]["acc"]["n"] == 2
    for name in ("final_success", "matrices", "learnability", "curves", "return_curves"):
        assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_bad_records_folder_is_refused_before_anything_runs(aim, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["compare", *aim, "strategies=[finetune]", f"records={target}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records" in err[0] and "is a file" in err[0]
    assert not (tmp_path / "runs").exists()


def test_the_gap_shares_compare_s_records_and_on_a_fresh_clone_trains_nothing(
    aim, tmp_path, capsys
):
    records = tmp_path / "records"
    grid = ["strategies=[finetune]", "seeds=1", "workers=0", f"records={records}"]
    assert main(["compare", *aim, *grid]) == 0
    (rl_record,) = records.glob("finetune-s0-*")
    capsys.readouterr()
    gap = ["gap", *aim, *grid, "gap.epochs=5"]
    assert main(gap) == 0
    table = capsys.readouterr().out.split("gap: ")[0]
    root = next((tmp_path / "runs" / "quick").glob("gap-*"))
    assert not (root / "rl" / "finetune-s0").exists()  # the RL cell is compare's record
    assert (tmp_path / "runs" / "experts").is_dir()  # the supervised cell needed their data
    assert len(list(records.glob("gap-*.json"))) == 1
    assert len(_records(records)) == 2  # RL and SL
    stamps = {p: p.stat().st_mtime_ns for p in records.glob("*/results.json")}
    # a fresh clone: every cell has a record, so nothing is trained, not even the experts
    shutil.rmtree(tmp_path / "runs")
    # the supervised record keeps what its data was made of: its key without the data folder
    (sl_record,) = [p for p in records.glob("finetune-s0-*") if p != rl_record]
    assert json.loads((sl_record / EXPERT_DATA_FILE).read_text())["episodes"] == 6
    assert record_key(sl_record) == json.loads((sl_record / RECORD_FILE).read_text())["key"]
    assert not (rl_record / EXPERT_DATA_FILE).exists()
    assert main(gap) == 0
    assert capsys.readouterr().out.split("gap: ")[0] == table
    assert not (tmp_path / "runs" / "experts").exists()
    assert {p: p.stat().st_mtime_ns for p in records.glob("*/results.json")} == stamps
    assert rl_record.is_dir()


def test_the_report_keeps_the_gaps_supervised_records_out_of_the_strategy_table(tmp_path, capsys):
    import yaml

    folder = tmp_path / "study"
    shutil.copytree(COMMITTED, folder)
    # the gap's behaviour-cloning cell of ewc seed 0, beside the RL one (another key)
    sl = folder / "ewc-s0-sl00000000"
    shutil.copytree(folder / "ewc-s0-1015ea4972", sl)
    record = json.loads((sl / RECORD_FILE).read_text())
    (sl / RECORD_FILE).write_text(json.dumps({**record, "key": "sl00000000"}))
    config = yaml.safe_load((sl / "config.yaml").read_text())
    config["agent"]["name"] = "bc"
    (sl / "config.yaml").write_text(yaml.safe_dump(config))
    results = json.loads((sl / "results.json").read_text())
    results["metrics"]["acc"] = 0.125
    (sl / "results.json").write_text(json.dumps(results))
    rl_acc = json.loads((folder / "ewc-s0-1015ea4972" / "results.json").read_text())["metrics"]

    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    strategies, gap = out.split("\ngap: ")
    ewc = next(line.split() for line in strategies.splitlines() if line.startswith("ewc "))
    assert ewc[1] == "2"  # its two RL seeds, not the supervised cell
    rows = gap.splitlines()
    at = next(k for k, line in enumerate(rows) if line.startswith("ewc "))
    assert rows[at].split()[1:4] == ["SL", "1", "+0.125"]
    assert rows[at + 1].split()[:3] == ["RL", "1", f"{rl_acc['acc']:+.3f}"]  # seed 0 only
    assert not any(line.startswith("finetune ") for line in rows)  # no supervised cell
    study = json.loads((folder / "study.json").read_text())
    assert study["gap"]["ewc"]["sl_runs"] == 1 and study["records"] == 7
    assert (folder / "gap.png").read_bytes()[:4] == b"\x89PNG"


def test_the_report_refuses_two_records_of_one_cell_made_with_different_settings(tmp_path, capsys):
    folder = tmp_path / "study"
    shutil.copytree(COMMITTED, folder)
    twin = folder / "ewc-s0-0000000000"  # ewc seed 0 again, another key (other settings)
    shutil.copytree(folder / "ewc-s0-1015ea4972", twin)
    record = json.loads((twin / RECORD_FILE).read_text())
    (twin / RECORD_FILE).write_text(json.dumps({**record, "key": "0000000000"}))
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "two RL records of ewc seed 0" in err[0]
    assert "ewc-s0-0000000000" in err[0] and "ewc-s0-1015ea4972" in err[0]
    assert not (folder / "study.txt").exists()  # refused before anything is written
    shutil.rmtree(twin)
    assert main(["report", str(folder)]) == 0


def test_every_committed_record_keeps_the_key_that_the_code_gives_its_config():
    """Settings added to the code leave the keys of the study's records as they were (at their
    defaults), so a fresh clone still takes every committed cell as finished."""
    folders = sorted((COMMITTED.parents[2] / "docs" / "results").glob(f"*/*/{RECORD_FILE}"))
    folders += sorted(COMMITTED.glob(f"*/{RECORD_FILE}"))
    assert len(folders) >= 15
    for record in folders:
        assert record_key(record.parent) == json.loads(record.read_text())["key"], record


def test_reference_cells_in_pieces_make_one_learnability_table(aim, tmp_path, capsys):
    records = tmp_path / "records"
    grid = ["strategies=[single]", "seeds=2", "workers=0", f"records={records}"]
    # the suite's tasks in two pieces, the second task's piece first
    for task in ("minus", "plus"):
        assert main(["compare", *aim, *grid, f"tasks=[{task}]"]) == 0
    assert len(_records(records)) == 4
    for folder in records.iterdir():  # the minus piece's records read first
        if "minus" in (folder / "config.yaml").read_text():
            folder.rename(records / f"0-{folder.name}")
    (tmp_path / "aim.yaml").rename(tmp_path / "away.yaml")  # the order from the kept file
    capsys.readouterr()
    assert main(["report", str(records)]) == 0
    lines = capsys.readouterr().out.splitlines()
    (tmp_path / "away.yaml").rename(tmp_path / "aim.yaml")
    finals: dict[str, dict[int, float]] = {}
    for name, record in _records(records).items():
        results = json.loads((records / name / "results.json").read_text())
        (task,) = results["tasks"]
        finals.setdefault(task, {})[record["seed"]] = results["R"]["deterministic"]["success"][0][0]
    rows = [line.split() for line in lines if line.split()[:1] in (["plus"], ["minus"])]
    assert [row[0] for row in rows] == ["plus", "minus"]  # the suite's order
    for row in rows:
        assert row[1:3] == [f"{finals[row[0]][seed]:.2f}" for seed in (0, 1)]
    # each piece is a group of its own in the strategy table: no mean over different tasks
    groups = {line.split()[2]: line.split()[3] for line in lines if line.startswith("single @ ")}
    assert groups == {"plus": "2", "minus": "2"}
    assert (records / "learnability.png").read_bytes()[:4] == b"\x89PNG"
    # a seed that has not trained a task yet: study.json's lists stay a seed an entry
    (gone,) = [
        n
        for n, r in _records(records).items()
        if r["seed"] == 1 and "minus" in (records / n / "config.yaml").read_text()
    ]
    shutil.rmtree(records / gone)
    assert main(["report", str(records)]) == 0
    minus = json.loads((records / "study.json").read_text())["learnability"]["minus"]
    assert minus["final"][1] is None and minus["first_success_step"][1] is None
    assert len(minus["first_success_step"]) == 2
    # a piece that trains a task again for a seed would count that seed twice: refused
    assert main(["compare", *aim, *grid, "seeds=[0]", "tasks=[plus,minus]"]) == 0
    capsys.readouterr()
    assert main(["report", str(records)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "two RL records of single" in err[0] and "seed 0 on" in err[0]


def _acc_text(stats: dict, signed: bool = False) -> str:
    """A mean as the README's reference table prints it: two decimals, and the 90% interval
    from three runs on (below that, the number of runs)."""
    mean = f"{stats['mean']:+.2f}" if signed else f"{stats['mean']:.2f}"
    if stats["n"] < 3:
        return f"{mean} (n={stats['n']})"
    return f"{mean} [{stats['low']:.2f}, {stats['high']:.2f}]"


def test_the_readme_reference_table_is_the_committed_study():
    """Every ACC of the README's reference table is the one `robotcl report docs/results/study`
    wrote into study.json (RL: the strategy table; SL and RL-SL: the gap table), so a record
    added without the README following it fails here."""
    root = COMMITTED.parents[2]
    study = json.loads((root / "docs" / "results" / "study" / "study.json").read_text())
    section = (root / "README.md").read_text().split("## Reference results", 1)[1]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.split("\n## ", 1)[0].splitlines()
        if line.startswith("| ") and not line.startswith("| strategy")
    ]
    assert len(rows) >= 7
    checked = 0
    for name_cell, rl, sl, diff, *_ in rows:
        name = name_cell.split()[0]
        gap = study["gap"].get(name)
        expected = [
            _acc_text(study["strategies"][name]["acc"]),
            _acc_text(gap["sl"]["acc"]) if gap else "",
            _acc_text(gap["diff"]["acc"], signed=True) if gap else "",
        ]
        assert [rl, sl, diff] == expected, name
        checked += 1 + 2 * bool(gap)
    assert checked >= 15
