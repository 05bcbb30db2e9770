"""Many checkpoints in one line: ``weights: file`` with a glob ``path`` stands for every file (or
directory) it matches, one backbone each, and each is labelled by the shortest end of its path
that tells it apart (``step1000/model.safetensors``), so tables and the funnel keep them apart.

Why at load time: every consumer (the grid, ``ptbench rank``, the funnel, the resolved suite
logged on the suite run) then sees the concrete files, and a checkpoint saved since the last run
is a new backbone of the next one.
"""

from __future__ import annotations

import glob
from pathlib import Path

from ptbench.schema import Suite

_WILD = ("*", "?", "[")


def expand_checkpoints(suite: Suite) -> tuple[Suite, list[str]]:
    """The suite with each file glob replaced by its matches (sorted), and a line per glob that
    matches nothing."""
    backbones, problems = [], []
    for i, bb in enumerate(suite.axes.backbones):
        if bb.weights != "file" or not any(w in (bb.path or "") for w in _WILD):
            backbones.append(bb)
            continue
        found = sorted(glob.glob(str(Path(bb.path).expanduser()), recursive=True))
        if not found:
            problems.append(f"axes.backbones[{i}].path: '{bb.path}' matches no checkpoint")
        backbones += [bb.model_copy(update={"path": p}) for p in found]
    axes = suite.axes.model_copy(update={"backbones": backbones})
    return suite.model_copy(update={"axes": axes}), problems


def file_labels(paths: list[str]) -> dict[str, str]:
    """Each path → the fewest trailing parts that no other path ends with (the file name alone
    when it is unique)."""
    parts = {p: Path(p).parts for p in set(paths)}
    out = {}
    for p, mine in parts.items():
        others = [q for q in parts.values() if q != mine]
        k = 1
        while k < len(mine) and any(q[-k:] == mine[-k:] for q in others):
            k += 1
        out[p] = "/".join(mine[-k:])
    return out
