"""What a run was made with, tagged on every MLflow run: ptbench's version and git commit, and
the versions of the libraries that decide its numbers."""

from __future__ import annotations

import contextlib
import subprocess
from importlib import metadata
from pathlib import Path

from ptbench import __version__

PACKAGES = ("torch", "torchvision", "torchaudio", "timm", "transformers", "mlflow", "optuna")


def git_commit() -> str:
    """The checkout's commit, or "unknown" (an installed wheel, no git)."""
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).parent,
            ).stdout.strip()
            or "unknown"
        )
    except Exception:
        return "unknown"


def run_tags() -> dict[str, str]:
    tags = {"ptbench.version": __version__, "ptbench.git_commit": git_commit()}
    for pkg in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            tags[f"ptbench.pkg.{pkg}"] = metadata.version(pkg)
    return tags
