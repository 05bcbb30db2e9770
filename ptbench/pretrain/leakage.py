"""Whether a suite's pre-training recipe trains on a downstream task's held-out examples.

Why: a recipe names its source task with its own params. The same task under another
``split_seed`` or ``test_size`` (or a task whose pool another task's shifted set is drawn from)
puts downstream test examples into the pre-training's train split — a supervised recipe sees
their labels too — and every result built on those weights is inflated, silently. Examples are
compared by content (their bytes), so the check holds whatever the tasks are called.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ptbench.tasks.base import Split, TaskData


def _keys(split: Split | None) -> set[bytes]:
    """One digest per example: its bytes (an image, a waveform, a text), shape included."""
    if split is None:
        return set()
    out = set()
    for x in split.x:
        raw = (
            x.encode()
            if isinstance(x, str)
            else str(tuple(x.shape)).encode() + x.contiguous().numpy().tobytes()
        )
        out.add(hashlib.blake2b(raw, digest_size=16).digest())
    return out


def leaked(source: TaskData, downstream: TaskData) -> int:
    """How many of ``downstream``'s test and shifted examples the pre-training trains on (its
    train and validation splits) beyond those the downstream's own train split already holds
    (a corpus's natural duplicates, which its fine-tuning sees as well)."""
    return len(_trained_on(source) & _held_out_only(downstream))


def _trained_on(data: TaskData) -> set[bytes]:
    return _keys(data.train) | _keys(data.val)


def _held_out_only(data: TaskData) -> set[bytes]:
    """Test and shifted examples that its own train and validation splits do not hold."""
    held = _keys(data.test).union(*(_keys(s) for s in data.shifted.values()))
    return held - _trained_on(data)


def check_recipes(recipes: list[tuple[str, dict[str, Any]]], tasks: list[dict[str, Any]]) -> list[str]:
    """One line per (recipe, downstream task) whose data leaks: ``recipes`` are (where in the
    suite, source task spec), ``tasks`` the downstream task specs. Each task's examples are
    hashed once, however many recipes share it."""
    from ptbench.tasks import load_task, task_modality

    if not recipes:
        return []

    def modality(spec: dict[str, Any]) -> str:
        return task_modality(spec["name"], spec.get("params", {}))

    def key(spec: dict[str, Any]) -> str:
        return json.dumps(spec, sort_keys=True)

    held = {key(t): _held_out_only(load_task(t)) for t in tasks}
    seen: dict[str, set[bytes]] = {}
    problems = []
    for where, source in recipes:
        for task in (t for t in tasks if modality(t) == modality(source)):
            if key(source) not in seen:
                seen[key(source)] = _trained_on(load_task(source))
            n = len(seen[key(source)] & held[key(task)])
            if n:
                problems.append(
                    f"{where}: its source task '{source['name']}' trains on {n} of task "
                    f"'{task['name']}'s test or shifted examples — pre-training would see the test "
                    "set; give the recipe the same split params as the suite's task, or another task"
                )
    return problems
