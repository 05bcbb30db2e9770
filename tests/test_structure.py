"""The shape of the code, guarded: layers that import only downward, no cycle between packages,
and short functions. Read from the source (AST), nothing is imported, so it runs in a second.

Why: a change that makes the next reader climb back and forth (a job reading its executor's
globals, a leaderboard importing the grid) is easy to make and hard to see in review; these tests
name it the moment it is made.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "ptbench"

# Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = ("core", "data & models", "methods", "stores", "jobs", "orchestration", "interfaces")

# Where each module belongs. A dotted package name covers everything under it unless a longer
# entry names a part of it; the bare root "ptbench" covers ptbench/__init__.py alone.
MODULES = {
    # core: errors, hashing, atomic files, typed specs and params, optional sources, registries
    "ptbench": "core",
    "ptbench.errors": "core",
    "ptbench.hashing": "core",
    "ptbench.files": "core",
    "ptbench.databases": "core",  # what a database URL's driver takes (both stores)
    "ptbench.lifetime": "core",
    "ptbench.params": "core",
    "ptbench.optional": "core",
    "ptbench.registry": "core",
    "ptbench.schema": "core",  # the suite file as typed specs, and what its rules match
    "ptbench.cell": "core",  # one resolved grid point, as jobs receive it
    "ptbench.provenance": "core",  # version, git commit and library versions tagged on runs
    "ptbench.finals": "core",  # which recorded final runs count (best trial, each seed once)
    # data & models
    "ptbench.tasks": "data & models",
    "ptbench.backbones": "data & models",
    # methods: how a backbone is adapted, trained, evaluated, pre-trained
    "ptbench.strategies": "methods",
    "ptbench.regularizers": "methods",
    "ptbench.train": "methods",
    "ptbench.evaluate": "methods",
    "ptbench.pretrain": "methods",  # the objectives registry
    "ptbench.pretrain.objectives": "methods",
    # stores: the only Optuna adapter, the only MLflow adapter
    "ptbench.search": "stores",
    "ptbench.tracking": "stores",
    # jobs: one search trial, one final run, one pre-training
    "ptbench.jobs": "jobs",
    "ptbench.final_job": "jobs",
    "ptbench.pretrain.run": "jobs",
    "ptbench.trial": "jobs",  # the composition root: builds one trial from every registry
    # orchestration: the plan (suite loading, checks against the registries, the grid), the run
    # loop, the executors
    "ptbench.suite": "orchestration",
    "ptbench.runner": "orchestration",  # options, dry-run plan, the suite run, run_suite
    "ptbench.preflight": "orchestration",  # before any trial: data loaded, 'run' weights made
    "ptbench.schedule": "orchestration",  # the run loop: cells planned, jobs submitted, cells closed
    "ptbench.executors": "orchestration",
    "ptbench.progress": "orchestration",  # the run loop's display; see the report on issue #11
    "ptbench.rank": "orchestration",  # ptbench rank: estimators over a suite's frozen features
    # interfaces: what people touch
    "ptbench.cli": "interfaces",
    "ptbench.cli_parser": "interfaces",
    "ptbench.catalog": "interfaces",
    "ptbench.leaderboard": "interfaces",
    "ptbench.nightly": "interfaces",  # a night's run, its comparison with history, the report
}

# Cycles between packages that are known and not yet broken, each with why. Shrink, never grow.
PACKAGE_CYCLES_ALLOWED: set[frozenset[str]] = set()

MAX_LINES = 60
# Functions longer than MAX_LINES, not yet split, each with why. Shrink, never grow.
LONG_ALLOWED: dict[str, str] = {
    # "ptbench/some/module.py:function": "why it is not split yet",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _layer(module: str) -> str | None:
    if module in MODULES:
        return MODULES[module]
    parts = module.split(".")
    for n in range(len(parts) - 1, 1, -1):  # longest dotted package first; never the bare root
        if ".".join(parts[:n]) in MODULES:
            return MODULES[".".join(parts[:n])]
    return None


def _target(name: str, known: set[str]) -> str | None:
    """The ptbench module an imported name stands for (the longest known prefix)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """Every ptbench module ``module`` imports, anywhere in the file (inside functions too),
    relative imports resolved, with the line. ``from pkg import sub`` counts the submodule."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            target = _target(name, known)
            if target is not None and target != module:
                out.append((node.lineno, target))
    return out


def _graph() -> dict[str, list[tuple[int, str]]]:
    sources = _sources()
    known = set(sources)
    return {m: _imports(m, p, known) for m, p in sources.items()}


def test_every_module_has_a_layer():
    missing = sorted(m for m in _sources() if _layer(m) is None)
    if missing:
        pytest.fail("modules without a layer (add them to MODULES): " + ", ".join(missing), pytrace=False)


def test_no_module_imports_a_higher_layer():
    rank = {name: i for i, name in enumerate(LAYERS)}
    sources = _sources()
    upward = []
    for module, imports in _graph().items():
        here = _layer(module)
        for line, target in imports:
            there = _layer(target)
            if here and there and rank[there] > rank[here]:
                rel = sources[module].relative_to(ROOT)
                upward.append(f"{rel}:{line}: {module} ({here}) imports {target} ({there})")
    if upward:
        pytest.fail("imports that run up a layer:\n  " + "\n  ".join(upward), pytrace=False)


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_cycle_between_packages():
    edges: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for module, imports in _graph().items():
        for line, target in imports:
            a, b = _package(module), _package(target)
            if a != b:
                edges[a].add(b)
                why.setdefault((a, b), f"{module}:{line} -> {target}")
    found = _cycles(edges)
    lines = []
    for comp in (c for c in found if c not in PACKAGE_CYCLES_ALLOWED):
        ties = [why[(a, b)] for a in sorted(comp) for b in sorted(edges[a] & comp)]
        lines.append(" <-> ".join(sorted(comp)) + ":\n    " + "\n    ".join(ties))
    for comp in PACKAGE_CYCLES_ALLOWED - set(found):
        lines.append(" <-> ".join(sorted(comp)) + ": broken now; remove it from PACKAGE_CYCLES_ALLOWED")
    if lines:
        pytest.fail("cycles between packages:\n  " + "\n  ".join(lines), pytrace=False)


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def test_functions_are_short():
    """From ``def`` to the function's last line, decorators excluded."""
    long = {}
    for path in sorted(PKG.rglob("*.py")):
        for name, node in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_LINES:
                long[f"{path.relative_to(ROOT).as_posix()}:{name}"] = n
    new = {k: n for k, n in long.items() if k not in LONG_ALLOWED}
    gone = sorted(k for k in LONG_ALLOWED if k not in long)
    msg = [f"{k}: {n} lines (at most {MAX_LINES})" for k, n in sorted(new.items())]
    msg += [f"{k}: now short enough; remove it from LONG_ALLOWED" for k in gone]
    if msg:
        pytest.fail("\n  ".join(["function length:", *msg]), pytrace=False)
