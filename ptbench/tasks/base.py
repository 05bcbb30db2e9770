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


def content_hash(*arrays: np.ndarray | torch.Tensor) -> str:
    """sha256 over the bytes of the splits: changing the data or the split changes the hash."""
    h = hashlib.sha256()
    for a in arrays:
        a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]
