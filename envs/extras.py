"""Optional dependencies (pip extras) of the environments."""

from __future__ import annotations

from robotcl.errors import UserInputError


class MissingExtra(UserInputError):
    """Something needs an optional dependency that is not installed (``robotcl[<extra>]``)."""
