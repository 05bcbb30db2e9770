"""Shared fixtures: a tiny suite on real data, and the real ``ptbench`` CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = Path(__file__).parent / "plugins"

TINY = {
    "name": "tiny",
    "version": 1,
    "axes": {
        "backbones": [{"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}}],
        "tasks": [
            {
                "name": "digits",
                "params": {"train_size": 200, "val_size": 100, "test_size": 100, "shifted_size": 100},
            }
        ],
        "strategies": ["linear_probe", "full_finetune"],
        "regularizers": ["none", ["label_smoothing"]],
    },
    "search": {
        "trials": 2,
        "pruner": "none",
        "space": {
            "epochs": 2,
            "batch_size": 25,
            "lr": {"type": "float", "low": 3e-3, "high": 3e-2, "log": True},
        },
    },
    "seeds": [0, 1],
    "execution": {"workers": 1},
}


def write_suite(path: Path, data: dict | None = None, **changes) -> Path:
    body = dict(TINY if data is None else data)
    body.update(changes)
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def ptbench(
    *args: str, cwd: Path, timeout: float = 600, check: bool = False, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real CLI as a user would, in its own process."""
    full_env = {**os.environ, "PYTHONPATH": f"{PLUGIN_DIR}{os.pathsep}{ROOT}", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "ptbench.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ptbench {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "tiny.yaml")
