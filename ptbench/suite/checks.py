"""Checks of a schema-valid suite against the registries: names, modalities, search spaces."""

from __future__ import annotations

from pathlib import Path

from ptbench.hashing import stable_hash
from ptbench.schema import Dist, Suite, matches
from ptbench.suite.effects import effect_problems, space_problems
from ptbench.suite.execution import execution_problems
from ptbench.suite.grid import TRAINER_SPACE, combinations, expand
from ptbench.train.recipe import TRAINER_LIMITS


def registry_problems(suite: Suite, sources: bool = True, grid: bool = True) -> list[str]:
    """Every problem of a schema-valid suite against the registries, one line each naming its
    field. Names and params come first; the whole grid is checked only once they are all known
    (and ``grid``: not when a checkpoint glob matched nothing — the grid lacks its backbones, so
    "the rules leave no cell" or "matches no cell" would blame rules that are fine).
    ``sources=False`` leaves out whether the data and checkpoint files are here: commands that
    only read results (leaderboard, history, ui) work where the data is gone or never was."""
    problems = [
        *_backbone_problems(suite, sources),
        *_task_problems(suite, sources),
        *_method_problems(suite),
        *_corruption_problems(suite),
        *_select_problems(suite),
        *_duplicate_problems(suite),
        *execution_problems(suite.execution),
    ]
    for key in ("include", "exclude"):
        for i, rule in enumerate(getattr(suite, key)):
            if not rule:
                problems.append(f"{key}[{i}]: an empty rule would match every cell")
    if problems or not grid:
        return problems
    problems = [
        *space_problems(suite),
        *_limit_problems(suite),
        *_pair_problems(suite),
        *_rule_problems(suite),
    ]
    if not problems:
        cells = expand(suite)
        if not cells:
            problems.append("include/exclude: the rules leave no cell in the grid")
        problems += _combination_problems(cells) + _label_problems(cells) + effect_problems(suite, cells)
    return problems


def _backbone_problems(suite: Suite, sources: bool = True) -> list[str]:
    from ptbench.backbones import BACKBONES

    problems: list[str] = []
    for i, b in enumerate(suite.axes.backbones):
        where = f"axes.backbones[{i}]"
        if b.name not in BACKBONES:
            problems.append(f"{where}: {BACKBONES.unknown(b.name)}")
            continue
        entry = BACKBONES.get(b.name)
        kinds = entry.meta.get("weights", ("none",))
        if "file" in kinds:
            kinds = (*kinds, "run")  # ptbench-made weights load like a file
        if b.weights not in kinds:
            problems.append(
                f"{where}.weights: backbone '{b.name}' has no '{b.weights}' weights "
                f"(available: {', '.join(kinds)})"
            )
        problems += _param_problems(where, b.params, entry.meta.get("params", {}), "backbone", b.name)
        if sources and b.weights == "file" and not Path(b.path).expanduser().exists():  # trials fail
            problems.append(f"{where}.path: {b.path} does not exist")
        if b.params.get("size") == "small" and b.weights in ("hub", "package"):  # the weights' own size
            problems.append(
                f"{where}.params.size: {b.weights} weights are the full model; size: small applies to "
                "weights none, file and run"
            )
        if b.params.get("transform_input") is False and b.weights == "hub":
            problems.append(
                f"{where}.params.transform_input: torchvision's hub weights were trained with it "
                "(true); false applies to weights none, file and run"
            )
        problems += _hub_id_problems(where, b, entry.meta)
        if b.pretrain is not None:
            problems += _pretrain_problems(f"{where}.pretrain", b.pretrain, b.name, b.params)
    return problems


def _hub_id_problems(where: str, b, meta: dict) -> list[str]:
    """A hub ``id`` the family would not load as named: ignored (alexnet, googlenet ran their
    default weights) or failing every trial (a torchaudio bundle of another kind)."""
    allowed = meta.get("hub_ids")
    if b.weights != "hub" or not b.id or allowed is None or b.id in allowed:
        return []
    if not allowed:
        why = "its hub weights are always its library's default"
        return [f"{where}.id: backbone '{b.name}' takes no hub id: {why}"]
    return [f"{where}.id: backbone '{b.name}' has no hub weights '{b.id}' (available: {', '.join(allowed)})"]


def _task_problems(suite: Suite, sources: bool = True) -> list[str]:
    from ptbench.tasks import TASKS, task_modality

    problems: list[str] = []
    for i, t in enumerate(suite.axes.tasks):
        if t.name not in TASKS:
            problems.append(f"axes.tasks[{i}]: {TASKS.unknown(t.name)}")
            continue
        entry = TASKS.get(t.name)
        problems += _param_problems(
            f"axes.tasks[{i}]", t.params, entry.meta.get("params", {}), "task", t.name
        )
        if sources and "path" in t.params and not Path(str(t.params["path"])).expanduser().exists():
            problems.append(f"axes.tasks[{i}].params.path: {t.params['path']} does not exist")
        if task_modality(t.name, t.params) is None:
            key = entry.meta["modality_param"]
            problems.append(
                f"axes.tasks[{i}].params.{key}: task '{t.name}' needs it "
                f"(one of {', '.join(entry.meta['params'][key].choices)})"
            )
        missing = sources and entry.meta.get("available", lambda: None)()
        if missing:
            problems.append(f"axes.tasks[{i}]: task '{t.name}' is not available here: {missing}")
    return problems


def _duplicate_problems(suite: Suite) -> list[str]:
    """An axis value listed twice (every cell it makes is planned twice, run once) and a
    regularizer twice in one stack (one setting silently wins)."""
    ax, problems = suite.axes, []
    for axis in ("backbones", "tasks", "strategies", "regularizers"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(ax, axis)):
            key = stable_hash(
                item.model_dump() if hasattr(item, "model_dump") else [r.model_dump() for r in item]
            )
            if key in seen:
                problems.append(f"axes.{axis}[{i}]: the same as axes.{axis}[{seen[key]}]")
            seen.setdefault(key, i)
    for i, stack in enumerate(ax.regularizers):
        names = [r.name for r in stack]
        for j, name in enumerate(names):
            if name in names[:j]:
                problems.append(f"axes.regularizers[{i}][{j}]: '{name}' is already in this stack")
    return problems


def _method_problems(suite: Suite) -> list[str]:
    """Unknown strategies and regularizers, and params their search spaces do not name (a
    strategy may also fix trainer settings for itself: probe 20 epochs, fine-tune 6)."""
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES

    problems: list[str] = []
    for i, s in enumerate(suite.axes.strategies):
        if s.name not in STRATEGIES:
            problems.append(f"axes.strategies[{i}]: {STRATEGIES.unknown(s.name)}")
        else:
            known = TRAINER_SPACE | STRATEGIES.get(s.name).space  # e.g. a fine-tune's own epochs
            problems += _param_problems(f"axes.strategies[{i}]", s.params, known, "strategy", s.name)
    for i, stack in enumerate(suite.axes.regularizers):
        for j, r in enumerate(stack):
            where = f"axes.regularizers[{i}][{j}]"
            if r.name not in REGULARIZERS:
                problems.append(f"{where}: {REGULARIZERS.unknown(r.name)}")
            else:
                space = REGULARIZERS.get(r.name).space
                problems += _param_problems(where, r.params, space, "regularizer", r.name)
    return problems


def _select_problems(suite: Suite) -> list[str]:
    """The funnel's estimator must score from features alone, and have something to choose among."""
    sel = suite.axes.select
    if sel is None:
        return []
    from ptbench.evaluate.transferability import ESTIMATORS, reads_source

    if sel.by not in ESTIMATORS:
        return [f"axes.select.by: {ESTIMATORS.unknown(sel.by)}"]
    if reads_source(sel.by):
        usable = ", ".join(n for n in ESTIMATORS.names() if not reads_source(n))
        return [
            f"axes.select.by: '{sel.by}' needs a source classifier, which random-init and "
            f"self-supervised backbones lack, so it cannot choose among all; choose one of {usable}"
        ]
    if all(b.weights == "none" for b in suite.axes.backbones):
        return ["axes.select: every backbone is random-init (weights: none): nothing to select among"]
    return []


def _corruption_problems(suite: Suite) -> list[str]:
    if suite.robustness.corruptions == "all":
        return []
    from ptbench.evaluate.corruptions import CORRUPTIONS
    from ptbench.tasks import TASKS, task_modality

    known = [t for t in suite.axes.tasks if t.name in TASKS]
    modalities = {task_modality(t.name, t.params) for t in known}
    problems = []
    if not suite.robustness.corruptions:
        problems.append(
            "robustness.corruptions: an empty list evaluates no corruption; use 'all' or name some"
        )
    for i, name in enumerate(suite.robustness.corruptions):
        if name not in CORRUPTIONS:
            problems.append(f"robustness.corruptions[{i}]: {CORRUPTIONS.unknown(name)}")
        elif len(known) == len(suite.axes.tasks) and None not in modalities:
            modality = CORRUPTIONS.get(name).meta["modality"]
            if modality not in modalities:
                problems.append(
                    f"robustness.corruptions[{i}]: '{name}' corrupts {modality} inputs and the "
                    f"suite has no {modality} task"
                )
    return problems


def _rule_problems(suite: Suite) -> list[str]:
    """A rule that matches no cell of the grid is a typo (``strategy: linear_prob``): an exclude
    that excludes nothing, an include that would leave nothing, an mCE reference that names no
    cell (mCE then silently left empty)."""
    combos = [rule_labels for *_, rule_labels in combinations(suite)]
    problems = [
        f"{key}[{i}]: matches no cell of the grid ({_rule(rule)})"
        for key in ("include", "exclude")
        for i, rule in enumerate(getattr(suite, key))
        if not any(matches(rule, labels) for labels in combos)
    ]
    ref = suite.robustness.reference
    if ref and not any(matches(ref, c.labels | _names(c)) for c in expand(suite)):
        problems.append(f"robustness.reference: matches no cell of the grid ({_rule(ref)})")
    return problems


def _rule(rule: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in rule.items())


def _names(cell) -> dict[str, str]:
    return {"backbone": cell.backbone["name"], "task": cell.task["name"], "strategy": cell.strategy["name"]}


def _limit_problems(suite: Suite) -> list[str]:
    """Values the trainer cannot take, fixed or within a search range, wherever a suite sets
    them (search.space, a strategy's or a regularizer's params): each failed every trial, or was
    silently read as another (an unknown optimizer ran AdamW, mixup_alpha 0 ran no mixup)."""
    from ptbench.params import limit_problem
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES

    limits = dict(TRAINER_LIMITS)
    for e in (*STRATEGIES, *REGULARIZERS):
        limits |= e.meta.get("limits", {})
    places = [("search.space", suite.search.space)]
    places += [(f"axes.strategies[{i}].params", s.params) for i, s in enumerate(suite.axes.strategies)]
    places += [
        (f"axes.regularizers[{i}][{j}].params", r.params)
        for i, stack in enumerate(suite.axes.regularizers)
        for j, r in enumerate(stack)
    ]
    problems = []
    for where, values in places:
        for key, value in values.items():
            if key in limits and (why := limit_problem(limits[key], value)) is not None:
                problems.append(f"{where}.{key}: {why}")
    return problems


def _pair_problems(suite: Suite) -> list[str]:
    """Backbone × task pairs of different modalities (not excluded), and strategies that cannot
    apply to a backbone."""
    from ptbench.backbones import BACKBONES
    from ptbench.strategies import STRATEGIES
    from ptbench.tasks import task_modality

    ax, problems = suite.axes, []
    for i, b in enumerate(ax.backbones):
        bmod = BACKBONES.get(b.name).meta["modality"]
        for j, t in enumerate(ax.tasks):
            tmod = task_modality(t.name, t.params)
            if bmod != tmod and not any(
                matches(rule, {"backbone": b.name, "task": t.name}) for rule in suite.exclude
            ):
                problems.append(
                    f"axes.backbones[{i}] × axes.tasks[{j}]: {bmod} backbone '{b.name}' cannot run "
                    f"the {tmod} task '{t.name}' (add an exclude rule for the pair)"
                )
    for i, s in enumerate(ax.strategies):
        check = STRATEGIES.get(s.name).meta.get("applies")
        for b in ax.backbones if check else ():
            reason = check(BACKBONES.get(b.name))
            if reason:
                problems.append(f"axes.strategies[{i}]: '{s.name}' cannot apply to '{b.name}': {reason}")
    return problems


def _param_problems(where: str, params: dict, known: dict, kind: str, name: str) -> list[str]:
    """Unknown names, and values a typed ``Param`` refuses (a bare help string, or a search-space
    entry, accepts any value): one line each, naming the field, before any worker starts."""

    from ptbench.params import params_problems

    return [
        f"{where}.params.{k}: {why}" for k, why in params_problems(params, known, kind, name, _value_problem)
    ]


def _value_problem(known, value) -> str | None:
    """What is wrong with a param's value: a typed ``Param`` refuses it, or it is a search range
    (searched for that item alone) that is not a valid one."""
    from pydantic import ValidationError

    from ptbench.params import param_problem

    if not (isinstance(value, dict) and "type" in value):
        return param_problem(known, value)
    try:
        Dist.model_validate(value)
    except ValidationError as err:
        e = err.errors()[0]
        return f"search range: {e['msg'].removeprefix('Value error, ')}"
    return None


def _pretrain_problems(where: str, p, backbone: str, params: dict) -> list[str]:
    from ptbench.backbones import BACKBONES
    from ptbench.pretrain import OBJECTIVES, objective_problem, recipe_problems
    from ptbench.tasks import TASKS, task_modality

    if p.objective not in OBJECTIVES:
        return [f"{where}.objective: {OBJECTIVES.unknown(p.objective)}"]
    if p.task not in TASKS:
        return [f"{where}.task: {TASKS.unknown(p.task)}"]
    problem = objective_problem(p.objective, backbone)
    if problem:
        return [f"{where}.objective: {problem}"]
    modality = BACKBONES.get(backbone).meta["modality"]
    if task_modality(p.task, p.task_params) != modality:
        return [f"{where}.task: '{p.task}' is not a {modality} task"]
    found = recipe_problems(backbone, p.objective, p.task, params, p.task_params, p.model_fields_set, p.lr)
    base = where.removesuffix(".pretrain")  # a backbone param is the backbone's field
    return [f"{base if k.startswith('params.') else where}.{k}: {why}" for k, why in found]


def _label_problems(cells) -> list[str]:
    """Two different backbones under one label: every table, and the funnel, would merge them."""
    from ptbench.hashing import stable_hash

    seen: dict[str, set[str]] = {}
    for c in cells:
        seen.setdefault(c.labels["backbone"], set()).add(stable_hash(c.backbone))
    return [
        f"axes.backbones: {len(specs)} different backbones share the label '{label}': tables and the "
        "funnel could not tell them apart (give each its own params, path or id)"
        for label, specs in seen.items()
        if len(specs) > 1
    ]


def _combination_problems(cells) -> list[str]:
    """Strategy × regularizer × backbone combinations that cannot mean what they say."""
    from ptbench.backbones import BACKBONES
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES

    out: list[str] = []
    for cell in cells:
        strat = STRATEGIES.get(cell.strategy["name"])
        bb = BACKBONES.get(cell.backbone["name"])
        for reg in cell.regularizers:
            meta = REGULARIZERS.get(reg["name"]).meta
            if strat.meta.get("features") and meta.get("raw_inputs"):
                line = (
                    f"regularizer '{reg['name']}' needs the backbone to run on raw inputs, but "
                    f"'{strat.name}' trains on cached features (exclude the pair)"
                )
            elif meta.get("modalities") and bb.meta["modality"] not in meta["modalities"]:
                line = (
                    f"regularizer '{reg['name']}' is for {'/'.join(meta['modalities'])} "
                    f"inputs, not the {bb.meta['modality']} backbone '{bb.name}'"
                )
            elif meta.get("continuous") and bb.meta["modality"] == "text" and not strat.meta.get("features"):
                line = (
                    f"regularizer '{reg['name']}' blends inputs, and '{strat.name}' feeds the text "
                    f"backbone '{bb.name}' token ids (on text it applies to linear_probe's features)"
                )
            elif meta.get("backbone_param") and meta["backbone_param"] not in bb.meta.get("params", {}):
                line = f"regularizer '{reg['name']}' is not supported inside backbone '{bb.name}'"
            else:
                continue
            if line not in out:
                out.append(line)
    return out
