"""Typed parameters of registered items (backbones, tasks …), checked at ``validate``.

A registration declares ``params={"input_size": Param(int, "side in pixels", low=8)}`` so a
suite's ``input_size: "abc"`` is refused before any worker starts, with the field named. A bare
help string is still accepted and means "any value" (plugins written before typed params).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    type: type | tuple[type, ...]
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    gt: float | None = None  # exclusive bounds: a learning rate above 0, a dropout below 1
    lt: float | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit, in words; None when it does."""
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        ok = any(_is(value, t) for t in types)
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            return f"expected {names}, got {type(value).__name__} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"{value!r} is not one of {', '.join(map(repr, self.choices))}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.low is not None and value < self.low:
                return f"{value!r} is below the minimum {self.low:g}"
            if self.high is not None and value > self.high:
                return f"{value!r} is above the maximum {self.high:g}"
            if self.gt is not None and value <= self.gt:
                return f"{value!r} must be above {self.gt:g}"
            if self.lt is not None and value >= self.lt:
                return f"{value!r} must be below {self.lt:g}"
        return None

    def describe(self) -> str:
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        bits = ["/".join(t.__name__ for t in types)]
        if self.choices is not None:
            bits.append("one of " + ", ".join(map(str, self.choices)))
        low, high = (self.low, "["), (self.high, "]")
        low = (self.gt, "(") if self.gt is not None else low
        high = (self.lt, ")") if self.lt is not None else high
        if low[0] is not None or high[0] is not None:
            lo, hi = ("" if v is None else f"{v:g}" for v, _ in (low, high))
            bits.append(f"{low[1]}{lo}, {hi}{high[1]}")
        return f"{self.help} ({'; '.join(bits)})" if self.help else "; ".join(bits)


def _is(value: Any, t: type) -> bool:
    if t is float:  # YAML writes 1 for 1.0: an int is a fine float, a bool is not
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, t)


def param_problem(spec: Param | str, value: Any) -> str | None:
    return spec.problem(value) if isinstance(spec, Param) else None


def params_problems(
    params: dict, known: dict, kind: str, name: str, value_problem: Callable = param_problem
) -> list[tuple[str, str]]:
    """(key, why) for each of an item's ``params`` that ``known`` does not declare, or whose
    value ``value_problem`` refuses: suite fields and ``ptbench pretrain`` flags name the key
    their own way."""
    out = []
    for k, value in params.items():
        if k not in known:
            out.append(
                (k, f"unknown parameter for {kind} '{name}' (known: {', '.join(sorted(known)) or 'none'})")
            )
        elif (why := value_problem(known[k], value)) is not None:
            out.append((k, why))
    return out


def param_help(spec: Param | str) -> str:
    return spec.describe() if isinstance(spec, Param) else spec


def _number(limit: Param, value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string, which the trainer reads as 0.001: a float
    limit checks it as that number."""
    types = limit.type if isinstance(limit.type, tuple) else (limit.type,)
    if float in types and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def limit_problem(limit: Param, value: Any) -> str | None:
    """Why a hyperparameter's value — fixed, or a search range (a ``Dist`` or its mapping) — can
    take a value outside what the trainer accepts; None when it cannot. Checked at ``validate``:
    out of range, such a value failed every trial, or was silently read as another."""
    spec = value.model_dump() if hasattr(value, "model_dump") else value
    if not (isinstance(spec, dict) and "type" in spec):
        return limit.problem(_number(limit, value))
    if spec["type"] == "categorical":
        for choice in spec.get("choices") or []:
            if (why := limit.problem(_number(limit, choice))) is not None:
                return f"choice {why}"
        return None
    types = limit.type if isinstance(limit.type, tuple) else (limit.type,)
    if spec["type"] == "float" and float not in types:
        return "takes whole numbers: use type: int"
    for end in ("low", "high"):
        v = spec.get(end)
        v = int(v) if spec["type"] == "int" and v is not None else v
        if v is not None and (why := limit.problem(v)) is not None:
            return f"{end} {why}"
    return None
