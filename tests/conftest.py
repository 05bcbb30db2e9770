"""Shared fixtures: a tiny suite on real data, the real ``ptbench`` CLI in a subprocess, and skips
for tests that need an optional source (which say the line that installs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ptbench import optional

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


# Optional sources are looked up through ptbench.optional, so PTBENCH_HIDE_OPTIONAL=1 makes this
# machine look bare and every test below skips, as on a machine without them.
# Each skip's reason starts with OPTIONAL: collection tags those tests `optional_source`, which
# CI's second pass (`pytest -m optional_source`, sources installed) runs.
OPTIONAL = "optional source missing:"


def needs_command(cmd: str, install: str) -> pytest.MarkDecorator:
    """Skip unless the optional command is on PATH, e.g. ``needs_command("espeak-ng", "apt-get
    install espeak-ng")``."""
    return pytest.mark.skipif(optional.which(cmd) is None, reason=f"{OPTIONAL} {cmd}: {install}")


def needs_package(name: str, install: str) -> pytest.MarkDecorator:
    """Skip unless the optional package is installed (found without importing it)."""
    return pytest.mark.skipif(optional.package_dir(name) is None, reason=f"{OPTIONAL} {name}: {install}")


def needs_file(path: str | Path, install: str) -> pytest.MarkDecorator:
    """Skip unless the optional data file is there."""
    return pytest.mark.skipif(optional.file(path) is None, reason=f"{OPTIONAL} {path}: {install}")


def needs_task(name: str) -> pytest.MarkDecorator:
    """Skip unless the task's optional source is here; the reason is the task's own install line."""
    from ptbench.tasks import TASKS

    missing = TASKS.get(name).meta.get("available", lambda: None)()
    return pytest.mark.skipif(missing is not None, reason=f"{OPTIONAL} task '{name}': {missing}")


def pytest_collection_modifyitems(items):
    for item in items:
        if any(str(m.kwargs.get("reason", "")).startswith(OPTIONAL) for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.optional_source)
