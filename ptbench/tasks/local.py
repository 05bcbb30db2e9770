"""Standard datasets from a local root or package, never downloaded: Debian's Fashion-MNIST,
torchvision datasets, Speech Commands in torchaudio's layout, and Hugging Face datasets saved
with ``save_to_disk``."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ptbench import optional
from ptbench.errors import PtbenchError, first_line
from ptbench.params import Param
from ptbench.tasks import TASKS
from ptbench.tasks.base import RATE, SPLIT_PARAMS, TaskData, build_from_rows, build_task
from ptbench.tasks.user import CHANNELS, COMMON, SIZE, SPLITS, _defaults, _root, build_files


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


HF_SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}
MODALITIES = ("image", "text", "audio")


@TASKS.register(
    "hf_disk",
    modality="image, text or audio (params.modality)",
    modality_param="modality",
    classes="the label feature's names",
    source="params.path: a Hugging Face dataset saved with save_to_disk (no hub)",
    sizes="yours",
    params=COMMON
    | {
        "modality": Param(str, "what the input column holds (required)", choices=MODALITIES),
        "input_column": Param(str, "column of the inputs (default: the modality's name)"),
        "label_column": Param(str, "column of the labels (default 'label')"),
        "size": SIZE,
        "channels": CHANNELS,
    },
)
def hf_disk(params: dict) -> TaskData:
    """A Hugging Face dataset from disk (datasets.load_from_disk); its own splits are kept."""
    modality = params.get("modality")
    if modality not in MODALITIES:
        raise PtbenchError(f"task 'hf_disk' needs params.modality: one of {', '.join(MODALITIES)}")
    unused = [k for k in ("size", "channels") if k in params and modality != "image"]
    if unused:  # a parameter that would do nothing is refused, never silently ignored
        raise PtbenchError(f"task 'hf_disk': params.{unused[0]} applies to image data, not {modality}")
    parts, root = _hf_parts(params)
    col, lab = params.get("input_column", modality), params.get("label_column", "label")
    first = next(iter(parts.values()))
    for c in (col, lab):
        if c not in first.column_names:
            raise PtbenchError(f"{root}: no column '{c}' (columns: {', '.join(first.column_names)})")
    classes, y, given, skipped = _hf_labels(parts, lab, root, bool(params.get("skip_bad")))

    def load(rows: np.ndarray):  # decode only the rows the splits keep
        xs, start = [], 0
        for split, part in parts.items():
            local = rows[(rows >= start) & (rows < start + len(part))] - start
            try:
                xs += _hf_inputs(part.select(local)[col], modality, params) if len(local) else []
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
                raise PtbenchError(
                    f"{root} [{split}]: cannot read '{col}' ({first_line(err, 120)})"
                ) from None
            start += len(part)
        return (xs if modality == "text" else np.stack(xs)), np.arange(len(rows)), skipped

    return build_from_rows(
        "hf_disk", modality, classes, y, params, load, given, _defaults(len(y), len(classes))
    )


def _hf_parts(params: dict):
    """The dataset's splits by ptbench's names (train/val/test), or all of it as one pool."""
    try:
        import datasets
    except ImportError:
        raise PtbenchError("task 'hf_disk' needs 'pip install datasets'") from None
    root = _root(params, "hf_disk")
    try:
        ds = datasets.load_from_disk(str(root))
    except Exception as err:
        raise PtbenchError(
            f"{root}: not a dataset saved with save_to_disk ({first_line(err, 120)})"
        ) from None
    if not isinstance(ds, datasets.DatasetDict):
        return {"all": ds}, root
    known = {HF_SPLITS[s]: part for s, part in ds.items() if s in HF_SPLITS}
    return (known or dict(ds)), root


def _hf_labels(parts: dict, lab: str, root: Path, skip_bad: bool):
    """Classes, labels of every row, given split indices, and rows skipped as unlabelled."""
    feature = next(iter(parts.values())).features[lab]
    names = getattr(feature, "names", None)
    classes = list(names or sorted({str(v) for p in parts.values() for v in p[lab] if v is not None}))
    ys, given, pool, start, skipped = [], {}, [], 0, 0
    for split, part in parts.items():
        keep = []
        for i, v in enumerate(part[lab]):
            ok = (isinstance(v, int) and 0 <= v < len(classes)) if names else v is not None
            if not ok and not skip_bad:  # e.g. -1: how the hub marks an unlabelled test split
                raise PtbenchError(f"{root} [{split}] row {i}: label {v!r} is not a class (set skip_bad)")
            skipped += not ok
            ys.append((v if names else classes.index(str(v))) if ok else -1)
            keep += [start + i] if ok else []
        if split in SPLITS:
            given[split] = np.array(keep, np.int64)
        else:  # a dataset without train/val/test splits: one pool
            pool += keep
        start += len(part)
    if pool and skipped:
        given = {"train": np.array(pool, np.int64)}  # the pool, less the unlabelled rows
    return classes, np.array(ys, np.int64), given, skipped


def _hf_inputs(values, modality: str, params: dict) -> list:
    if modality == "text":
        return [str(v) for v in values]
    if modality == "image":
        size, mode = int(params.get("size", 32)), "L" if int(params.get("channels", 3)) == 1 else "RGB"
        out = []
        for im in values:
            arr = np.asarray(im.convert(mode).resize((size, size)), np.uint8)
            out.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
        return out
    from ptbench.tasks.audio import fit_clip

    return [fit_clip(a["array"], a["sampling_rate"]) for a in values]
