"""Pools that are costly to decode (image and audio folders, datasets on disk): the splits are
planned on the labels alone, then only the rows they keep are decoded (2,000 of 67,000, say).
Why apart from ``base.build_task``: a row can fail to decode, and whether a train row copies a
val or test input is known only once both are decoded — each replaced by a spare row, decoded in
its turn, until the plan holds only readable rows and no copies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ptbench.errors import PtbenchError
from ptbench.tasks.base import Spares, TaskData, assemble, check_train_classes, plan_splits
from ptbench.tasks.copies import input_key


def build_from_rows(
    name: str,
    modality: str,
    classes: list[str],
    y: np.ndarray,
    params: dict,
    load: Callable[[np.ndarray], tuple],
    given: dict[str, np.ndarray] | None = None,
    defaults: tuple[int, int] = (500, 1000),
) -> TaskData:
    """Like ``build_task`` for inputs that are costly to decode. ``load(rows)`` returns (inputs,
    positions in ``rows`` that decoded, number skipped as bad). A row that fails to decode is
    replaced in its split by an unused row of the same class and the same given split, in an
    order fixed by ``split_seed``: dropping it broke ``shots: k`` (k - 2 examples of a class) and
    could empty a class of val, and planning again drew mostly other rows (ten times the
    decoding at 1 % bad files). A train row whose input equals a val or test input is replaced
    the same way (``tasks.copies``: a folder holding one photo twice trained on a test image)."""
    plan = _RowPlan(name, classes, y, params, given, defaults, load)
    plan.decode()
    while plan.drop_copies():
        plan.decode()
    plan.check_classes(classes)
    if plan.copies and not len(plan.planned[0]):
        raise PtbenchError(f"task '{name}': every train example is a copy of a val or test input")
    rows = np.unique(np.concatenate(plan.planned))
    xs = [plan.decoded[i] for i in rows.tolist()]
    splits = tuple(np.searchsorted(rows, np.sort(p)) for p in plan.planned)
    data = assemble(name, modality, classes, xs if plan.texts else np.stack(xs), y[rows], splits, params)
    if plan.skipped:
        data.notes["skipped"] = plan.skipped  # logged on every run as ptbench.data_skipped
    if plan.copies:
        data.notes["train_copies"] = len(plan.copies)  # logged as ptbench.data_train_copies
    return data


class _RowPlan:
    """The planned rows (train, val, test), what of them is decoded, and the spares."""

    def __init__(self, name: str, classes, y: np.ndarray, params: dict, given, defaults, load) -> None:
        self.name, self.y, self.params, self.load = name, y, params, load
        self.given, self.defaults = given, defaults
        self.seed = int(params.get("split_seed", 0))
        self.planned = [np.asarray(p, np.int64) for p in plan_splits(name, y, params, given, defaults)]
        check_train_classes(name, classes, y, self.planned)
        self.classes = set(y[np.concatenate(self.planned)].tolist())  # those the plan holds
        self.spare = Spares(y, self.planned, given, self.seed)
        self.decoded: dict[int, object] = {}
        self.bad: set[int] = set()
        self.copies: set[int] = set()
        self.skipped, self.texts = 0, False

    def decode(self) -> None:
        """Decode every planned row not decoded yet; a bad one is replaced by a spare."""
        todo = self._todo()
        while len(todo):
            x, ok, n_bad = self.load(todo)
            ok, self.skipped = np.asarray(ok, np.int64), self.skipped + n_bad
            self.texts = isinstance(x, list) if len(ok) else self.texts
            self.decoded.update(zip(todo[ok].tolist(), x, strict=True))
            self.bad |= set(np.setdiff1d(todo, todo[ok]).tolist())
            if len(self.bad) == len(self.y):
                raise PtbenchError(
                    f"task '{self.name}': none of its {len(self.y)} items could be read (all skipped as bad)"
                )
            self.planned = [
                np.array([self.spare.instead_of(r) if r in self.bad else r for r in p], np.int64)
                for p in self.planned
            ]
            if any((p < 0).any() for p in self.planned):  # a class's spares ran out: the plan used
                self._replan()  # (nearly) every row, so planning again decodes (nearly) nothing new
            todo = self._todo()

    def _replan(self) -> None:
        """``plan_splits`` over the rows not known bad, with spares drawn afresh from what that
        plan leaves (the old pool held rows the new plan uses, and bad ones)."""
        bad = np.array(sorted(self.bad), np.int64)
        good = np.setdiff1d(np.arange(len(self.y)), bad)
        given = {s: np.searchsorted(good, i[np.isin(i, good)]) for s, i in (self.given or {}).items()}
        planned = plan_splits(self.name, self.y[good], self.params, given or None, self.defaults)
        self.planned = [good[p] for p in planned]
        self.spare = Spares(self.y, self.planned, self.given, self.seed, exclude=self.bad)

    def _todo(self) -> np.ndarray:
        todo = np.unique(np.concatenate(self.planned))
        return todo[~np.isin(todo, np.fromiter(self.decoded, np.int64, len(self.decoded)))]

    def drop_copies(self) -> bool:
        """Replace each train row whose input equals a val or test input by a spare (dropped
        when none is left); True when the plan changed (the spares must be decoded)."""
        tr, va, te = self.planned
        held = {input_key(self.decoded[r]) for r in np.concatenate([va, te]).tolist()}
        dup = {r for r in tr.tolist() if input_key(self.decoded[r]) in held}
        if not dup:
            return False
        self.copies |= dup
        kept = [r for r in tr.tolist() if r not in dup]
        kept += [s for s in (self.spare.instead_of(r) for r in sorted(dup)) if s >= 0]
        self.planned[0] = np.array(sorted(kept), np.int64)
        return True

    def check_classes(self, classes: list[str]) -> None:
        """A class whose every train row failed to decode (or copied a held-out input) is an
        error, not a class the model never sees (the replan silently dropped it)."""
        lost = sorted(c for c in self.classes - set(self.y[self.planned[0]].tolist()) if c >= 0)
        if lost and (self.bad or self.copies):
            names = ", ".join(f"'{classes[c]}'" for c in lost)
            raise PtbenchError(
                f"task '{self.name}': class {names} has no train example left ({len(self.bad)} "
                f"item(s) unreadable, {len(self.copies)} a copy of a val or test input)"
            )
