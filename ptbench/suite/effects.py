"""Settings a cell's trials cannot act on, refused at validate with one line naming the field.

A trainer key in ``search.space`` reaches every cell (grid.resolve_space), so a value a cell cannot
use was searched, logged and compared as if it mattered: ``head_lr_mult`` under linear_probe,
``momentum`` under AdamW, a gradual_unfreeze that never unfreezes (a head-only run under its name;
with l2_sp every trial failed), a warm-up that takes the whole run. An item's key in
``search.space`` reaches only the cells of items that have it: one no cell of the grid reads
(``weight_decay`` without that regularizer) vanished from every cell.

Ranges: a value counts as unusable when it is so at the most epochs searched. A range whose top
fails is refused (``unfreeze_every`` 1..3 with ``epochs`` 3: a third of the trials unfreeze
nothing); where epochs is searched too, a trial that draws fewer epochs than its
``unfreeze_every`` is accepted (that corner is the search's to explore; its ``trainable_params``
says it trained the head alone).
"""

from __future__ import annotations

from typing import Any

from ptbench.schema import Dist, Suite

# Trainer settings that act only below the run's epochs, with what happens at or above them;
# a strategy declares its own (``below_epochs`` on its registration).
TRAINER_BELOW_EPOCHS = {"warmup_epochs": "the learning rate warms up for the whole run"}


def effect_problems(suite: Suite, cells) -> list[str]:
    """One line per setting some cell's trials cannot act on, however many cells share it."""
    from ptbench.strategies import STRATEGIES

    strategies = [s.model_dump() for s in suite.axes.strategies]
    out: list[str] = []
    for cell in cells:
        i = strategies.index(cell.strategy)
        entry = STRATEGIES.get(cell.strategy["name"])
        found = [
            _head_lr(suite, cell.space, i, entry),
            _momentum(suite, cell.space, i),
            *_below_epochs(suite, cell.space, i, entry),
        ]
        out += [line for line in found if line and line not in out]
    return out


def space_problems(suite: Suite) -> list[str]:
    """Search-space keys no cell of this grid reads: the grid keeps a key only for the cells whose
    strategy or regularizers have it, so ``weight_decay`` without that regularizer validated and
    vanished from every cell. Trainer settings reach every cell."""
    from ptbench.suite.grid import TRAINER_SPACE, expand
    from ptbench.train.recipe import TRAINER_LIMITS

    cells = expand(suite)
    problems = []
    for key, spec in suite.search.space.items():
        if not (key in TRAINER_SPACE or key in TRAINER_LIMITS or any(key in c.space for c in cells)):
            problems.append(f"search.space.{key}: {_unread(key)}")
        elif isinstance(spec, Dist) and spec.type == "int" and spec.log and spec.low < 1:
            problems.append(f"search.space.{key}: log int range needs low >= 1")
    return problems


def _unread(key: str) -> str:
    """Why no trial reads ``key``, and which items would."""
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES

    users = [f"the {e.name} strategy" for e in STRATEGIES if key in e.space]
    users += [f"the {e.name} regularizer" for e in REGULARIZERS if key in e.space]
    if not users:
        return f"no strategy, regularizer or trainer setting has a parameter '{key}'"
    return (
        "no strategy or regularizer of this suite's grid has it, so no trial would read it "
        f"(add {' or '.join(users)})"
    )


def _where(suite: Suite, i: int, key: str) -> str | None:
    """The field a cell's value of ``key`` came from (the strategy's params win); None: a default."""
    if key in suite.axes.strategies[i].params:
        return f"axes.strategies[{i}].params.{key}"
    return f"search.space.{key}" if key in suite.search.space else None


def _head_lr(suite: Suite, space: dict, i: int, entry) -> str | None:
    if "head_lr_mult" not in space or "head_lr_mult" in entry.space:
        return None
    return (
        f"{_where(suite, i, 'head_lr_mult')}: {entry.name} has no head learning-rate multiplier "
        "(set head_lr_mult in the params of the strategies that have one)"
    )


def _momentum(suite: Suite, space: dict, i: int) -> str | None:
    optimizer = space.get("optimizer", "adamw")
    choices = optimizer["choices"] if isinstance(optimizer, dict) else [optimizer]
    if "momentum" not in space or "sgd" in choices:
        return None
    source = _where(suite, i, "optimizer") or "the optimizer (by default)"
    where = _where(suite, i, "momentum")
    return f"{where}: only optimizer sgd has a momentum, and {source} is {_text(optimizer)}"


def _below_epochs(suite: Suite, space: dict, i: int, entry) -> list[str]:
    """Settings whose highest value is at or above the most epochs a trial may run."""
    epochs = _span(space.get("epochs"))
    if epochs is None:
        return []
    out = []
    for key, why in (TRAINER_BELOW_EPOCHS | entry.meta.get("below_epochs", {})).items():
        span = _span(space.get(key))
        if span is None or span[1] < epochs[1]:
            continue
        where, value = _where(suite, i, key), _text(space[key])
        if where is None:  # the strategy's own default: fixed in its params
            where, value = f"axes.strategies[{i}].params.{key}", f"{entry.name}'s default {value}"
        out.append(
            f"{where}: {value} must stay below epochs ({_text(space['epochs'])}): at {span[1]:g} {why}"
        )
    return out


def _span(value: Any) -> tuple[float, float] | None:
    """The lowest and highest number a fixed value or search range can take; None if not numeric."""
    if isinstance(value, dict):
        if value.get("type") == "categorical":
            nums = [c for c in value["choices"] if _number(c)]
            return (min(nums), max(nums)) if nums else None
        low, high, step = value["low"], value["high"], value.get("step")
        return low, (low + (high - low) // step * step if step else high)
    return (value, value) if _number(value) else None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _text(value: Any) -> str:
    """A fixed value as written; a range as ``low..high``, a categorical as ``a|b``."""
    if not isinstance(value, dict):
        return str(value)
    if value.get("type") == "categorical":
        return "|".join(map(str, value["choices"]))
    return f"{value['low']:g}..{value['high']:g}"
