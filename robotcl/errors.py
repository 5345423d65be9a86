"""The one exception type for bad user input (config keys, names, files)."""

from __future__ import annotations


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
