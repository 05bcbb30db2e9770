"""Whether a suite's pre-training recipe trains on a downstream task's held-out examples.

Why: a recipe names its source task with its own params. The same task under another
``split_seed`` or ``test_size`` (or a task whose pool another task's shifted set is drawn from)
puts downstream test examples into the pre-training's train split — a supervised recipe sees
their labels too — and every result built on those weights is inflated, silently. Examples are
compared by content (their bytes) and, where a task records it, by origin (pool and row: the
digit sets' shifted domains are each other's examples resized), so the check holds whatever the
tasks are called.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ptbench.tasks.base import Split, TaskData


def _example_keys(split: Split | None) -> list[tuple[bytes, ...]]:
    """Per example, what identifies it: a digest of its bytes (an image, a waveform, a text,
    shape included), and of its origin where the task records one (a resized copy of another
    task's example has other bytes, the same origin)."""
    if split is None:
        return []
    out = []
    for i, x in enumerate(split.x):
        raw = (
            x.encode()
            if isinstance(x, str)
            else str(tuple(x.shape)).encode() + x.contiguous().numpy().tobytes()
        )
        keys = (hashlib.blake2b(raw, digest_size=16).digest(),)
        if split.origin is not None:
            keys += (hashlib.blake2b(split.origin[i].encode(), digest_size=16).digest(),)
        out.append(keys)
    return out


def leaked(source: TaskData, downstream: TaskData) -> int:
    """How many of ``downstream``'s test and shifted examples the pre-training trains on (its
    train and validation splits) beyond those the downstream's own train split already holds
    (a corpus's natural duplicates, which its fine-tuning sees as well)."""
    return _count(_trained_on(source), _held_out_only(downstream))


def _count(trained: set[bytes], held: list[tuple[bytes, ...]]) -> int:
    return sum(any(k in trained for k in keys) for keys in held)


def _trained_on(data: TaskData) -> set[bytes]:
    return {k for split in (data.train, data.val) for keys in _example_keys(split) for k in keys}


def _held_out_only(data: TaskData, shifted: bool = True) -> list[tuple[bytes, ...]]:
    """Test (and shifted) examples that its own train and validation splits do not hold."""
    own = _trained_on(data)
    held = _example_keys(data.test)
    if shifted:
        held += [k for s in data.shifted.values() for k in _example_keys(s)]
    return [keys for keys in held if not any(k in own for k in keys)]


def check_recipes(
    recipes: list[tuple[str, dict[str, Any]]], tasks: list[dict[str, Any]], shifted: bool = True
) -> list[str]:
    """One line per (recipe, downstream task) whose data leaks: ``recipes`` are (where in the
    suite, source task spec), ``tasks`` the downstream task specs; ``shifted``: whether the suite
    evaluates the shifted sets (else only the test split is held out). Each task's examples are
    hashed once, however many recipes share it."""
    from ptbench.tasks import load_task, task_modality

    if not recipes:
        return []

    def modality(spec: dict[str, Any]) -> str:
        return task_modality(spec["name"], spec.get("params", {}))

    def key(spec: dict[str, Any]) -> str:
        return json.dumps(spec, sort_keys=True)

    held = {key(t): _held_out_only(load_task(t), shifted) for t in tasks}
    seen: dict[str, set[bytes]] = {}
    problems = []
    for where, source in recipes:
        for task in (t for t in tasks if modality(t) == modality(source)):
            if key(source) not in seen:
                seen[key(source)] = _trained_on(load_task(source))
            n = _count(seen[key(source)], held[key(task)])
            if n:
                problems.append(
                    f"{where}: its source task '{source['name']}' trains on {n} of task "
                    f"'{task['name']}'s test or shifted examples — pre-training would see the test "
                    "set; give the recipe the same split params as the suite's task, or another task"
                )
    return problems
