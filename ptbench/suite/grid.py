"""Expand a suite into cells: backbone × task × strategy × regularization, pruned by rules.

A cell's hash covers everything that changes its results (resolved config, search space,
objective, suite name and version) and nothing that does not (trial budget, seeds, workers),
so raising ``--trials`` continues the same Optuna study.
"""

from __future__ import annotations

import itertools
from typing import Any

from ptbench.cell import Cell
from ptbench.hashing import stable_hash
from ptbench.schema import BackboneItem, Dist, Item, Suite, matches
from ptbench.suite.checkpoints import file_labels
from ptbench.train.recipe import TRAINER_LIMITS

# Settings of the one trainer every trial uses; strategies and regularizers add their own.
TRAINER_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "epochs": 3,
    "batch_size": 64,
    "warmup_epochs": 0,
    "grad_clip": 0.0,
    "optimizer": "adamw",  # or sgd (searchable: {type: categorical, choices: [adamw, sgd]})
    "schedule": "cosine",  # or linear, constant; after warmup_epochs of linear warm-up
}


def _label(item: Item) -> str:
    if not item.params:
        return item.name
    inner = ",".join(f"{k}={_value(v)}" for k, v in sorted(item.params.items()))
    return f"{item.name}({inner})"


def _value(v: Any) -> str:
    """A fixed value as written; a search range on an item as ``low..high`` (``log``) or ``a|b``."""
    if not (isinstance(v, dict) and "type" in v):
        return str(v)
    if v["type"] == "categorical":
        return "|".join(map(str, v.get("choices", [])))
    return f"{v.get('low'):g}..{v.get('high'):g}" + (" log" if v.get("log") else "")


def resolve_space(suite: Suite, strategy: Item, regs: list[Item]) -> dict[str, Any]:
    """Trainer defaults ∪ item defaults, then fixed item params, then the suite's overrides."""
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES

    space = dict(TRAINER_SPACE)
    entries = [(STRATEGIES.get(strategy.name), strategy)] + [(REGULARIZERS.get(r.name), r) for r in regs]
    for entry, _ in entries:
        space.update(entry.space)
    for key, spec in suite.search.space.items():
        if key in space or key in TRAINER_LIMITS:  # momentum: a trainer setting without a default here
            space[key] = (
                spec.model_dump(exclude_defaults=True) | {"type": spec.type}
                if isinstance(spec, Dist)
                else spec
            )
    for _, item in entries:
        space.update(item.params)  # fixed on the axis: wins over everything
    return dict(sorted(space.items()))


def expand(suite: Suite) -> list[Cell]:
    """All cells of the grid, in a stable order, after include/exclude rules."""
    cells: list[Cell] = []
    for (bb, task, strat, regs), labels, rule_labels in combinations(suite):
        if suite.include and not any(matches(r, rule_labels) for r in suite.include):
            continue
        if any(matches(r, rule_labels) for r in suite.exclude):
            continue
        body = dict(
            suite=suite.name,
            suite_version=str(suite.version),
            backbone=_backbone_dict(bb),
            task=task.model_dump(),
            strategy=strat.model_dump(),
            regularizers=[r.model_dump() for r in regs],
            space=resolve_space(suite, strat, regs),
            objective=suite.search.objective.model_dump(),
        )
        cells.append(Cell(**body, labels=labels, hash=stable_hash(body)))
    return cells


def combinations(suite: Suite):
    """Every (backbone, task, strategy, regularizers) of the axes before any rule, with the
    cell's labels and the labels its rules match (names, not labels with params)."""
    ax = suite.axes
    files = file_labels([bb.path for bb in ax.backbones if bb.weights == "file"])
    for bb, task, strat, regs in itertools.product(ax.backbones, ax.tasks, ax.strategies, ax.regularizers):
        labels = {
            "backbone": bb.name,
            "weights": bb.weights,
            "task": _label(task),
            "strategy": _label(strat),
            "regularizer": "+".join(_label(r) for r in regs) or "none",
        }
        labels["weights"], source = bb.weights, bb.weights
        if bb.weights == "run" and bb.pretrain:
            labels["weights"] = f"run:{bb.pretrain.objective}/{bb.pretrain.task}"
            source = _pretrain_label(bb.pretrain)  # 100 vs 400 steps of one recipe: two backbones
        elif bb.weights == "run":
            labels["weights"] = source = f"run:{bb.id}"
        elif bb.weights == "file":  # two checkpoints of one network: two backbones
            source = f"file:{files[bb.path]}"
        labels["backbone"] = f"{_label(bb)}@{source}"
        rule_labels = labels | {"backbone": bb.name, "task": task.name, "strategy": strat.name}
        yield (bb, task, strat, regs), labels, rule_labels


def _pretrain_label(p) -> str:
    """``run:objective/task``, with the settings that differ from the defaults."""
    from ptbench.schema import PretrainItem

    default = PretrainItem(objective=p.objective, task=p.task)
    dump = p.model_dump()
    changed = [f"{k}={v}" for k, v in dump.pop("task_params").items()]
    changed += [f"{k}={v}" for k, v in dump.items() if v != getattr(default, k)]
    return f"run:{p.objective}/{p.task}" + (f"({','.join(changed)})" if changed else "")


def pretrain_spec(bb: BackboneItem):
    """The ``ptbench pretrain`` spec a backbone's inline ``pretrain`` recipe stands for."""
    from ptbench.pretrain.run import PretrainSpec

    return PretrainSpec(backbone=bb.name, backbone_params=dict(bb.params), **bb.pretrain.model_dump())


def _backbone_dict(bb: BackboneItem) -> dict[str, Any]:
    out = bb.model_dump(exclude_none=True)
    if bb.pretrain is not None and not bb.id:
        out["id"] = pretrain_spec(bb).default_name  # known before training: stable cell hashes
    return out
