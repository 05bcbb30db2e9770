"""No exact copy of a validation or test example trains: a copy in train turns a held-out
example into a memorised one (Rotten Tomatoes holds three sentences twice; users' CSVs and
folders often hold more). The held-out splits stay as drawn; a train copy is replaced by an
unused row of its class and given split when the pool has one, else dropped, and the count is
kept in the task's notes (logged on every run as ``ptbench.data_train_copies``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def input_key(item) -> object:
    """What makes two inputs the same: the text, or the array's bytes."""
    return item if isinstance(item, str) else np.ascontiguousarray(item).tobytes()


def row_key(x) -> Callable[[int], object]:
    """What makes two rows of ``x`` the same input (``input_key`` of each)."""
    return lambda i: input_key(x[i])


def drop_train_copies(
    x, splits: tuple[np.ndarray, np.ndarray, np.ndarray], spares: Callable[[], object]
) -> tuple[tuple, int]:
    """``splits`` with every train row whose input equals a val or test input replaced by a
    spare (``spares().instead_of(row)`` → an unused row of its class, or -1) that is no copy
    itself, or dropped when none is left; and the number of train rows that were copies."""
    tr, va, te = splits
    key = row_key(x)
    held = {key(int(i)) for i in np.concatenate([va, te])}
    copies = [int(r) for r in tr if key(int(r)) in held]
    if not copies:
        return splits, 0
    keep, pool = set(tr.tolist()) - set(copies), spares()
    for r in copies:
        while (s := pool.instead_of(r)) >= 0 and key(s) in held:
            pass
        if s >= 0:
            keep.add(s)
    return (np.array(sorted(keep), np.int64), va, te), len(copies)
