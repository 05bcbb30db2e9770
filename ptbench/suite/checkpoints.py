"""Many checkpoints in one line: ``weights: file`` with a glob ``path`` stands for every file (or
directory) it matches, one backbone each, and each is labelled by the shortest end of its path
that tells it apart (``step1000/model.safetensors``), so tables and the funnel keep them apart.

Why at load time: every consumer (the grid, ``ptbench rank``, the funnel, the resolved suite
logged on the suite run) then sees the concrete files, and a checkpoint saved since the last run
is a new backbone of the next one.
"""

from __future__ import annotations

import fnmatch
import glob
from pathlib import Path

from ptbench.schema import Suite

_WILD = ("*", "?", "[")


def expand_checkpoints(suite: Suite, *, missing_ok: bool = False) -> tuple[Suite, list[str]]:
    """The suite with each file glob replaced by its matches (sorted), and a line per glob that
    matches nothing. ``missing_ok`` (commands that read results only, on a machine that may not
    hold the files): such a glob stays as written, for :func:`with_recorded` to resolve."""
    backbones, problems = [], []
    for i, bb in enumerate(suite.axes.backbones):
        if not is_glob(bb):
            backbones.append(bb)
            continue
        found = sorted(glob.glob(str(Path(bb.path).expanduser()), recursive=True))
        if not found and missing_ok:
            backbones.append(bb)
        elif not found:
            problems.append(f"axes.backbones[{i}].path: '{bb.path}' matches no checkpoint")
        backbones += [bb.model_copy(update={"path": p}) for p in found]
    return _with_backbones(suite, backbones), problems


def is_glob(bb) -> bool:
    return bb.weights == "file" and any(w in (bb.path or "") for w in _WILD)


def with_recorded(suite: Suite, paths: set[str]) -> Suite:
    """Each glob left unresolved (see ``missing_ok``) replaced by the checkpoint paths the runs
    recorded (``ptbench.weights_ref``) that it matches: the files as the running machine's glob
    found them, so the cells, and their hashes, are the ones it ran. A ``~`` matches any home."""

    def matches(path: str, pattern: str) -> bool:
        pattern = pattern.removeprefix("./").rstrip("/") or pattern
        tries = {pattern, str(Path(pattern).expanduser())}
        if pattern.startswith("~"):
            tries.add("*" + pattern[1:])
        return any(fnmatch.fnmatchcase(path, t) for t in tries)

    def forms(p: str, pattern: str) -> list[str]:
        """The path as the running machine's glob may have written it: the recorded one is
        normalised (``./ck/a`` → ``ck/a``, ``ck/a/`` → ``ck/a``); an extra form only adds a
        hash no run has."""
        out = [p, f"./{p}" if pattern.startswith("./") else p, f"{p}/" if pattern.endswith("/") else p]
        return list(dict.fromkeys(out))

    backbones = []
    for bb in suite.axes.backbones:
        if not unresolved(bb):
            backbones.append(bb)
            continue
        found = sorted(f for p in paths if matches(p, bb.path) for f in forms(p, bb.path))
        backbones += [bb.model_copy(update={"path": p}) for p in found]
    return _with_backbones(suite, backbones)


def unresolved(bb) -> bool:
    """A glob left as written by ``missing_ok`` (not a file found here whose name holds a '[')."""
    return is_glob(bb) and not Path(bb.path).expanduser().exists()


def _with_backbones(suite: Suite, backbones: list) -> Suite:
    axes = suite.axes.model_copy(update={"backbones": backbones})
    return suite.model_copy(update={"axes": axes})


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
