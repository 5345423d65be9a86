"""Task orders: a suite's named orders, explicit lists, and seeded permutations.

An order is one of: a name the suite defines (dclaw10: a, b, c; a suite file: ``a`` is the order
it lists, plus its ``orders:``), an explicit list of all the suite's task names, or
``shuffle:I``, the permutation of the suite's first order that numpy's generator seeded with I
draws (the same on every machine). ``random:K`` stands for K orders, ``shuffle:0`` to
``shuffle:K-1``: ``robotcl compare`` sweeps them; a run takes one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from robotcl.errors import UserInputError

SHUFFLE = re.compile(r"shuffle:(\d+)")
RANDOM = re.compile(r"random:(\d+)")


def order_names(
    order: str | list[str], names: list[str], named: dict[str, Any], suite: str
) -> list[str]:
    """The task names of ``suite`` (first order: ``names``) in ``order``."""
    named = {"a": tuple(names), **named}
    if isinstance(order, list):
        if sorted(order) != sorted(names):
            missing = [n for n in names if n not in order]
            extra = [n for n in order if n not in names or order.count(n) > 1]
            raise UserInputError(
                "order",
                f"{order} is not an order of all {suite}'s tasks (missing {missing}, "
                f"unknown or repeated {sorted(set(extra))})",
                "list every task once; tasks=[...] picks a subset",
            )
        return list(order)
    shuffle = SHUFFLE.fullmatch(order)
    if shuffle:
        permutation = np.random.default_rng(int(shuffle[1])).permutation(len(names))
        return [names[i] for i in permutation]
    several = RANDOM.fullmatch(order)
    if several:
        k = int(several[1])
        raise UserInputError(
            "order",
            f"'{order}' is {k} orders (shuffle:0 .. shuffle:{k - 1})",
            "robotcl compare sweeps them; a run takes one, e.g. order=shuffle:0",
        )
    if order in named:
        return list(named[order])
    raise UserInputError(
        "order",
        f"unknown order '{order}' for {suite}",
        f"one of {', '.join(named)}, a list of its tasks, or shuffle:I",
    )


def expand_orders(value: Any) -> list[str | list[str]]:
    """``robotcl compare``'s ``orders=``: ``random:K`` (K seeded permutations), one order name,
    or a list of orders (names, ``shuffle:I``, explicit lists of task names)."""
    if isinstance(value, str):
        several = RANDOM.fullmatch(value)
        if several:
            if int(several[1]) < 1:
                raise UserInputError("orders", f"'{value}' names no order", "random:K with K >= 1")
            return [f"shuffle:{i}" for i in range(int(several[1]))]
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, (str, list)) for v in value):
        return list(value)
    raise UserInputError(
        "orders",
        f"{value!r} is not a list of orders",
        "e.g. orders=[a,b,c], orders=random:5, or orders=[a,[T3,T1,T2]]",
    )


def order_label(order: str | list[str]) -> str:
    """A short name for an order, for run directories and tables: ``b``, ``shuffle3``, or for an
    explicit list ``list-`` and a digest of it."""
    if isinstance(order, list):
        return "list-" + hashlib.sha1(",".join(order).encode()).hexdigest()[:6]
    return order.replace(":", "")
