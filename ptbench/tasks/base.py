"""Task data held in memory as tensors, with deterministic stratified splits and a content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class TaskData:
    """What a trial sees. Search trials only ever receive ``train`` and ``val``."""

    name: str
    modality: str
    classes: list[str]
    train: Split
    val: Split
    test: Split | None = None
    shifted: dict[str, Split] = field(default_factory=dict)
    split_hash: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def without_held_out(self) -> TaskData:
        """The view a hyperparameter-search trial gets: no test, no shifted sets."""
        return TaskData(
            self.name, self.modality, self.classes, self.train, self.val, None, {}, self.split_hash
        )


def stratified_split(
    y: np.ndarray, sizes: tuple[int, int, int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices for train/val/test with per-class proportions kept, fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    n_train, n_val, n_test = sizes
    rest, test = train_test_split(idx, test_size=n_test, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=seed)
    if n_train < len(train):
        train, _ = train_test_split(train, train_size=n_train, stratify=y[train], random_state=seed)
    return np.sort(train), np.sort(val), np.sort(test)


def content_hash(*arrays: np.ndarray | torch.Tensor | list) -> str:
    """sha256 over the bytes of the splits: changing the data or the split changes the hash."""
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, list):  # texts
            h.update("\x1f".join(map(str, a)).encode())
            continue
        a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def take(x: np.ndarray | list, idx: np.ndarray) -> torch.Tensor | list:
    """Rows ``idx`` of an array (as a tensor) or of a list of texts (as a list)."""
    if isinstance(x, list):
        return [x[i] for i in idx]
    return torch.from_numpy(np.ascontiguousarray(x[idx]))


def build_task(name: str, modality: str, classes: list[str], x, y: np.ndarray,
               params: dict, shifted: dict[str, tuple] | None = None,
               defaults: tuple[int, int] = (500, 1000)) -> TaskData:
    """Stratified train/val/test from ``split_seed``, optional shifted sets, and the split hash."""
    sizes = (params.get("train_size", 10**9), params.get("val_size", defaults[0]),
             params.get("test_size", defaults[1]))
    tr, va, te = stratified_split(y, sizes, params.get("split_seed", 0))
    t = torch.from_numpy
    data = TaskData(name, modality, classes,
                    train=Split(take(x, tr), t(y[tr])), val=Split(take(x, va), t(y[va])),
                    test=Split(take(x, te), t(y[te])))
    parts = [take(x, tr), y[tr], take(x, va), y[va], take(x, te), y[te]]
    rng = np.random.default_rng(params.get("split_seed", 0))
    for sname, (xs, ys) in (shifted or {}).items():
        n = min(params.get("shifted_size", 1000), len(ys))
        pick = np.sort(rng.choice(len(ys), n, replace=False))
        data.shifted[sname] = Split(take(xs, pick), t(ys[pick]))
        parts += [data.shifted[sname].x, ys[pick]]
    data.split_hash = content_hash(*parts)
    return data
