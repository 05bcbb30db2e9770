"""Hugging Face datasets saved with ``save_to_disk`` as a task: their own splits kept, their
label feature's names as classes, images, texts or audio from one column (``params.modality``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptbench.errors import PtbenchError, first_line
from ptbench.params import Param
from ptbench.tasks import TASKS
from ptbench.tasks.base import TaskData
from ptbench.tasks.own_data import CHANNELS, COMMON, SIZE, SPLIT_NAMES, SPLITS, _defaults, _root, pil_array
from ptbench.tasks.rows import build_from_rows

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
    for split, part in parts.items():  # every split: a test split without labels was a KeyError
        for c in (col, lab):
            if c not in part.column_names:
                have = ", ".join(part.column_names)
                raise PtbenchError(f"{root} [{split}]: no column '{c}' (columns: {have})")
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
        return (xs if modality == "text" else np.stack(xs)), np.arange(len(rows)), 0

    defaults = _defaults(len(y), len(classes))
    data = build_from_rows("hf_disk", modality, classes, y, params, load, given, defaults)
    if skipped:  # unlabelled rows, counted once (load runs again for each batch of spares)
        data.notes["skipped"] = skipped  # logged on every run as ptbench.data_skipped
    return data


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
    known, named = {}, {}
    for s, part in ds.items():
        if s in SPLIT_NAMES:
            ours = SPLIT_NAMES[s]
            if ours in known:  # 'validation' and 'valid': the last one silently replaced the first
                raise PtbenchError(f"{root}: splits '{named[ours]}' and '{s}' are both {ours}: keep one")
            known[ours], named[ours] = part, s
    return (known or dict(ds)), root


def _hf_labels(parts: dict, lab: str, root: Path, skip_bad: bool):
    """Classes, labels of every row, given split indices, and rows skipped as unlabelled."""
    names = _names(parts.get("train", next(iter(parts.values()))), lab)
    classes = list(names or sorted({str(v) for p in parts.values() for v in p[lab] if v is not None}))
    ys, given, pool, start, skipped = [], {}, [], 0, 0
    for split, part in parts.items():
        keep, own = [], _names(part, lab) or names
        if names and set(own) - set(names):
            raise PtbenchError(
                f"{root} [{split}]: label names {sorted(set(own) - set(names))} are not in the "
                f"train split's ({', '.join(names)})"
            )
        index = {c: k for k, c in enumerate(classes)}
        for i, v in enumerate(part[lab]):
            ok = (isinstance(v, int) and 0 <= v < len(own)) if names else v is not None
            if not ok and not skip_bad:  # e.g. -1: how the hub marks an unlabelled test split
                raise PtbenchError(f"{root} [{split}] row {i}: label {v!r} is not a class (set skip_bad)")
            skipped += not ok
            ys.append(index[own[v] if names else str(v)] if ok else -1)
            keep += [start + i] if ok else []
        if split in SPLITS:
            given[split] = np.array(keep, np.int64)
        else:  # a dataset without train/val/test splits: one pool
            pool += keep
        start += len(part)
    if pool and skipped:
        given = {"train": np.array(pool, np.int64)}  # the pool, less the unlabelled rows
    return classes, np.array(ys, np.int64), given, skipped


def _names(part, lab: str) -> list[str] | None:
    """A split's own ClassLabel names: each split stores its own, and a split saved with them in
    another order would be silently relabelled if read through the train split's."""
    names = getattr(part.features[lab], "names", None)
    return list(names) if names else None


def _hf_inputs(values, modality: str, params: dict) -> list:
    if modality == "text":
        return [str(v) for v in values]
    if modality == "image":
        size, mode = int(params.get("size", 32)), "L" if int(params.get("channels", 3)) == 1 else "RGB"
        return [pil_array(im, mode, size) for im in values]  # as image_folder decodes its files
    from ptbench.tasks.audio import fit_clip

    return [fit_clip(a["array"], a["sampling_rate"]) for a in values]
