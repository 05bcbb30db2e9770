"""Users' own data, declared in a suite by path: image folders, CSV/JSONL text and audio
folders (Hugging Face datasets saved with ``save_to_disk``: ``tasks/hf_disk.py``).

Layouts: ``root/<class>/<file>``, or given splits ``root/{train,val,test}/<class>/<file>``
(val may be missing: it is then carved from train). Decoded media are cached once under
``$PTBENCH_DATA_DIR/decoded`` keyed by the files' paths, sizes and mtimes, so later loads (and
every epoch, which reads tensors in memory) do no decoding. Bad items are an error naming the
file (and line); with ``skip_bad: true`` they are skipped and counted, never silently dropped.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from ptbench.errors import PtbenchError, first_line
from ptbench.files import atomic_path
from ptbench.params import Param
from ptbench.tasks import TASKS
from ptbench.tasks.audio import read_clip
from ptbench.tasks.base import RATE, SPLIT_PARAMS, Above, TaskData, build_task, data_dir
from ptbench.tasks.rows import build_from_rows

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
AUDIO_EXT = (".wav", ".flac", ".ogg")
SPLITS = ("train", "val", "test")
# the names split folders and dataset splits go by: a "training/" folder read as a class made
# every image's label its split
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
COMMON = SPLIT_PARAMS | {
    "path": Param(str, "folder or file of the dataset"),
    "skip_bad": Param(bool, "skip unreadable items (counted and logged) instead of failing"),
}
SIZE = Param(int, "image side in pixels (default 32)", low=4)
CHANNELS = Param(int, "1 (grey) or 3 (RGB, default)", choices=(1, 3))


def _root(params: dict, task: str, folder: bool = True) -> Path:
    """``params.path``: a folder (images, audio, a saved dataset) or a file (text)."""
    if "path" not in params:
        raise PtbenchError(f"task '{task}': params.path is required")
    root = Path(params["path"]).expanduser()
    if not root.exists():
        raise PtbenchError(f"task '{task}': path {root} does not exist")
    if folder != root.is_dir():
        want = "a folder" if folder else "a CSV or JSONL file"
        raise PtbenchError(f"task '{task}': path {root} is not {want}")
    return root


def _class_files(folder: Path, exts: tuple[str, ...]) -> dict[str, list[Path]]:
    classes = sorted(d for d in folder.iterdir() if d.is_dir())
    if not classes:
        raise PtbenchError(f"{folder}: no class folders (expected {folder}/<class>/<file>)")
    out = {}
    for d in classes:
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in exts)
        if not files:
            raise PtbenchError(f"{d}: class folder has no {'/'.join(exts)} files")
        out[d.name] = files
    return out


def _split_folders(root: Path) -> dict[str, Path]:
    """The split folders of ``root`` by split (``training/`` is train), or none: class folders."""
    named = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in SPLIT_NAMES]
    if not any(SPLIT_NAMES[p.name.lower()] == "train" for p in named):
        return {}  # class folders, some perhaps named like a split (valid/ and invalid/)
    parts: dict[str, Path] = {}
    for d in named:
        split = SPLIT_NAMES[d.name.lower()]
        if split in parts:
            raise PtbenchError(f"{root}: both {parts[split].name}/ and {d.name}/ look like the {split} split")
        parts[split] = d
    return parts


def scan_folder(root: Path, exts: tuple[str, ...]):
    """Files, labels, class names, and given split indices (if the folder has split folders)."""
    parts = _split_folders(root)
    if parts:
        per_split = {s: _class_files(p, exts) for s, p in parts.items()}
        classes = sorted({c for m in per_split.values() for c in m})
        for s, m in per_split.items():
            if set(m) != set(classes):
                missing = sorted(set(classes) - set(m))
                raise PtbenchError(f"{parts[s]}: class folders missing: {', '.join(missing)}")
    else:
        per_split = {"all": _class_files(root, exts)}
        classes = sorted(per_split["all"])
    files, labels, given = [], [], {}
    for s, m in per_split.items():
        start = len(files)
        for c, fs in m.items():
            files += fs
            labels += [classes.index(c)] * len(fs)
        if s != "all":
            given[s] = np.arange(start, len(files))
    return files, np.array(labels, np.int64), classes, given


def decode_cached(
    kind: str, files: list[Path], decode: Callable[[Path], np.ndarray], params: dict
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every file once (cached on disk); returns arrays, kept indices, and bad files."""
    decode_params = {k: params[k] for k in sorted(params) if k not in SPLIT_PARAMS and k != "skip_bad"}
    # the decoder's revision: 2 applies EXIF orientation and scales 16-bit images (pil_array)
    h = hashlib.sha256(json.dumps({"revision": 2, **decode_params}, default=str).encode())
    for f in files:
        try:
            st = f.stat()
        except OSError:  # a broken link: decoding it fails, as a bad file (skip_bad) or one line
            h.update(f"{f}|missing".encode())
            continue
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    cache = data_dir() / "decoded" / f"{kind}-{h.hexdigest()[:16]}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            bad = [str(b) for b in z["bad"]]
            if bad and not params.get("skip_bad"):
                raise PtbenchError(f"{bad[0]}: cannot be decoded (cached result; set skip_bad)")
            return z["x"], z["keep"], bad
    xs, keep, bad = [], [], []
    for i, f in enumerate(files):
        try:
            xs.append(decode(f))
            keep.append(i)
        except Exception as err:
            if not params.get("skip_bad"):
                raise PtbenchError(f"{f}: cannot decode {kind} ({first_line(err, 120)})") from None
            bad.append(str(f))
    if not xs:  # a batch of substitutes for bad files can be all bad too: the caller asks again
        return np.zeros((0,)), np.zeros(0, np.int64), bad
    x, keep_arr = np.stack(xs), np.array(keep, np.int64)
    with atomic_path(cache) as tmp:
        np.savez(tmp, x=x, keep=keep_arr, bad=np.array(bad, dtype=str))
    return x, keep_arr, bad


def _defaults(n: int, n_classes: int) -> tuple[int, int]:
    """Val and test sizes when a user's data leaves them to ptbench: a tenth and a fifth, and at
    least one example per class (a stratified split needs it)."""
    return max(n_classes, n // 10), max(n_classes, n // 5)


def _finish(name: str, modality: str, classes, x, y, params, given, skipped: int) -> TaskData:
    """TaskData of inputs already in memory (texts, arrays)."""
    data = build_task(
        name, modality, classes, x, y, params, given=given, defaults=_defaults(len(y), len(classes))
    )
    if skipped:
        data.notes["skipped"] = skipped  # logged on every run as ptbench.data_skipped
    return data


def build_files(name: str, modality: str, classes, files: list[Path], y, given, params, decode) -> TaskData:
    """TaskData of media files: the splits are planned on the labels, then only the files they
    keep are decoded (once, cached): a 2,000-example train subsample decodes 2,000 files."""

    def load(rows: np.ndarray):
        x, keep, bad = decode_cached(modality, [files[i] for i in rows], decode, params)
        return x, keep, len(bad)

    return build_from_rows(name, modality, classes, y, params, load, given, _defaults(len(y), len(classes)))


def pil_array(im, mode: str, size: int) -> np.ndarray:
    """A PIL image as uint8 ``[C, H, W]``, resized bilinearly, with its EXIF orientation applied
    (a phone photo decoded sideways). 16-bit, 32-bit and float images are scaled to 8 bits
    first: PIL's convert clips them at 255, and a 16-bit microscopy image came out all white but
    its darkest pixels."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, np.float64)
        top = float(a.max()) if a.size else 0.0
        scale = 255.0 if im.mode == "F" and top <= 1.0 else (255.0 / top if top > 255 else 1.0)
        im = Image.fromarray(np.clip(np.round(a * scale), 0, 255).astype(np.uint8))
    arr = np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR), np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@TASKS.register(
    "image_folder",
    modality="image",
    classes="one per subfolder",
    source="params.path: <class>/<image> or {train,val,test}/<class>/<image>",
    sizes="yours",
    params=COMMON | {"size": SIZE, "channels": CHANNELS},
)
def image_folder(params: dict) -> TaskData:
    """Your images, one subfolder per class; decoded once (PIL) and cached."""
    from PIL import Image

    root = _root(params, "image_folder")
    size, mode = int(params.get("size", 32)), "L" if int(params.get("channels", 3)) == 1 else "RGB"
    files, y, classes, given = scan_folder(root, IMAGE_EXT)

    def decode(f: Path) -> np.ndarray:
        with Image.open(f) as im:
            return pil_array(im, mode, size)

    return build_files("image_folder", "image", classes, files, y, given, params, decode)


@TASKS.register(
    "audio_folder",
    modality="audio",
    classes="one per subfolder",
    source="params.path: <class>/<clip> (wav/flac/ogg, read with soundfile)",
    sizes="yours",
    params=COMMON | {"seconds": Above(float, "clip length after crop/pad (default 1)", low=0)},
)
def audio_folder(params: dict) -> TaskData:
    """Your audio clips, one subfolder per class; resampled to 16 kHz, cropped or padded."""
    root = _root(params, "audio_folder")
    n = int(float(params.get("seconds", 1.0)) * RATE)
    files, y, classes, given = scan_folder(root, AUDIO_EXT)
    decode = partial(read_clip, n=n)
    return build_files("audio_folder", "audio", classes, files, y, given, params, decode)


def _read_rows(path: Path, text_col: str, label_col: str, split_col: str | None):
    """(line number, row) per row of a CSV or JSONL file; a JSON error stands in for its row;
    a file that is not UTF-8 is an error naming its first undecodable line."""
    try:
        yield from _rows(path, text_col, label_col, split_col)
    except UnicodeDecodeError as err:
        raw = path.read_bytes()
        line = raw[: raw.find(err.object) + err.start].count(b"\n") + 1 if err.object in raw else "?"
        raise PtbenchError(
            f"{path}:{line}: not UTF-8 (byte 0x{err.object[err.start]:02x}); save it as UTF-8"
        ) from None


def _rows(path: Path, text_col: str, label_col: str, split_col: str | None):
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8-sig") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    yield line_no, err
                    continue
                yield line_no, row
        return
    with path.open(encoding="utf-8-sig", newline="") as f:  # a BOM (Excel) is not part of the header
        reader = csv.DictReader(f)
        missing = [c for c in (text_col, label_col, split_col) if c and c not in (reader.fieldnames or [])]
        if missing:
            raise PtbenchError(
                f"{path}:1: missing column(s) {', '.join(missing)} "
                f"(found: {', '.join(reader.fieldnames or [])})"
            )
        csv.field_size_limit(2**31 - 1)  # a long document is one field: the default stops at 131,072 chars
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as err:  # e.g. a NUL byte, an unclosed quote at the end
            raise PtbenchError(f"{path}:{reader.line_num}: {err}") from None


@TASKS.register(
    "text_file",
    modality="text",
    classes="from the label column (or params.classes)",
    source="params.path: a .csv (header row) or .jsonl file",
    sizes="yours",
    params=COMMON
    | {
        "text_column": Param(str, "column of the texts (default 'text')"),
        "label_column": Param(str, "column of the labels (default 'label')"),
        "split_column": Param(
            str, "optional column of train/val/test per row (validation, dev, … as folders)"
        ),
        "classes": Param(list, "declared class names; other labels are errors"),
    },
)
def text_file(params: dict) -> TaskData:
    """Your texts and labels from a CSV or JSONL file."""
    path = _root(params, "text_file", folder=False)
    tc, lc = params.get("text_column", "text"), params.get("label_column", "label")
    sc = params.get("split_column")
    declared = [str(c) for c in params["classes"]] if "classes" in params else None
    texts, labels, splits, bad = [], [], [], 0
    for line_no, row in _read_rows(path, tc, lc, sc):
        try:
            if isinstance(row, Exception):
                raise ValueError(f"not valid JSON: {row}")
            if not isinstance(row, dict) or row.get(tc) in (None, "") or row.get(lc) in (None, ""):
                raise ValueError(f"needs non-empty '{tc}' and '{lc}'")
            label = str(row[lc])
            if declared is not None and label not in declared:
                raise ValueError(f"label '{label}' is not one of the declared classes")
            raw = str(row.get(sc, "")) if sc else ""
            split = SPLIT_NAMES.get(raw.strip().lower(), "") if sc else ""  # as split folders: dev → val
            if sc and not split:
                raise ValueError(f"split '{raw}' is not train, val or test (or {', '.join(SPLIT_NAMES)})")
        except ValueError as err:
            if not params.get("skip_bad"):
                raise PtbenchError(f"{path}:{line_no}: {err}") from None
            bad += 1
            continue
        texts.append(str(row[tc]))
        labels.append(label)
        splits.append(split)
    classes = declared or sorted(set(labels))
    counts = {c: labels.count(c) for c in classes}
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise PtbenchError(f"{path}: class(es) with no examples: {', '.join(empty)}")
    y = np.array([classes.index(lab) for lab in labels], np.int64)
    given = {s: np.flatnonzero(np.array(splits) == s) for s in SPLITS} if sc else {}
    given = {s: idx for s, idx in given.items() if len(idx)}
    return _finish("text_file", "text", classes, texts, y, params, given, bad)
