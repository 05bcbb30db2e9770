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


def check_checkpoints(suite: Suite) -> None:
    """Every ``weights: file`` checkpoint readable, before any trial: a truncated file failed
    each trial that loaded it, and those FAILED trials stayed counted against the budget after
    the file was replaced. One line per bad file (exit 2), as bad data."""
    from ptbench.backbones.weights import WEIGHT_FILES, check_checkpoint
    from ptbench.errors import PtbenchError, SuiteError

    problems, seen = [], set()
    for i, b in enumerate(suite.axes.backbones):
        path = Path(b.path).expanduser() if b.weights == "file" and b.path else None
        if path is None or path in seen:
            continue
        seen.add(path)
        files = [path] if not path.is_dir() else sorted({f for w in WEIGHT_FILES for f in path.glob(w)})
        for f in files:
            try:
                check_checkpoint(f)
            except PtbenchError as err:
                problems.append(f"axes.backbones[{i}]: {err}")
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
            run_weights_path(project / "weights", b.id)  # missing weights: one line naming them
            meta = _made(project, b.id)
            problems += named_weights_problems(where, b.name, dict(b.params), meta, b.id)
            if meta is not None and not problems:
                recipes += _source_of(where, b.id, meta)
    if problems:
        raise SuiteError(problems)
    tasks = [{"name": t.name, "params": t.params} for t in suite.axes.tasks]
    problems = check_recipes(recipes, tasks, shifted="shifted" in suite.evaluation)
    if problems:  # before any weights are made or reused: they would carry the test set
        raise SuiteError(problems)
    for bb in suite.axes.backbones:
        if bb.weights == "run" and bb.pretrain is not None:
            spec = pretrain_spec(bb)
            res = pretrain(spec, project, tracking_uri, bb.id or spec.default_name)
            state = "reused" if res.reused else f"made in {res.meta['seconds']:.0f}s"
            print(f"pretrained weights {res.name}: {state}", flush=True)


def _made(project: Path, name: str) -> dict | None:
    """What made the project's weights ``name`` (their meta.json), or None."""
    meta = project / "weights" / name / "meta.json"
    return json.loads(meta.read_text()) if meta.is_file() else None


def _source_of(where: str, ref: str, meta: dict) -> list[tuple[str, dict]]:
    """The source task named weights were made from, for the leak check — or, where it cannot be
    loaded here (weights made on another machine), a warning that the check was not done."""
    import sys

    from ptbench.errors import first_line
    from ptbench.tasks import load_task

    task = {"name": meta["source_task"], "params": meta["spec"].get("task_params", {})}
    try:
        now = load_task(task).split_hash
    except Exception as err:  # a plugin task, a folder or a Debian dataset absent here
        why = f"cannot be loaded here ({first_line(err, 120)})"
    else:
        if not meta.get("split_hash") or meta["split_hash"] == now:
            return [(f"{where.removeprefix('axes.')} (weights '{ref}')", task)]
        # its files changed since: the examples it trained on are not those read now
        why = f"reads other data now (split hash {meta['split_hash'][:12]} then, {now[:12]} now)"
    print(
        f"warning: {where}: weights '{ref}' were made from task '{task['name']}', which {why}: "
        "not checked for the suite's test examples",
        file=sys.stderr,
        flush=True,
    )
    return []


def check_remade_weights(suite: Suite, project: Path, tracker, night: str | None = None) -> None:
    """Weights made again under a name this suite's finished cells used (deleted and re-made,
    from other data or another run of the recipe): every cell looked finished, so nothing ran,
    and the leaderboard and the rank truth went on showing the old weights' results under the
    same label. Refused, naming both hashes, before any trial. Only the plain runs of cells in
    today's grid count: a night re-runs every cell in its own study, and a cell no longer in
    the grid will not be shown."""
    from ptbench.errors import SuiteError
    from ptbench.suite import expand
    from ptbench.suite.grid import pretrain_spec

    named = {
        i: b.id or pretrain_spec(b).default_name
        for i, b in enumerate(suite.axes.backbones)
        if b.weights == "run"
    }
    if night or not named or tracker.experiment_id(suite.name) is None:
        return
    grid = {c.hash for c in expand(suite)}
    records = [r for r in tracker.runs_records(suite.name) if not r.get("tags.ptbench.night")]
    cells = {
        r["run_id"]
        for r in records
        if r.get("tags.ptbench.kind") == "cell" and r.get("tags.ptbench.cell_hash") in grid
    }
    used: dict[str, set[str]] = {}
    for r in records:
        if (
            r.get("tags.ptbench.kind") == "final"
            and r["status"] == "FINISHED"
            and r.get("tags.mlflow.parentRunId") in cells
        ):
            used.setdefault(r.get("tags.ptbench.weights_ref", ""), set()).add(
                r.get("tags.ptbench.weights_sha256", "")
            )
    problems = []
    for i, name in named.items():
        sha = (_made(project, name) or {}).get("sha256", "")
        old = sorted(used.get(name, set()) - {sha, ""})
        if sha and old:
            problems.append(
                f"axes.backbones[{i}]: weights '{name}' were made again since this suite ran with them "
                f"(sha256 {old[0][:12]} → {sha[:12]}): the runs recorded are the old weights'; give "
                "the new ones another id, or run in a new project"
            )
    if problems:
        raise SuiteError(problems)


def check_searched_here(cells: list[Cell], tracker, exp_id: str, storage_url: str) -> None:
    """A cell whose trials MLflow recorded, with no study in this Optuna storage, was searched in
    another one (a forgotten ``--storage``, a journal moved or deleted): running would start its
    search again from nothing, beside the first search's runs, and rank one against the other.
    Refused in one line naming the storage, before anything is opened. Only the storage is asked
    on a resume (every study is there); MLflow only for cells whose study is missing."""
    from ptbench.errors import PtbenchError, redact
    from ptbench.search import study_names

    known = study_names(storage_url)
    missing = [c for c in cells if c.study_name not in known]
    if not missing:
        return
    night = missing[0].night  # one run: one night (or none)
    flt = "tags.`ptbench.kind` = 'cell'" + (f" and tags.`ptbench.night` = '{night}'" if night else "")
    runs: dict[tuple[str, str], list[str]] = {}  # (cell hash, night) → its cell runs
    for r in tracker.search(exp_id, flt):
        key = (r.data.tags.get("ptbench.cell_hash", ""), r.data.tags.get("ptbench.night", ""))
        runs.setdefault(key, []).append(r.info.run_id)

    def has_trials(run_id: str) -> bool:
        trials = f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`ptbench.kind` = 'trial'"
        return bool(tracker.search(exp_id, trials))

    searched = [c for c in missing if any(has_trials(r) for r in runs.get((c.hash, c.night), []))]
    if searched:
        raise PtbenchError(
            f"{len(searched)} cell(s) (first: {searched[0].describe()}) have trials "
            f"in MLflow but no study in the Optuna storage '{redact(storage_url)}': they were searched "
            "in another storage — pass it (--storage or storage.url); to search again from nothing, "
            "use another --project-dir"
        )
