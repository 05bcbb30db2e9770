"""Stratified draws of a task's rows, fixed by a seed: whole-data splits, subsamples of given
splits, and the per-class shares sklearn refuses to draw (fewer rows than classes on a side).
Every impossible size is a one-line error naming the task and the parameter."""

from __future__ import annotations

import numpy as np

from ptbench.errors import PtbenchError


def apportion(n: int, counts: list[int]) -> list[int]:
    """``n`` split over groups in proportion to ``counts``: largest remainders, ties to the
    earlier group (one rule for every stratified draw ptbench makes itself)."""
    total = sum(counts)
    exact = [n * k / total for k in counts]
    out = [int(e) for e in exact]
    for i in sorted(range(len(counts)), key=lambda i: (out[i] - exact[i], i))[: n - sum(out)]:
        out[i] += 1
    return out


def stratified_split(
    y: np.ndarray, sizes: tuple[int, int, int], seed: int, name: str = "?"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices for train/val/test with per-class proportions kept, fixed by ``seed``."""
    idx = np.arange(len(y))
    n_train, n_val, n_test = sizes
    n_classes = len(np.unique(y))
    if min(n_val, n_test) < n_classes or n_val + n_test + n_classes > len(y):
        raise PtbenchError(
            f"task '{name}': val_size={n_val} and test_size={n_test} must each be at "
            f"least the {n_classes} classes and leave training data out of "
            f"{len(y)} examples"
        )
    if n_train < n_classes:
        raise PtbenchError(f"task '{name}': train_size={n_train} is below the {n_classes} classes")
    rest, test = _stratified(name, y, idx, n_test, seed, "test_size", "whole")
    train, val = _stratified(name, y, rest, n_val, seed, "val_size", "whole")
    if n_train < len(train):
        train = _stratified(name, y, train, len(train) - n_train, seed, "train_size", "whole")[0]
    return np.sort(train), np.sort(val), np.sort(test)


def subsample(name: str, y: np.ndarray, idx: np.ndarray, n: int, seed: int, param: str, what: str):
    """``n`` stratified rows of ``idx``, fixed by ``seed``; a clear error when impossible."""
    if n > len(idx):
        raise PtbenchError(f"task '{name}': {param}={n} but the {what} split has only {len(idx)} examples")
    if n < len(np.unique(y[idx])):
        raise PtbenchError(
            f"task '{name}': {param}={n} is below the {len(np.unique(y[idx]))} classes of the {what} split"
        )
    return idx if n == len(idx) else _stratified(name, y, idx, n, seed, param, what)[1]


def carve(name: str, y: np.ndarray, idx: np.ndarray, n: int, seed: int, param: str):
    """(the rest of ``idx``, ``n`` stratified rows carved out of it for val or test)."""
    if n >= len(idx):
        raise PtbenchError(
            f"task '{name}': {param}={n} leaves nothing of the given train split ({len(idx)} examples)"
        )
    classes = len(np.unique(y[idx]))
    if n < classes:  # a val or test without some classes, as the whole-pool split refuses too
        why = f"is below the {classes} classes of the given train split"
        raise PtbenchError(f"task '{name}': {param}={n} {why}")
    return _stratified(name, y, idx, n, seed, param, "given train")


def _stratified(name: str, y: np.ndarray, idx: np.ndarray, n: int, seed: int, param: str, what: str):
    """(the rest of ``idx``, ``n`` rows of it), stratified and fixed by ``seed``; sklearn's
    ValueErrors (a class with one example, a rest smaller than the classes) as one line."""
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(y[idx], return_counts=True)
    if counts.min() < 2:
        raise PtbenchError(
            f"task '{name}': {param}: a stratified split of the {what} data needs 2 examples of each "
            f"class; class index {int(classes[counts.argmin()])} has 1"
        )
    if n < len(classes):  # e.g. the 2 rows a train_size drops: sklearn refuses, draw them
        return _proportional(y, idx, n, seed)
    if len(idx) - n < len(classes):  # near all of it (149 of 151): sklearn refuses, draw the rest
        part, rest = _proportional(y, idx, len(idx) - n, seed)
        return rest, part
    try:
        rest, part = train_test_split(idx, test_size=n, stratify=y[idx], random_state=seed)
    except ValueError as err:
        raise PtbenchError(
            f"task '{name}': {param}={n}: cannot take a stratified sample of the {what} split ({err})"
        ) from None
    return np.sort(rest), np.sort(part)


def _proportional(y: np.ndarray, idx: np.ndarray, m: int, seed: int):
    """(the rest of ``idx``, ``m`` rows of it with each class's share by largest remainders)."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y[idx], return_counts=True)
    take = apportion(m, counts.tolist())
    part = np.concatenate(
        [rng.choice(idx[y[idx] == c], k, replace=False) for c, k in zip(classes, take, strict=True)]
    )
    return np.setdiff1d(idx, part), np.sort(part)  # setdiff1d sorts
