"""Progressive neural networks (Rusu et al. 2016, arXiv:1606.04671): a new trunk column per task.

Each selected trunk (an MLP ``nn.Sequential`` of Linear/activation blocks, see
:func:`robotcl.agents.networks.make_trunk`) becomes a :class:`ProgressiveTrunk`: a list of
columns, one per task, each with the original trunk's layer structure. Column 0 is the learner's
own trunk (so task 0 trains exactly the network fine-tuning would); column k > 0 is freshly
initialised when task k starts. Rusu et al.'s lateral connections feed block l of column k, on
top of its own block l-1, the block l-1 outputs of every earlier column j < k:

    h_l^(k) = f(W_l^(k) h_(l-1)^(k) + U_l^(k) [h_(l-1)^(0), ..., h_(l-1)^(k-1)])

with one bias-free linear ``U_l^(k)`` on the concatenation, which equals the paper's sum of one
linear per earlier column (eq. 1; the non-linear adapters of their section 2 are left out). The
lateral is added to the block's pre-activation, before LayerNorm where there is one; block 0 has
none (every column reads the same input). When task k starts, every other column is frozen
(``requires_grad`` False, left out of the optimizers), so earlier tasks cannot be forgotten: acting
on task j computes columns 0..j only, exactly the network that was trained on task j. The trunk
has no task input: the strategy says which column is active (the training column, or the acted
task's inside :meth:`Progressive.acting`; tasks without a column yet use the newest one). The
output is the active column's last block, of the original width, so the per-task heads stay.

Parameter growth: a column has the trunk's own P parameters; column k adds k * S lateral weights,
S = sum over blocks l >= 1 of width_(l-1) * width_l. K columns hold K * P + K (K - 1) / 2 * S
parameters per trunk, and a forward pass on task k computes k + 1 columns. Continual World's
4 x 256 trunk (with LayerNorm) has P = 198,144 + 256 * inputs and S = 196,608: ten columns hold
10 P + 45 S, about 2.0M + 8.8M weights per trunk (the twin critics and their targets each grow
the same way), against P for the fine-tuned trunk.

The SAC target critic's trunks are grown with the critic's (the new column copied from the
critic's, as SB3 initialises the target), so polyak averaging still pairs parameters one to one
(the target's earlier columns keep converging to the critic's frozen ones; acting never uses them).
Rusu et al. grow the whole actor-critic (A3C) network, so both trunks are grown by default.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from robotcl.errors import UserInputError
from robotcl.registry import register_strategy
from robotcl.strategies.base import MemoryUsage, Strategy, StrategySettings

TrunkGroup = Literal["actor_trunk", "critic_trunk"]


class ProgressiveColumn(nn.Module):
    """One column: the trunk's blocks (Linear first in each) and the laterals into blocks 1..L-1."""

    def __init__(self, blocks: list[nn.Sequential], laterals: list[nn.Linear]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.laterals = nn.ModuleList(laterals)  # laterals[l - 1] feeds block l; empty: none


class ProgressiveTrunk(nn.Module):
    """Columns of one trunk's layer structure with lateral connections; see the module docs.

    ``active`` is the column whose output is returned; columns after it are not computed.
    """

    def __init__(self, trunk: nn.Sequential, lateral: bool = True) -> None:
        super().__init__()
        self.lateral = lateral
        self.columns = nn.ModuleList([ProgressiveColumn(_split_blocks(trunk), [])])
        self.active = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden: list[list[torch.Tensor]] = []  # hidden[j][l]: output of block l of column j
        for k in range(min(self.active, len(self.columns) - 1) + 1):
            column, h, outputs = self.columns[k], x, []
            for layer, block in enumerate(column.blocks):
                z = block[0](h)
                if layer > 0 and len(column.laterals):
                    earlier = torch.cat([hidden[j][layer - 1] for j in range(k)], dim=-1)
                    z = z + column.laterals[layer - 1](earlier)
                for module in block[1:]:
                    z = module(z)
                outputs.append(z)
                h = z
            hidden.append(outputs)
        return hidden[-1][-1] if hidden[-1] else x

    def add_column(self, init: bool = True) -> ProgressiveColumn:
        """Append a column of column 0's structure; ``init`` False draws no random numbers
        (its values are about to be loaded)."""
        k = len(self.columns)
        blocks = [copy.deepcopy(b) for b in self.columns[0].blocks]
        if init:
            for block in blocks:
                for module in block.modules():
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()
        laterals = []
        if self.lateral and k > 0:
            for prev, block in zip(blocks[:-1], blocks[1:], strict=True):
                w = block[0].weight
                kwargs = dict(bias=False, device=w.device, dtype=w.dtype)
                size = (k * prev[0].out_features, block[0].out_features)
                laterals.append(
                    nn.Linear(*size, **kwargs)
                    if init
                    else nn.utils.skip_init(nn.Linear, *size, **kwargs)
                )
        column = ProgressiveColumn(blocks, laterals)
        self.columns.append(column)
        return column

    def train_only(self, k: int) -> None:
        """Column ``k`` trainable, every other column frozen (stale gradients dropped)."""
        for j, column in enumerate(self.columns):
            column.requires_grad_(j == k)
            if j != k:
                for p in column.parameters():
                    p.grad = None


def _split_blocks(trunk: nn.Sequential) -> list[nn.Sequential]:
    """The trunk's own modules grouped into blocks, each a Linear and what follows it."""
    blocks: list[list[nn.Module]] = []
    for module in trunk:
        if isinstance(module, nn.Linear):
            blocks.append([module])
        elif blocks:
            blocks[-1].append(module)
        else:
            raise ValueError(f"progressive: a trunk must start with a Linear, not {module}")
    return [nn.Sequential(*b) for b in blocks]


class ProgressiveSettings(StrategySettings):
    """Progressive-network settings (Rusu et al. 2016)."""

    groups: list[TrunkGroup] | None = Field(
        None,
        description="trunks that grow a column per task; None: every trunk the learner offers "
        "(actor_trunk and critic_trunk for SAC, with the target critic's; actor_trunk for BC), "
        "as Rusu et al. grow the whole actor-critic network",
    )
    lateral: bool = Field(
        True,
        description="lateral connections from earlier columns (Rusu et al. 2016, eq. 1); "
        "false: independent frozen columns, no transfer",
    )


@register_strategy("progressive")
class Progressive(Strategy):
    """A trunk column per task, earlier columns frozen, laterals from them (no forgetting)."""

    name = "progressive"
    Settings = ProgressiveSettings
    settings: ProgressiveSettings
    needs = frozenset({"trunks"})

    def __init__(self, settings: ProgressiveSettings | None = None) -> None:
        super().__init__(settings)
        self.trunks: dict[str, ProgressiveTrunk] = {}
        self.mirrors: dict[str, str] = {}  # target critic trunk -> the critic trunk it follows
        self.training = 0
        self._pending: dict[str, Any] | None = None
        self._prepared: Any = None

    # -- life cycle -----------------------------------------------------------------------
    def setup(self, learner: Any, suite: Any) -> None:
        super().setup(learner, suite)
        if self._prepared is not learner:
            self.prepare(learner)

    def prepare(self, learner: Any) -> None:
        """Replace the learner's trunks by progressive ones and apply a loaded state.

        ``setup`` calls it; a loader that must shape a learner before loading its weights
        (SB3's learner.zip of a grown network) may call it first, and ``setup`` then keeps it.
        """
        self.learner, self._prepared = learner, learner
        self.trunks, self.mirrors = {}, {}
        for name, (owner, key), source in _slots(learner, self._groups(learner)):
            trunk = _get(owner, key)
            if not isinstance(trunk, ProgressiveTrunk):
                trunk = ProgressiveTrunk(trunk, self.settings.lateral)
                _set(owner, key, trunk)
            self.trunks[name] = trunk
            if source is not None:
                self.mirrors[name] = source
        self.training = next(iter(self.trunks.values())).active if self.trunks else 0
        if self._pending is not None:  # a checkpoint was loaded before setup
            self._apply_state(self._pending)
            self._pending = None

    def on_task_start(self, task_id: int) -> None:
        """Grow to a column for ``task_id``, train only it, rebuild the optimizers (a task that
        already has a column trains it again, which moves the inputs of later columns)."""
        grown = self._grow(task_id + 1, init=True)
        if grown or task_id != self.training:
            self.training = task_id
            self._activate(rebuild=True)

    # -- acting ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def acting(self, task_id: int) -> Iterator[None]:
        """Act through ``task_id``'s column (the newest where it has none yet)."""
        for trunk in self.trunks.values():
            trunk.active = min(task_id, len(trunk.columns) - 1)
        try:
            yield
        finally:
            for trunk in self.trunks.values():
                trunk.active = self.training

    # -- helpers --------------------------------------------------------------------------
    @property
    def num_columns(self) -> int:
        return len(next(iter(self.trunks.values())).columns) if self.trunks else 0

    def _groups(self, learner: Any) -> list[str]:
        available = learner.parameter_groups()
        groups = self.settings.groups
        if groups is None:
            return [g for g in ("actor_trunk", "critic_trunk") if g in available]
        unknown = [g for g in groups if g not in available]
        if unknown:
            raise UserInputError(
                "progressive.groups",
                f"the learner has no {unknown}",
                f"one of {[g for g in available if g.endswith('_trunk')]}",
            )
        return list(dict.fromkeys(groups))

    def _grow(self, columns: int, init: bool) -> bool:
        """Add columns until every trunk has ``columns``; target trunks copy the critic's."""
        grown = False
        while self.num_columns < columns:
            for name, trunk in self.trunks.items():
                if name not in self.mirrors:
                    trunk.add_column(init)
            for name, source in self.mirrors.items():
                self.trunks[name].columns.append(copy.deepcopy(self.trunks[source].columns[-1]))
            grown = True
        return grown

    def _activate(self, rebuild: bool) -> None:
        for trunk in self.trunks.values():
            trunk.active = self.training
            trunk.train_only(self.training)
        if rebuild:
            self._rebuild_optimizers()

    def _rebuild_optimizers(self) -> None:
        """Fresh optimizers over what the learner trained before, less frozen columns, plus the
        training column: ``reset_optimizers`` cannot do it (ContinualSAC's reuses the old
        parameter list, BCLearner's keeps frozen columns). Fresh state also keeps the heads of
        earlier tasks exact: their rows get zero gradient, which moves Adam by zero."""
        learner = self.learner
        trunk_params = {id(p) for t in self.trunks.values() for p in t.parameters()}
        for holder, module in learner.optimizer_holders():
            old = holder.optimizer
            before = {id(p) for g in old.param_groups for p in g["params"]}
            params = [
                p
                for p in module.parameters()
                if p.requires_grad and (id(p) in before or id(p) in trunk_params)
            ]
            new = type(old)(params, **old.defaults)
            new.param_groups[0]["lr"] = old.param_groups[0]["lr"]
            holder.optimizer = new

    # -- checkpoints ----------------------------------------------------------------------
    def memory_usage(self) -> MemoryUsage:
        """Every trunk's columns beyond the first (the one a plain learner has; later columns
        hold the laterals), the target critic's copies included."""
        extra = [p for t in self.trunks.values() for c in t.columns[1:] for p in c.parameters()]
        return MemoryUsage.of_values("columns", extra)

    def state_dict(self) -> dict[str, Any]:
        """The number of columns, the training column and every trunk's weights (all columns)."""
        if self._pending is not None:
            return self._pending
        return {
            "columns": self.num_columns,
            "training": self.training,
            "lateral": self.settings.lateral,
            "trunks": {
                name: {k: v.detach().clone() for k, v in trunk.state_dict().items()}
                for name, trunk in self.trunks.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.trunks:
            self._apply_state(state)
        else:  # the checkpoint loads the strategy before setup
            self._pending = state

    def _apply_state(self, state: dict[str, Any]) -> None:
        if set(state["trunks"]) != set(self.trunks) or state["lateral"] != self.settings.lateral:
            raise ValueError("progressive state does not match the learner's trunks or settings")
        if self.num_columns > state["columns"]:
            raise ValueError("progressive state has fewer columns than the learner already has")
        self._grow(state["columns"], init=False)  # draws no random numbers: resumes stay exact
        for name, trunk in self.trunks.items():
            trunk.load_state_dict(state["trunks"][name])
        self.training = int(state["training"])
        self._activate(rebuild=True)


def _slots(learner: Any, groups: list[str]) -> list[tuple[str, tuple[nn.Module, Any], Any]]:
    """(name, (owner, key), mirrored trunk or None) of every trunk in ``groups``, from the
    learner's ``trunk_slots``; checked against ``parameter_groups()`` so a learner's layout
    change cannot go unnoticed."""
    slots: list[tuple[str, tuple[nn.Module, Any], Any]] = []
    available = learner.parameter_groups()
    for group in groups:
        found = learner.trunk_slots(group)
        own = [slot for slot in found if slot[2] is None]
        ids = [id(p) for _, (o, k), _ in own for p in _get(o, k).parameters()]
        if ids != [id(p) for p in available[group]]:
            raise ValueError(f"progressive: cannot locate the modules of group {group}")
        slots += found
    return slots


def _get(owner: nn.Module, key: Any) -> nn.Module:
    return owner[key] if isinstance(key, int) else getattr(owner, key)


def _set(owner: nn.Module, key: Any, module: nn.Module) -> None:
    if isinstance(key, int):
        owner[key] = module
    else:
        setattr(owner, key, module)
