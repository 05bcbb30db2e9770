"""Tasks: datasets with fixed, hashed splits (train / val / test / shifted), a metric, a modality."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ptbench.registry import Registry

if TYPE_CHECKING:
    from ptbench.tasks.base import TaskData

TASKS = Registry(
    "task",
    # modality (or modality_param: the param that sets it), params, and what `ptbench ls` and
    # the checks show: classes, sizes, source, available() -> why it is missing, or None
    meta_keys=("modality", "modality_param", "params", "classes", "sizes", "source", "available"),
    modules=(
        "ptbench.tasks.images",
        "ptbench.tasks.text",
        "ptbench.tasks.audio",
        "ptbench.tasks.fractals",
        "ptbench.tasks.own_data",
        "ptbench.tasks.hf_disk",
        "ptbench.tasks.standard",
    ),
)


def task_modality(name: str, params: dict[str, Any]) -> str | None:
    """The modality of a task as a suite sets it up. Why params: a task that reads any kind of
    data (hf_disk) takes its modality as a parameter; None when the suite leaves it unset."""
    meta = TASKS.get(name).meta
    key = meta.get("modality_param")
    return params.get(key) if key else meta["modality"]


def load_task(spec: dict[str, Any]) -> TaskData:
    """The task's data as a trial or a pre-training sees it (``{"name", "params"}``), built once
    per process: a worker runs many trials of the same task, and building decodes and splits."""
    return _task_data(spec["name"], json.dumps(spec.get("params", {}), sort_keys=True))


@lru_cache(maxsize=4)
def _task_data(name: str, params_json: str) -> TaskData:
    return TASKS.get(name).fn(json.loads(params_json))


def check_data(task_specs: Iterable[Any]) -> list[str]:
    """Load each distinct task of a suite once, before any trial starts: bad data (a truncated
    image, a CSV row without a label) ends the run at its start, one line per problem naming the
    file (and line), instead of failing trials one by one. Loading also fills the decode and split
    caches under $PTBENCH_DATA_DIR, so workers start warm. ``task_specs``: cell.task dicts
    ({"name", "params"}) or suite axis items (``.name``, ``.params``)."""
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
            data = TASKS.get(name).fn(dict(params))
            if len(data.classes) < 2:  # a suite classifies; pre-training (mlm …) may take one class
                raise PtbenchError(
                    f"task '{name}': one class ({data.classes[0]}); classification needs two or more"
                )
        except PtbenchError as err:
            said = str(err)
            problems.append(said if said.startswith(f"task '{name}'") else f"task '{name}': {said}")
    return problems


__all__ = ["TASKS", "check_data", "load_task", "task_modality"]
