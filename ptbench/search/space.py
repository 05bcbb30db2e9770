"""Turn ptbench search-space specs into Optuna suggestions."""

from __future__ import annotations

from typing import Any


def is_dist(spec: Any) -> bool:
    return isinstance(spec, dict) and "type" in spec


def suggest(trial, space: dict[str, Any]) -> dict[str, Any]:
    """Sample every distribution in ``space``; fixed values pass through unchanged."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if not is_dist(spec):
            out[name] = spec
        elif spec["type"] == "categorical":
            out[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            step = int(spec.get("step") or 1)
            out[name] = trial.suggest_int(
                name, int(spec["low"]), int(spec["high"]), step=step, log=bool(spec.get("log", False))
            )
        else:
            out[name] = trial.suggest_float(
                name,
                float(spec["low"]),
                float(spec["high"]),
                step=spec.get("step"),
                log=bool(spec.get("log", False)),
            )
    return out
