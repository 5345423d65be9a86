"""Name -> class registries for the pluggable parts (suites, learners, strategies, contrastive
objectives).

Third-party code registers either with the decorator (``@register_strategy("mine")``,
``@register_objective("mine")``) or through the Python entry-point groups ``robotcl.strategies``,
``robotcl.agents``, ``robotcl.ssl`` and ``robotcl.suites`` (a callable returning a Suite), loaded
on first use. An entry point that fails to load is kept as broken: listed by :attr:`broken`,
refused in one line naming it and its distribution when its name is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from robotcl.errors import UserInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of classes or factories, with an optional entry-point group."""

    def __init__(
        self,
        kind: str,
        entry_point_group: str | None = None,
        check: Callable[[str, T], None] | None = None,
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.check = check
        self._items: dict[str, T] = {}
        self._broken: dict[str, tuple[str, str]] = {}  # name -> (entry point, why)
        self._entry_points_loaded = entry_point_group is None

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """Register ``item`` under ``name`` (checked first); without ``item``, a decorator."""

        def add(obj: T) -> T:
            if self.check is not None:
                self.check(name, obj)
            self._items[name] = obj
            return obj

        return add if item is None else add(item)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._items:
                continue
            try:
                self.register(ep.name, ep.load())
            except Exception as exc:  # a broken plugin fails only when it is asked for
                dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown"
                why = (str(exc).strip().splitlines() or [""])[0]
                where = f"entry point {ep.name} = {ep.value} of distribution {dist}"
                self._broken[ep.name] = (where, f"{type(exc).__name__}: {why}")

    @property
    def broken(self) -> dict[str, str]:
        """Entry points that failed to load, by name: why (``ImportError: ...``)."""
        self._load_entry_points()
        return {name: why for name, (_, why) in sorted(self._broken.items())}

    def get(self, name: str) -> T:
        """Return the item called ``name``, or raise a one-line error listing what exists (or
        naming the entry point and distribution of a broken plugin)."""
        self._load_entry_points()
        if name in self._broken:
            where, why = self._broken[name]
            raise UserInputError(
                f"{self.kind} '{name}'",
                f"its {where} fails to load ({why})",
                f"fix or uninstall that distribution ({self.entry_point_group})",
            )
        if name not in self._items:
            raise UserInputError(
                f"{self.kind} '{name}'", "unknown name", f"known: {', '.join(sorted(self))}"
            )
        return self._items[name]

    def __getitem__(self, name: str) -> T:
        """``registry[name]``: the same as :meth:`get`."""
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is registered (a broken plugin's too: :meth:`get` explains it)."""
        self._load_entry_points()
        return name in self._items or name in self._broken

    def __iter__(self) -> Iterator[str]:
        """The usable names, sorted (not the broken plugins')."""
        self._load_entry_points()
        return iter(sorted(self._items))


def _check_learner(name: str, cls: Any) -> None:
    """A registered learner must have every member of the learner protocol."""
    from robotcl.learner import missing_members

    problems = missing_members(cls)
    if problems:
        lacks = [p for p in problems if ":" not in p]
        others = [p for p in problems if ":" in p]
        what = "; ".join(([f"it lacks {', '.join(lacks)}"] if lacks else []) + others)
        raise UserInputError(
            f"agent '{name}'",
            f"{getattr(cls, '__name__', cls)} is not a learner: {what}",
            "see robotcl.learner.Learner",
        )


def _check_objective(name: str, cls: Any) -> None:
    """A registered contrastive objective must be an SSLObjective with typed settings."""
    from robotcl.ssl.objective import ObjectiveSettings, SSLObjective

    settings = getattr(cls, "Settings", None)
    if not (
        isinstance(cls, type)
        and issubclass(cls, SSLObjective)
        and isinstance(settings, type)
        and issubclass(settings, ObjectiveSettings)
    ):
        raise UserInputError(
            f"objective '{name}'",
            f"{getattr(cls, '__name__', cls)} is not a contrastive objective",
            "subclass robotcl.ssl.SSLObjective, with Settings a robotcl.ssl.ObjectiveSettings",
        )


def _check_suite_factory(name: str, factory: Any) -> None:
    """A registered suite is a callable returning a Suite (robotcl.envs.suites.Suite)."""
    if not callable(factory):
        raise UserInputError(
            f"suite '{name}'",
            f"{factory!r} is not callable",
            "register a function returning a Suite",
        )


STRATEGIES: Registry = Registry("strategy", "robotcl.strategies")
AGENTS: Registry = Registry("agent", "robotcl.agents", check=_check_learner)
SUITES: Registry = Registry("suite", "robotcl.suites", check=_check_suite_factory)
OBJECTIVES: Registry = Registry("objective", "robotcl.ssl", check=_check_objective)


def register_strategy(name: str):
    """Decorator: make a :class:`~robotcl.strategies.base.Strategy` subclass usable by name."""
    return STRATEGIES.register(name)


def register_agent(name: str):
    """Decorator: make a learner class usable by name (``agent.name=...``)."""
    return AGENTS.register(name)


def register_objective(name: str):
    """Decorator: make a :class:`~robotcl.ssl.SSLObjective` subclass usable by name
    (``agent.encoder.objective=...``, its settings under ``agent.encoder.<name>``)."""
    return OBJECTIVES.register(name)
