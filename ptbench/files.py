"""Files written whole or not at all.

Why: workers share caches (decoded data, splits, features) and weights on one disk; a reader
must never see half a file, and two writers of the same file must not trample each other's
temporary file. So each writer writes a temporary file of its own (pid + random suffix) in the
target's directory and moves it over the target in one step (``os.replace``).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ptbench.errors import PtbenchError


@contextmanager
def atomic_path(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; on a clean exit it replaces ``path``.

    The temporary name keeps ``path``'s suffix (``np.savez`` adds ``.npz`` to a name without
    it). ``fsync``: flush the content to the disk before the rename, for files that must survive
    a crash of the machine (not just of the process). On an error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, fsync: bool = False) -> None:
    with atomic_path(path, fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")


NAME_RULE = "one folder name: letters, digits, . _ - (not starting with '.')"


def is_folder_name(text: str) -> bool:
    """A user-given name that becomes one folder under ours (``weights/<name>``): ``../x`` or
    an absolute path joined into a path wrote outside it."""
    return len(text) <= 200 and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", text) is not None


def folder_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be (made) a folder this user writes in, or None. Checked before the
    work that needs it: found by a mkdir inside the run, a file in the way was a traceback."""
    here = Path(path).absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        return f"{here} is a file, not a folder"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{here} is not writable"
    return None


def make_folder(path: str | Path, named: str) -> Path:
    """``path`` made if missing; where it cannot be, a one-line error starting with ``named``
    (the option or field that gave it, e.g. ``--project-dir X``)."""
    problem = folder_problem(path)
    if problem is None:
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as err:  # /proc, a full or read-only file system, a race with a file
            problem = f"cannot be made ({err.strerror or err})"
    if problem is not None:
        raise PtbenchError(f"{named}: {problem}")
    return Path(path)
