"""Standard datasets from a local root or package, never downloaded: Debian's Fashion-MNIST,
torchvision datasets, Speech Commands in torchaudio's layout."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ptbench import optional
from ptbench.errors import PtbenchError, first_line
from ptbench.params import Param
from ptbench.tasks import TASKS
from ptbench.tasks.base import RATE, SPLIT_PARAMS, TaskData, build_task
from ptbench.tasks.own_data import COMMON, SPLITS, build_files


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST format), optionally gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


FASHION = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION = ("CIFAR10", "CIFAR100", "MNIST", "FashionMNIST")
FASHION_CLASSES = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
]


def _fashion_missing() -> str | None:
    if not optional.file(FASHION / "train-images-idx3-ubyte.gz"):
        return "install it with 'apt-get install dataset-fashion-mnist'"
    return None


@TASKS.register(
    "fashion_mnist",
    modality="image",
    classes=10,
    available=_fashion_missing,
    source="Debian dataset-fashion-mnist: /usr/share/datasets/fashion-mnist/*.gz",
    sizes="60,000 train + 10,000 test, 28×28 grey",
    params=SPLIT_PARAMS,
)
def fashion_mnist(params: dict) -> TaskData:
    """Fashion-MNIST (Zalando) from Debian's package; its own test split is kept."""
    missing = _fashion_missing()
    if missing:
        raise PtbenchError(f"task 'fashion_mnist': {missing}")
    xtr = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:, None]
    ytr = read_idx(FASHION / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = read_idx(FASHION / "t10k-images-idx3-ubyte.gz")[:, None]
    yte = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x, y = np.concatenate([xtr, xte]), np.concatenate([ytr, yte])
    given = {"train": np.arange(len(ytr)), "test": len(ytr) + np.arange(len(yte))}
    p = {"val_size": 1000, "train_size": 10000} | params
    return build_task("fashion_mnist", "image", FASHION_CLASSES, x, y, p, given=given)


@TASKS.register(
    "torchvision",
    modality="image",
    classes="the dataset's",
    source="params.dataset (CIFAR10, CIFAR100, MNIST, FashionMNIST) at params.root",
    sizes="the dataset's",
    params=SPLIT_PARAMS
    | {
        "dataset": Param(str, "which dataset", choices=TORCHVISION),
        "root": Param(str, "folder the dataset was downloaded to"),
    },
)
def torchvision_dataset(params: dict) -> TaskData:
    """A torchvision dataset already on disk (download=False: nothing is fetched)."""
    import torchvision.datasets as D

    name, root = params.get("dataset"), params.get("root")
    if name not in TORCHVISION or not root:
        raise PtbenchError(
            "task 'torchvision' needs params.dataset (CIFAR10, CIFAR100, MNIST, FashionMNIST) and params.root"
        )
    try:
        tr, te = (getattr(D, name)(root, train=t, download=False) for t in (True, False))
    except RuntimeError as err:
        raise PtbenchError(
            f"task 'torchvision': {name} not found under {root} ({first_line(err, 100)})"
        ) from None

    def arrays(ds):
        x = np.asarray(ds.data)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return x.astype(np.uint8), np.asarray(ds.targets, np.int64)

    (xtr, ytr), (xte, yte) = arrays(tr), arrays(te)
    x, y = np.concatenate([xtr, xte]), np.concatenate([ytr, yte])
    given = {"train": np.arange(len(ytr)), "test": len(ytr) + np.arange(len(yte))}
    p = {"val_size": max(1, min(5000, len(ytr) // 10))} | params
    return build_task(f"torchvision:{name}", "image", list(tr.classes), x, y, p, given=given)


@TASKS.register(
    "speech_commands",
    modality="audio",
    classes="the words (or params.classes)",
    source="params.root: a local Speech Commands copy (torchaudio's layout), never downloaded",
    sizes="the dataset's",
    params=SPLIT_PARAMS
    | {
        "root": Param(str, "folder holding SpeechCommands/speech_commands_v0.02"),
        "classes": Param(list, "subset of words, e.g. the ten digits"),
        "skip_bad": COMMON["skip_bad"],
    },
)
def speech_commands(params: dict) -> TaskData:
    """Speech Commands from a local root; its validation_list / testing_list define the splits."""
    import soundfile as sf

    root = Path(params.get("root", "")).expanduser()
    base = next(
        (
            p
            for p in (root / "SpeechCommands" / "speech_commands_v0.02", root)
            if (p / "testing_list.txt").is_file()
        ),
        None,
    )
    if base is None:
        raise PtbenchError(
            f"task 'speech_commands': no testing_list.txt under {root} "
            "(expected torchaudio's SpeechCommands/speech_commands_v0.02 layout)"
        )
    words = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("_"))
    classes = [str(c) for c in params.get("classes", words)]
    unknown = sorted(set(classes) - set(words))
    if unknown:
        raise PtbenchError(f"task 'speech_commands': no folder for class(es) {', '.join(unknown)}")
    lists = {
        s: set((base / f"{n}_list.txt").read_text().split())
        for s, n in (("val", "validation"), ("test", "testing"))
        if (base / f"{n}_list.txt").is_file()
    }
    files = [f for c in classes for f in sorted((base / c).glob("*.wav"))]
    y = np.array([classes.index(f.parent.name) for f in files], np.int64)
    rel = [f"{f.parent.name}/{f.name}" for f in files]

    def decode(f: Path) -> np.ndarray:
        wav, sr = sf.read(str(f), dtype="float32", always_2d=True)
        if sr != RATE:
            raise ValueError(f"sample rate {sr}, expected {RATE}")
        out = np.zeros(RATE, np.float32)
        out[: min(RATE, len(wav))] = wav[:RATE, 0]
        return out

    split = np.array(
        [
            "test" if r in lists.get("test", ()) else "val" if r in lists.get("val", ()) else "train"
            for r in rel
        ]
    )
    given = {s: np.flatnonzero(split == s) for s in SPLITS}
    return build_files("speech_commands", "audio", classes, files, y, given, params, decode)
