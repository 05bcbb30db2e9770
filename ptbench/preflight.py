"""Before any trial: every task loaded once (bad data ends the run at its start) and every
backbone's 'run' weights made or found, so workers never fail one by one on the same problem."""

from __future__ import annotations

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
    """Make (or reuse) every inline pre-training; check that named 'run' weights exist."""
    from ptbench.backbones.build import run_weights_path
    from ptbench.errors import SuiteError
    from ptbench.pretrain.leakage import check_recipes
    from ptbench.pretrain.run import pretrain
    from ptbench.suite.grid import pretrain_spec

    recipes = [
        (f"backbones[{i}].pretrain", {"name": b.pretrain.task, "params": b.pretrain.task_params})
        for i, b in enumerate(suite.axes.backbones)
        if b.weights == "run" and b.pretrain is not None
    ]
    problems = check_recipes(recipes, [{"name": t.name, "params": t.params} for t in suite.axes.tasks])
    if problems:  # before any weights are made or reused: they would carry the test set
        raise SuiteError(problems)
    for bb in suite.axes.backbones:
        if bb.weights != "run":
            continue
        if bb.pretrain is not None:
            spec = pretrain_spec(bb)
            res = pretrain(spec, project, tracking_uri, bb.id or spec.default_name)
            state = "reused" if res.reused else f"made in {res.meta['seconds']:.0f}s"
            print(f"pretrained weights {res.name}: {state}", flush=True)
        else:
            run_weights_path(project / "weights", bb.id)
