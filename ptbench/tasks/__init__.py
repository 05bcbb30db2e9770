"""Tasks: datasets with fixed, hashed splits (train / val / test / shifted), a metric, a modality."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ptbench.registry import Registry

TASKS = Registry(
    "task",
    modules=(
        "ptbench.tasks.images",
        "ptbench.tasks.text",
        "ptbench.tasks.audio",
        "ptbench.tasks.fractals",
        "ptbench.tasks.user",
        "ptbench.tasks.local",
    ),
)


def task_modality(name: str, params: dict[str, Any]) -> str | None:
    """The modality of a task as a suite sets it up. Why params: a task that reads any kind of
    data (hf_disk) takes its modality as a parameter; None when the suite leaves it unset."""
    meta = TASKS.get(name).meta
    key = meta.get("modality_param")
    return params.get(key) if key else meta["modality"]


def check_data(task_specs: Iterable[Any]) -> list[str]:
    """Load each distinct task of a suite once, before any trial starts: bad data (a truncated
    image, a CSV row without a label) ends the run at its start, one line per problem naming the
    file (and line), instead of failing trials one by one. Loading also fills the decode and split
    caches under $PTBENCH_DATA_DIR, so workers start warm. ``task_specs``: cell.task dicts
    ({"name", "params"}) or suite axis items (``.name``, ``.params``)."""
    import json

    from ptbench.errors import PtbenchError

    problems: list[str] = []
    seen: set[str] = set()
    for spec in task_specs:
        if not isinstance(spec, dict):
            spec = {"name": spec.name, "params": spec.params}
        name, params = spec["name"], spec.get("params", {})
        key = json.dumps([name, params], sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        try:
            TASKS.get(name).fn(dict(params))
        except PtbenchError as err:
            problems.append(f"task '{name}': {err}")
    return problems


__all__ = ["TASKS", "check_data", "task_modality"]
