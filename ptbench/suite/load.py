"""Read a suite file: YAML (safe_load) → pydantic schema → checks against the registries.

Every problem becomes one line naming its field path, so ``ptbench validate`` can list them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ptbench.errors import SuiteError
from ptbench.schema import Suite


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "literal[", "union[")) or part in (
            "list[Item]",
            "Dist",
        ):
            continue  # pydantic's internal tags for union members, not user fields
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _pydantic_problems(err: ValidationError) -> list[str]:
    problems, seen = [], set()
    for e in err.errors():
        where = _loc(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        line = f"{where}: {msg}"
        if line not in seen:
            seen.add(line)
            problems.append(line)
    return problems


def parse_suite(data: Any, source: str = "<suite>") -> Suite:
    """Validate already-parsed YAML data; raise SuiteError listing every problem."""
    if not isinstance(data, dict):
        raise SuiteError([f"{source}: the suite file must be a mapping of keys, got {type(data).__name__}"])
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise SuiteError(_pydantic_problems(err)) from None
    from ptbench.suite.checkpoints import expand_checkpoints
    from ptbench.suite.checks import registry_problems

    suite, problems = expand_checkpoints(suite)
    problems += registry_problems(suite)
    if problems:
        raise SuiteError(problems)
    return suite


def load_suite(path: str | Path) -> Suite:
    """Load and fully validate a suite file."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError([f"{path}: no such suite file"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SuiteError([f"{where}: malformed YAML: {problem}"]) from None
    return parse_suite(data, str(path))
