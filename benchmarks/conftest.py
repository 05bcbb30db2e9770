"""Benchmarks: figures go to the README, never into timed assertions in tests."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def records(project: Path, suite: str) -> list[dict]:
    """Every MLflow run a suite wrote under ``project``, as flat records."""
    from ptbench.tracking import Tracker, default_tracking_uri

    return Tracker(default_tracking_uri(project)).runs_records(suite)


def interleaved(plain, ours, rounds: int = 4) -> tuple[float, float]:
    """Median of each of two throughput measures, taken in turns (which goes first alternates)
    after one warm-up of each, so drift of the machine hits both alike."""
    plain(), ours()
    base, mine = [], []
    for r in range(rounds):
        if r % 2:
            mine.append(ours())
            base.append(plain())
        else:
            base.append(plain())
            mine.append(ours())
    return sorted(base)[rounds // 2], sorted(mine)[rounds // 2]


def trainer_throughput(model, pre, x, y, batch_size: int, epochs: int, device: str = "cpu") -> float:
    """Examples/s of ptbench's ``fit`` training every parameter of ``model``; validation on one
    example, so it does the same training work as a plain loop over the same data."""
    import torch

    from ptbench.tasks.base import Split
    from ptbench.train.recipe import Recipe
    from ptbench.train.trainer import fit

    res = fit(
        model,
        [{"params": list(model.parameters())}],
        Split(x, y),
        Split(x[:1], y[:1]),
        Recipe(lr=1e-3, epochs=epochs, batch_size=batch_size),
        num_classes=10,
        transform=pre,
        device=device,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return res.examples_seen / res.train_seconds
