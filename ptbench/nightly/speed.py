"""Speed history: a night's pytest-benchmark results, each as a ratio to a reference loop timed
in the same session, compared with previous nights.

Why ratios: wall-clock figures on a shared machine drift up to 2× from one night to the next;
a benchmark that slows down with the machine keeps its ratio to a fixed loop measured minutes
apart, one that slows down on its own does not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ptbench.errors import PtbenchError
from ptbench.train.yardstick import reference_seconds

__all__ = ["REFERENCE", "bench_ratios", "metric_key", "reference_seconds"]

REFERENCE = "test_reference_loop"  # benchmarks/test_bench_reference.py


def metric_key(name: str) -> str:
    """A benchmark's name as an MLflow metric key (brackets and the like become '_')."""
    return "bench." + re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", name).strip("_")


def bench_ratios(path: str | Path) -> dict[str, float]:
    """Each benchmark's median over the reference loop's median, from a ``--benchmark-json`` file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        medians = {b["name"]: float(b["stats"]["median"]) for b in data["benchmarks"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PtbenchError(f"--benchmarks {path}: not a pytest-benchmark JSON file ({err})") from None
    ref = medians.get(REFERENCE)
    if not ref:
        raise PtbenchError(
            f"--benchmarks {path}: no '{REFERENCE}' result to divide by; "
            "run benchmarks/test_bench_reference.py in the same session"
        )
    return {metric_key(k): v / ref for k, v in medians.items() if k != REFERENCE}
