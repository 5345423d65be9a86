"""The one exception type for bad user input (config keys, names, files)."""

from __future__ import annotations

import sys


class UserInputError(ValueError):
    """Bad input from the user; the CLI prints it on one line and exits with code 2.

    The message reads ``<where>: <what is wrong>; <what is allowed>``.
    """

    def __init__(self, where: str, problem: str, allowed: str | None = None) -> None:
        self.where, self.problem, self.allowed = where, problem, allowed
        message = f"{where}: {problem}"
        if allowed:
            message += f"; {allowed}"
        super().__init__(message)


def warn(message: str) -> None:
    """A warning to the user, on one line: ``robotcl: warning: <message>``."""
    print(f"robotcl: warning: {message}", file=sys.stderr)


class RunStopped(RuntimeError):
    """A run that went wrong while training (a NaN loss, a full disk): the CLI prints one line,
    keeps the last checkpoint and exits with code 3."""

    def __init__(self, problem: str, run_dir: str | None = None) -> None:
        self.problem, self.run_dir = problem, run_dir
        super().__init__(problem)


class TrainingDiverged(RunStopped):
    """A loss or a parameter of the learner became NaN or infinite."""

    def __init__(self, step: int, what: str) -> None:
        self.step, self.what = step, what
        super().__init__(f"training diverged at env step {step}: {what} is not finite")
