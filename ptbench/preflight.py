"""Before any trial: every task loaded once (bad data ends the run at its start) and every
backbone's 'run' weights made or found, so workers never fail one by one on the same problem."""

from __future__ import annotations

import json
from pathlib import Path

from ptbench.suite import Cell, Suite


def check_suite_data(cells: list[Cell]) -> None:
    """Load every task once before any trial: bad data (a truncated image, a CSV row without a
    label) ends the run here with one line per problem naming the file (exit 2), instead of
    failing every trial; the load also warms the decode and split caches the workers read."""
    from ptbench.errors import SuiteError
    from ptbench.tasks import check_data

    problems = check_data(c.task for c in cells)
    if problems:
        raise SuiteError(problems)


def prepare_weights(suite: Suite, project: Path, tracking_uri: str) -> None:
    """Make (or reuse) every inline pre-training; check that named 'run' weights exist, fit the
    suite's backbone as they were made, and — as every recipe — hold none of the suite's test
    examples (the leak check skipped weights named by ``id``)."""
    from ptbench.backbones.build import run_weights_path
    from ptbench.errors import SuiteError
    from ptbench.pretrain.leakage import check_recipes
    from ptbench.pretrain.run import named_weights_problems, pretrain
    from ptbench.suite.grid import pretrain_spec

    recipes, problems = [], []
    for i, b in enumerate(suite.axes.backbones):
        where = f"axes.backbones[{i}]"
        if b.weights == "run" and b.pretrain is not None:
            recipes.append(
                (f"backbones[{i}].pretrain", {"name": b.pretrain.task, "params": b.pretrain.task_params})
            )
        elif b.weights == "run":  # made by 'ptbench pretrain': what made them is in meta.json
            meta_file = run_weights_path(project / "weights", b.id).parent / "meta.json"
            meta = json.loads(meta_file.read_text()) if meta_file.is_file() else None
            problems += named_weights_problems(where, b.name, dict(b.params), meta, b.id)
            if meta is not None and not problems:
                task = {"name": meta["source_task"], "params": meta["spec"].get("task_params", {})}
                recipes.append((f"backbones[{i}] (weights '{b.id}')", task))
    if problems:
        raise SuiteError(problems)
    problems = check_recipes(recipes, [{"name": t.name, "params": t.params} for t in suite.axes.tasks])
    if problems:  # before any weights are made or reused: they would carry the test set
        raise SuiteError(problems)
    for bb in suite.axes.backbones:
        if bb.weights == "run" and bb.pretrain is not None:
            spec = pretrain_spec(bb)
            res = pretrain(spec, project, tracking_uri, bb.id or spec.default_name)
            state = "reused" if res.reused else f"made in {res.meta['seconds']:.0f}s"
            print(f"pretrained weights {res.name}: {state}", flush=True)


def check_remade_weights(suite: Suite, project: Path, tracker) -> None:
    """Weights made again under a name this suite's runs already used (deleted and re-made,
    from other data or another run of the recipe): every cell looked finished, so nothing ran,
    and the leaderboard and the rank truth went on showing the old weights' results under the
    same label. Refused, naming both hashes, before any trial."""
    from ptbench.errors import SuiteError
    from ptbench.suite.grid import pretrain_spec

    exp_id = tracker.experiment_id(suite.name)
    problems = []
    for i, b in enumerate(suite.axes.backbones):
        if b.weights != "run" or exp_id is None:
            continue
        name = b.id or pretrain_spec(b).default_name
        meta = project / "weights" / name / "meta.json"
        sha = json.loads(meta.read_text()).get("sha256", "") if meta.is_file() else ""
        runs = tracker.search(exp_id, f"tags.`ptbench.weights_ref` = '{name}'")
        old = sorted({r.data.tags.get("ptbench.weights_sha256", "") for r in runs} - {sha, ""})
        if sha and old:
            problems.append(
                f"axes.backbones[{i}]: weights '{name}' were made again since this suite ran with them "
                f"(sha256 {old[0][:12]} → {sha[:12]}): the runs recorded are the old weights'; give "
                "the new ones another id, or run in a new project"
            )
    if problems:
        raise SuiteError(problems)
