"""One cell run by whichever executor holds it (a local worker process, a Ray task, or the
study's own process): its references found, then started, or resumed from its checkpoint."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from robotcl.config import validate_config
from robotcl.experiment import resume, run, run_config
from robotcl.study.references import reference_runs


def _execute(config_data: dict[str, Any]) -> None:
    """Run one cell: resume its directory when it holds a stopped run, else start it."""
    run_dir = Path(config_data["run_dir"])
    if (run_dir / "config.yaml").is_file():
        resume(run_dir, reference_runs=reference_runs(run_config(run_dir)))
    else:
        config = validate_config(config_data)
        run(config, reference_runs=reference_runs(config))


def run_cell(config_data: dict[str, Any]) -> tuple[str, str | None]:
    """Run one cell; return (status, error) and leave the traceback in error.txt."""
    try:
        _execute(config_data)
    except KeyboardInterrupt:
        return "stopped", None
    except Exception as exc:  # report, do not lose the study
        run_dir = Path(config_data["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        return "failed", f"{type(exc).__name__}: {exc}"
    return "done", None
