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
            "dist",
            "value",
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


def parse_suite(data: Any, source: str = "<suite>", *, sources: bool = True) -> Suite:
    """Validate already-parsed YAML data; raise SuiteError listing every problem (``sources``:
    see ``registry_problems``)."""
    if not isinstance(data, dict):
        raise SuiteError([f"{source}: the suite file must be a mapping of keys, got {type(data).__name__}"])
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise SuiteError(_pydantic_problems(err)) from None
    from ptbench.suite.checkpoints import expand_checkpoints
    from ptbench.suite.checks import registry_problems

    suite, problems = expand_checkpoints(suite, missing_ok=not sources)
    problems += registry_problems(suite, sources, grid=not problems)
    if problems:
        raise SuiteError(problems)
    return suite


class _Loader(yaml.SafeLoader):
    """The safe loader (no tags beyond plain YAML), refusing a key given twice in one mapping:
    YAML keeps the last, so a second ``search:`` silently replaced the first."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor": overriding is its point
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first on line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The file's YAML data; a one-line SuiteError naming the file and line of what is wrong."""
    if path.is_dir():
        raise SuiteError([f"{path}: is a directory, not a suite file"])
    if not path.is_file():
        raise SuiteError([f"{path}: no such suite file"])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SuiteError(
            [f"{path}:{line}: not UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8"]
        ) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 — a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SuiteError([f"{where}: malformed YAML: {problem}"]) from None
    if data is None:
        raise SuiteError([f"{path}: the suite file is empty"])
    return data


def load_suite(path: str | Path, *, sources: bool = True) -> Suite:
    """Load and fully validate a suite file; ``sources=False`` for commands that only read its
    results (its data and checkpoint files need not be on this machine)."""
    path = Path(path)
    return parse_suite(read_yaml(path), str(path), sources=sources)
