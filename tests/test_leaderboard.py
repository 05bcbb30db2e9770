"""Leaderboards claim nothing the runs do not show: no ≈ without seeds to test, a named mCE
reference, every cell accounted for when some or all failed, and per-job peak memory.

Runs are written to a real SQLite MLflow store through ``Tracker`` with the tags and params
the jobs write (``cell_params`` of real cells from a real suite file), then read back by
``build_leaderboard`` and rendered in every format."""

from __future__ import annotations

import copy
import csv
import re
from pathlib import Path

import pytest
from conftest import TINY, ptbench, write_suite

from ptbench.jobs import cell_params
from ptbench.leaderboard import build_leaderboard, render, write_outputs
from ptbench.suite import expand, load_suite
from ptbench.tracking import Tracker

FORMATS = ("table", "csv", "md", "html")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Tracker, Path]:
    """One SQLite store for the module; each test writes its own suite (experiment)."""
    tmp = tmp_path_factory.mktemp("store")
    return Tracker(f"sqlite:///{tmp}/mlflow.db"), tmp


def grid(tmp: Path, name: str, **changes) -> dict[tuple[str, str, str], object]:
    """The real cells of the tiny suite named ``name``, by (task, strategy, regularizer)."""
    cells = expand(load_suite(write_suite(tmp / f"{name}.yaml", name=name, **changes)))
    return {(c.labels["task"], c.labels["strategy"], c.labels["regularizer"]): c for c in cells}


def record(
    tracker: Tracker,
    cell,
    trials: list,
    finals: list[dict],
    failed_finals: list[str] = (),
    again: list[dict] = (),
    night: str = "",
    suite_hash: str = "",
):
    """A cell run with its trial and final runs, tagged and closed as the runner and jobs do.
    ``trials``: a validation accuracy (complete) or an error message (failed), per trial;
    ``again``: seeds 0, 1, … recorded a second time, later; ``night``: of that night, under the
    suite run of ``suite_hash`` (the grid's: an edited suite opens another)."""
    exp = tracker.experiment(cell.suite)
    at = {"ptbench.night": night} if night else {}
    key = {"ptbench.kind": "suite", "ptbench.night": night, "ptbench.suite_hash": suite_hash}
    suite_run = tracker.ensure_run(exp, cell.suite, key, at)
    cell_tags = {"ptbench.kind": "cell", "ptbench.cell_hash": cell.hash, **at}
    cell_tags |= {"ptbench.suite_run": suite_run} if night else {}
    cell_run = tracker.start_run(exp, cell.describe(), cell_tags, parent=suite_run)
    tracker.log_params(cell_run, cell_params(cell))

    def job(kind: str, seed: int, number: int) -> str:
        run = tracker.start_run(
            exp,
            f"{kind}-{number}",
            {"ptbench.kind": kind, "ptbench.cell_hash": cell.hash, "ptbench.seed": seed, **at},
            parent=cell_run,
        )
        tracker.log_params(run, cell_params(cell) | {"seed": seed})
        tracker.set_tags(run, {"ptbench.split_hash": "abc"})
        return run

    for i, t in enumerate(trials):
        run = job("trial", 0, i)
        if isinstance(t, str):
            tracker.set_tags(run, {"ptbench.state": "failed", "ptbench.error": t})
            tracker.end(run, "FAILED")
        else:
            tracker.log_metrics(run, {"val_accuracy": t})
            tracker.set_tags(run, {"ptbench.state": "complete"})
            tracker.end(run, "FINISHED")
    for seed, metrics in enumerate(finals):
        run = job("final", seed, seed)
        tracker.log_metrics(run, {"train_seconds": 1.0 + seed, "peak_mem_mb": 10.0} | metrics)
        tracker.set_tags(run, {"ptbench.state": "complete"})
        tracker.end(run, "FINISHED")
    for seed, metrics in enumerate(again):
        run = job("final", seed, 100 + seed)
        tracker.log_metrics(run, {"train_seconds": 1.0, "peak_mem_mb": 10.0} | metrics)
        tracker.end(run, "FINISHED")
    for seed, err in enumerate(failed_finals, start=len(finals)):
        run = job("final", seed, seed)
        tracker.set_tags(run, {"ptbench.state": "failed", "ptbench.error": err})
        tracker.end(run, "FAILED")
    vals = [t for t in trials if not isinstance(t, str)]
    if vals:
        tracker.log_metrics(cell_run, {"best_val_accuracy": max(vals)})
    else:
        tracker.set_tags(cell_run, {"ptbench.state": "no completed trial"})
    tracker.end(cell_run, "FINISHED" if vals else "FAILED")


def outputs(boards, tmp: Path, suite: str) -> dict[str, str]:
    """Every format, written the way ``ptbench leaderboard`` writes them (HTML with its plots)."""
    return {fmt: write_outputs(boards, suite, fmt, results_dir=tmp)[0].read_text() for fmt in FORMATS}


def marks(text: str, fmt: str) -> list[str]:
    """The contents of every table cell in one rendered format (headers and notes excluded)."""
    if fmt == "csv":
        return [v for r in csv.DictReader(text.splitlines()) for v in r.values() if v]
    if fmt == "html":
        return re.findall(r"<td>(.*?)</td>", text)
    sep = "|" if fmt == "md" else "│"
    return [c.strip() for line in text.splitlines() if line.startswith(sep) for c in line.split(sep)[1:-1]]


def generalization(boards) -> dict[tuple[str, str], dict]:
    g = boards[0].views["generalization"]
    return {(r["strategy"], r["regularizer"]): r for r in g.to_dict("records")}


def test_one_seed_marks_no_cell_close_to_the_best_in_any_format(store):
    tracker, tmp = store
    cells = grid(tmp, "one_seed")
    accs = {"full_finetune": 0.75, "linear_probe": 0.17}
    for (_, strategy, reg), cell in cells.items():
        acc = accs[strategy] - (0.01 if reg != "none" else 0)
        record(tracker, cell, [0.5, 0.6], [{"test_accuracy": acc}])
    boards = build_leaderboard(tracker.uri, "one_seed")
    g = generalization(boards)
    assert g[("full_finetune", "none")]["≈best"] == "best"
    assert g[("linear_probe", "none")]["≈best"] == "n/a (1 seed)"  # 0.17 is never '≈' 0.75
    assert {r["≈best"] for r in g.values()} == {"best", "n/a (1 seed)"}
    for fmt, text in outputs(boards, tmp, "one_seed").items():
        shown = marks(text, fmt)
        assert "≈" not in shown and shown.count("n/a (1 seed)") == 3, fmt


def test_a_seed_recorded_twice_counts_once(store):
    """A worker killed after recording its final run but before closing its claim runs the seed
    again: the board counts the first run of each seed, not a fourth seed that narrows the
    interval."""
    tracker, tmp = store
    cells = grid(tmp, "twice")
    for (_, strategy, _reg), cell in cells.items():
        first = [{"test_accuracy": a} for a in (0.80, 0.82, 0.84)]
        record(
            tracker,
            cell,
            [0.5],
            first,
            again=[{"test_accuracy": 0.99}] if strategy == "full_finetune" else [],
        )
    g = generalization(build_leaderboard(tracker.uri, "twice"))
    assert {r["seeds"] for r in g.values()} == {3}
    assert g[("full_finetune", "none")]["test_acc"] == g[("linear_probe", "none")]["test_acc"]


def test_three_seeds_mark_close_cells_by_welchs_test(store):
    from scipy import stats

    tracker, tmp = store
    cells = grid(tmp, "three_seeds")
    best, close, far = [0.90, 0.92, 0.94], [0.88, 0.91, 0.93], [0.80, 0.81, 0.83]
    # Welch's one-sided p, by scipy: the close cell cannot be told apart, the far one can
    assert stats.ttest_ind(close, best, equal_var=False, alternative="less").pvalue >= 0.05
    assert stats.ttest_ind(far, best, equal_var=False, alternative="less").pvalue < 0.05
    runs = {
        ("full_finetune", "none"): best,
        ("full_finetune", "label_smoothing"): close,
        ("linear_probe", "none"): far,
        ("linear_probe", "label_smoothing"): [0.91],  # one seed: no interval, no test
    }
    for (_, strategy, reg), cell in cells.items():
        record(tracker, cell, [0.5], [{"test_accuracy": a} for a in runs[(strategy, reg)]])
    g = generalization(build_leaderboard(tracker.uri, "three_seeds"))
    assert g[("full_finetune", "none")]["≈best"] == "best"
    assert g[("full_finetune", "label_smoothing")]["≈best"] == "≈"
    assert g[("linear_probe", "none")]["≈best"] == ""  # significantly worse
    assert g[("linear_probe", "label_smoothing")]["≈best"] == "n/a (1 seed)"


def corr(clean: float, noise: float, contrast: float) -> dict[str, float]:
    mean = (noise + contrast) / 2
    return {
        "test_accuracy": clean,
        "corr_clean_accuracy": clean,
        "corr_gaussian_noise_s1_accuracy": noise,
        "corr_contrast_s1_accuracy": contrast,
        "corr_mean_accuracy": mean,
        "corr_relative": mean / clean if clean else float("nan"),
    }


@pytest.mark.parametrize("order", [1, -1], ids=["written-in-grid-order", "written-reversed"])
def test_mce_reference_is_chosen_by_a_rule_and_named_in_every_format(store, order):
    tracker, tmp = store
    name = f"mce_{'fwd' if order == 1 else 'rev'}"
    cells = grid(tmp, name)
    acc = {
        ("linear_probe", "none"): corr(0.8, 0.6, 0.5),  # errors 0.4 and 0.5: the reference
        ("linear_probe", "label_smoothing"): corr(0.8, 0.7, 0.7),  # also matches the rule
        ("full_finetune", "none"): corr(0.9, 0.8, 0.75),
        ("full_finetune", "label_smoothing"): corr(0.0, 0.0, 0.0),  # clean 0: relative is NaN
    }
    for key in list(cells)[::order]:
        record(tracker, cells[key], [0.5], [acc[key[1:]]])
    boards = build_leaderboard(tracker.uri, name, {"strategy": "linear_probe"})
    ref = next(c.hash for k, c in cells.items() if k[1:] == ("linear_probe", "none"))
    rob = {(r["strategy"], r["regularizer"]): r for r in boards[0].views["robustness"].to_dict("records")}
    assert rob[("linear_probe", "none")]["mCE"] == pytest.approx(1.0)
    assert rob[("full_finetune", "none")]["mCE"] == pytest.approx((0.2 / 0.4 + 0.25 / 0.5) / 2)
    assert rob[("linear_probe", "label_smoothing")]["mCE"] == pytest.approx((0.3 / 0.4 + 0.3 / 0.5) / 2)
    assert (
        rob[("full_finetune", "label_smoothing")]["relative"]
        != rob[("full_finetune", "label_smoothing")]["relative"]
    )  # NaN, shown as "—", never 0
    note = [n for n in boards[0].notes if n.startswith("mCE reference")]
    assert len(note) == 1 and f"(cell {ref})" in note[0] and "linear_probe none" in note[0]
    assert "2 cells match it" in note[0]
    for fmt, text in outputs(boards, tmp, name).items():
        assert f"mCE reference: test_efficientnet@none linear_probe none (cell {ref})" in text, fmt


def test_one_page_over_several_suites_keeps_each_suites_ranking_and_mce_reference(store):
    """A question split per modality (one suite each) reads as one page: ``ptbench leaderboard
    A B --page P`` writes results/P/ with every suite's boards, each with its own mCE yardstick,
    and logs the page to each suite's run."""
    tracker, tmp = store
    refs = {"page_a": "linear_probe", "page_b": "full_finetune"}
    paths = []
    for name, strategy in refs.items():
        tracker.experiment(name, tmp / "artifacts")  # the pages land here, not in ./mlruns
        cells = grid(tmp, name, robustness={"reference": {"strategy": strategy, "regularizer": "none"}})
        for key, cell in cells.items():
            record(tracker, cell, [0.5], [corr(0.8, 0.6, 0.5) if key[1] == strategy else corr(0.9, 0.8, 0.8)])
        paths.append(str(tmp / f"{name}.yaml"))
    args = ("leaderboard", *paths, "--tracking-uri", tracker.uri, "--format", "md")
    refused = ptbench(*args, cwd=tmp)
    assert refused.returncode == 2 and "--page NAME" in refused.stderr and "Traceback" not in refused.stderr
    out = ptbench(*args, "--page", "both", cwd=tmp)
    assert out.returncode == 0, out.stderr
    page = (tmp / "results" / "both" / "leaderboard.md").read_text()
    titles = re.findall(r"^## (.+)$", page, re.M)
    assert [t.split(":")[0] for t in titles] == ["page_a", "page_b"]  # both suites' digits board
    for name, strategy in refs.items():
        assert re.search(rf"mCE reference: test_efficientnet@none {strategy} none", page), name
        exp = tracker.experiment_id(name)
        suite_run = tracker.find_run(exp, **{"ptbench.kind": "suite", "ptbench.night": ""})
        logged = tracker.client.list_artifacts(suite_run.info.run_id, "leaderboard/both")
        assert [a.path for a in logged] == ["leaderboard/both/leaderboard.md"]


def test_partial_and_failed_cells_are_listed_never_dropped(store):
    tracker, tmp = store
    tasks = [
        TINY["axes"]["tasks"][0],
        {"name": "digits", "params": {"train_size": 150, "val_size": 100, "test_size": 100}},
    ]
    cells = grid(tmp, "partial", axes={**TINY["axes"], "tasks": tasks})
    nan = "TrialError: non-finite training loss (nan) in epoch 0"
    for (_, strategy, reg), cell in cells.items():
        if cell.task["params"].get("train_size") == 150:  # the second task: every trial failed
            record(tracker, cell, [nan, nan], [])
        elif (strategy, reg) == ("full_finetune", "none"):  # finished, 2 seeds
            record(tracker, cell, [0.7, 0.8], [{"test_accuracy": 0.9}, {"test_accuracy": 0.92}])
        elif strategy == "full_finetune":  # searched, but every final run failed
            record(tracker, cell, [0.7], [], ["RuntimeError: out of memory"] * 2)
        else:
            record(tracker, cell, [nan, "ValueError: bad"], [])
    boards = build_leaderboard(tracker.uri, "partial")
    assert len(boards) == 2
    done, failed = sorted(boards, key=lambda b: "train_size=150" in b.title)
    assert len(done.views["generalization"]) == 1
    left = {(r["strategy"], r["regularizer"]): r for r in done.views["unfinished"].to_dict("records")}
    assert set(left) == {
        ("full_finetune", "label_smoothing"),
        ("linear_probe", "none"),
        ("linear_probe", "label_smoothing"),
    }
    assert left[("full_finetune", "label_smoothing")]["finals_failed"] == 2
    assert left[("full_finetune", "label_smoothing")]["error"] == "RuntimeError: out of memory (×2)"
    assert left[("linear_probe", "none")]["state"] == "failed: no completed trial"
    assert left[("linear_probe", "none")]["error"] == f"{nan}; +1 other error"
    assert left[("linear_probe", "none")]["trials"] == 2 and left[("linear_probe", "none")]["failed"] == 2
    assert list(failed.views) == ["unfinished"] and len(failed.views["unfinished"]) == 4
    assert any(n.startswith("no cell finished") for n in failed.notes)
    for fmt, text in outputs(boards, tmp, "partial").items():
        assert "no cell finished" in text and "RuntimeError: out of memory (×2)" in text, fmt
        assert text.count("failed: no completed trial") >= 6, fmt
    assert "no cell finished" in render(boards, "table")


@pytest.mark.parametrize("form", ["structured", "string"])
def test_a_minimized_objective_ranks_trials_by_its_direction_in_new_and_old_stores(store, form):
    """Cells record their objective as params ``objective.metric`` and ``objective.direction``;
    stores written before that carry one param, ``objective: "minimize val_loss"``. Both read."""
    tracker, tmp = store
    search = {**TINY["search"], "objective": {"metric": "val_loss", "direction": "minimize"}}
    cell = next(iter(grid(tmp, f"minimize-{form}", search=search).values()))
    params = cell_params(cell)
    assert {"objective.metric": "val_loss", "objective.direction": "minimize"}.items() <= params.items()
    if form == "string":
        params = {k: v for k, v in params.items() if not k.startswith("objective.")}
        params["objective"] = "minimize val_loss"
    exp = tracker.experiment(cell.suite)
    cell_run = tracker.start_run(
        exp, cell.describe(), {"ptbench.kind": "cell", "ptbench.cell_hash": cell.hash}
    )
    tracker.log_params(cell_run, params)
    for i, loss in enumerate([0.5, 0.2, 0.9]):
        run = tracker.start_run(
            exp, f"trial-{i}", {"ptbench.kind": "trial", "ptbench.cell_hash": cell.hash}, parent=cell_run
        )
        tracker.log_params(run, params)
        tracker.log_metrics(run, {"val_loss": loss})
        tracker.set_tags(run, {"ptbench.state": "complete"})
        tracker.end(run, "FINISHED")
    tracker.end(cell_run, "FINISHED")
    (row,) = build_leaderboard(tracker.uri, f"minimize-{form}")[0].views["unfinished"].to_dict("records")
    assert row["val_best"] == 0.2 and row["trials"] == 3


@pytest.mark.slow
def test_a_suite_whose_cells_all_failed_ends_with_a_board_that_says_so(tmp_path):
    """The real CLI: every trial fails (a backbone whose loss is NaN), so no cell has a final run."""
    data = copy.deepcopy(TINY)
    data["axes"]["backbones"] = [{"name": "nan_net", "params": {"input_size": 16}}]
    data["axes"]["strategies"] = ["full_finetune"]
    data["axes"]["regularizers"] = ["none", ["label_smoothing"]]
    data["search"]["trials"] = 1
    data["seeds"] = [0]
    suite = write_suite(tmp_path / "broken.yaml", data, name="broken")
    out = ptbench(
        "run",
        str(suite),
        "--project-dir",
        str(tmp_path / "proj"),
        "--no-progress",
        cwd=tmp_path,
        env={"PTBENCH_PLUGINS": "ptbench_testplugin"},
    )
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "no cell finished" in out.stdout and "non-finite training loss" in out.stdout
    for ext in ("csv", "md", "html"):
        text = (tmp_path / "results" / "broken" / f"leaderboard.{ext}").read_text()
        assert "no cell finished" in text and text.count("failed: no completed trial") == 2, ext


def test_peak_memory_is_per_job_not_the_workers_lifetime_peak():
    """A big job, then a small one in the same process: the small one reports small."""
    import torch

    from ptbench.trial import TrialConfig, run_trial

    cfg = TrialConfig(
        {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}},
        {"name": "digits", "params": {"train_size": 200, "val_size": 100, "test_size": 100}},
        {"name": "linear_probe"},
        [],
        {"epochs": 1},
    )
    held: list = []
    big = run_trial(cfg, on_ready=lambda info: held.append(torch.ones(64 * 2**20)))  # 256 MiB
    held.clear()
    small = run_trial(cfg)
    assert big.metrics["peak_mem_mb"] >= 250
    assert small.metrics["peak_mem_mb"] < 64  # was the process's lifetime peak: ≥ 256


@pytest.mark.parametrize("kernel_peak", [True, False], ids=["kernel-high-water-mark", "sampler-thread"])
def test_job_memory_measures_each_job_above_its_start(kernel_peak):
    import torch

    from ptbench.train.memory import JobMemory

    m = JobMemory("cpu", kernel_peak=kernel_peak)
    big = torch.ones(32 * 2**20)  # 128 MiB, held to the job's end
    assert m.peak_mb() >= 120
    m = JobMemory("cpu", kernel_peak=kernel_peak)  # the big tensor is still held: not this job's
    small = torch.ones(2**18)  # 1 MiB
    assert m.peak_mb() < 32
    del big, small


def test_backbones_that_differ_only_in_params_are_told_apart_in_every_view(store):
    """Two sizes of one network (MiniLM at 3 and at 6 layers; a recipe run for 1 and for 3
    epochs) are two rows a reader can tell apart, not two identical-looking ones; a backbone
    with no such twin keeps its short name."""
    tracker, tmp = store
    backbones = [
        {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}},
        {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 24}},
        {"name": "efficientnet_lite0", "weights": "none", "params": {"input_size": 32}},
    ]
    axes = TINY["axes"] | {"backbones": backbones, "strategies": ["linear_probe"], "regularizers": ["none"]}
    cells = expand(load_suite(write_suite(tmp / "twins.yaml", name="twins", axes=axes)))
    for i, cell in enumerate(cells):
        record(tracker, cell, [0.5], [{"test_accuracy": 0.6 + i / 10}, {"test_accuracy": 0.61 + i / 10}])
    boards = build_leaderboard(tracker.uri, "twins")
    names = ["test_efficientnet(input_size=16)", "test_efficientnet(input_size=24)", "efficientnet_lite0"]
    for view in ("generalization", "cost"):
        rows = boards[0].views[view]
        assert sorted(rows["backbone"]) == sorted(names) and set(rows["weights"]) == {"none"}, view
    md = outputs(boards, tmp, "twins")["md"]
    assert all(n in md for n in names)


def test_two_checkpoints_of_one_network_pair_with_their_control_and_match_rules_by_short_name(store):
    """Two checkpoints of one network read 'file' in the weights column, so the board shows their
    full labels; each is still set against the random-init control built as it is, in the
    pretrained-vs-random view (a row each, not one overwriting the other), and a suite's rule
    (robustness.reference) still matches them by the names it was written with."""
    tracker, tmp = store
    for folder in ("a", "b"):
        (tmp / folder).mkdir(exist_ok=True)
        (tmp / folder / "w.safetensors").write_bytes(b"")
    spec = {"name": "test_efficientnet", "params": {"input_size": 16}}
    backbones = [
        {**spec, "weights": "file", "path": str(tmp / "a" / "w.safetensors")},
        {**spec, "weights": "file", "path": str(tmp / "b" / "w.safetensors")},
        {**spec, "weights": "none"},
    ]
    axes = TINY["axes"] | {"backbones": backbones, "strategies": ["linear_probe"], "regularizers": ["none"]}
    cells = expand(load_suite(write_suite(tmp / "ckpts.yaml", name="ckpts", axes=axes)))
    accs = {"a": 0.8, "b": 0.7, "none": 0.5}
    for cell in cells:
        acc = accs[cell.labels["backbone"].split("@")[1].removeprefix("file:").split("/")[0]]
        finals = [corr(acc, acc - 0.2, acc - 0.3), corr(acc + 0.01, acc - 0.19, acc - 0.29)]
        record(tracker, cell, [0.5], finals)
    boards = build_leaderboard(tracker.uri, "ckpts", {"backbone": "test_efficientnet", "weights": "file"})
    views = boards[0].views
    files = ["file:a/w.safetensors", "file:b/w.safetensors"]
    assert sorted(views["generalization"]["weights"]) == [*files, "none"]
    gap = views["pretrained vs random"]
    assert sorted(zip(gap["weights"], gap["gap"].round(3), strict=True)) == [(files[0], 0.3), (files[1], 0.2)]
    mce = dict(zip(views["robustness"]["weights"], views["robustness"]["mCE"], strict=True))
    assert mce[files[0]] == pytest.approx(1.0) and mce[files[1]] > 1.0  # checkpoint a: the reference
    assert any(
        n.startswith("mCE reference: test_efficientnet(input_size=16)@file:a/") for n in boards[0].notes
    )


def test_rank_runs_outside_any_night_do_not_hide_a_nightly_only_suites_latest_night(store, tmp_path):
    """A suite that only runs nightly, then ranked (``ptbench rank`` logs outside any night):
    its leaderboard is still the latest night, not "no cell runs yet"."""
    from conftest import TINY

    from ptbench.leaderboard.load import load_runs
    from ptbench.suite import expand, parse_suite

    tracker, _ = store
    exp = tracker.experiment("nightly_only", tmp_path / "artifacts")  # the page is logged there
    suite = parse_suite({**TINY, "name": "nightly_only"})
    for night in ("night-1", "night-2"):
        run = tracker.start_run(exp, night, {"ptbench.kind": "suite", "ptbench.night": night})
        cell = tracker.start_run(exp, "cell", {"ptbench.kind": "cell", "ptbench.night": night}, parent=run)
        tracker.log_params(cell, cell_params(expand(suite)[0]))
    tracker.start_run(exp, "rank net", {"ptbench.kind": "rank"})
    runs = load_runs(tracker.uri, "nightly_only")
    assert set(runs["tags.ptbench.night"]) == {"night-2"} and "cell" in set(runs["tags.ptbench.kind"])
    # ... and written and logged as that night's page: it went to results/<suite>/leaderboard.*,
    # over the plain runs' page, and was logged nowhere (no plain suite run to log it on)
    from ptbench.leaderboard.publish import publish

    _, written = publish(suite, tracker.uri, ("md",), results_dir=tmp_path)
    assert written == [tmp_path / "nightly_only" / "nightly" / "night-2" / "leaderboard.md"]
    night_run = tracker.find_run(exp, **{"ptbench.kind": "suite", "ptbench.night": "night-2"})
    logged = tracker.client.list_artifacts(night_run.info.run_id, "leaderboard")
    assert [a.path for a in logged] == ["leaderboard/leaderboard.md"]


def test_a_night_re_evaluated_otherwise_counts_its_newest_final_runs():
    """A night's runs are kept whatever the suite says now; of a night run again under edited
    evaluation settings, the newer final runs — the earliest per seed stood in for them."""
    import pandas as pd

    from ptbench.leaderboard import Current

    def final(rid, start, key, night="", seed="0", parent="c1"):
        tags = {"tags.ptbench.eval_key": key, "tags.ptbench.night": night, "tags.ptbench.seed": seed}
        return {"run_id": rid, "start_time": start, "tags.mlflow.parentRunId": parent} | tags

    finals = pd.DataFrame(
        [
            final("old", 1, "k1", night="n1"),
            final("new", 2, "k2", night="n1"),
            final("other-cell", 1, "k1", night="n1", parent="c2"),
            final("plain-old", 1, "k1"),
            final("plain-now", 2, "k3"),
            final("plain-removed-seed", 3, "k3", seed="7"),
        ]
    )
    kept = Current("k3", (0, 1)).keep(finals)
    assert sorted(kept["run_id"]) == ["new", "other-cell", "plain-now"]


def test_the_unfinished_view_lists_the_best_cell_first_under_a_minimised_objective():
    """Under minimize val_loss it listed the cell at 0.95 above the one at 0.21."""
    import pandas as pd

    from ptbench.leaderboard.views import unfinished_view

    def row(cell, loss):
        base = {
            "backbone": "b",
            "weights": "none",
            "strategy": "s",
            "regularizer": "none",
            "state": "searching",
        }
        more = {"trials": 1, "pruned": 0, "failed": 0, "finals_failed": 0, "error": ""}
        return base | more | {"cell": cell, "val_best": loss, "_val_order": -loss}

    view = unfinished_view(pd.DataFrame([row("worse", 0.95), row("better", 0.21)]))
    assert view["cell"].tolist() == ["better", "worse"]


def test_the_board_of_a_suite_whose_checkpoint_and_data_are_gone_still_renders(store, tmp_path):
    """Results outlive their inputs: once a checkpoint is deleted (or the page is made on a
    machine without the data), ``leaderboard`` and ``history`` read the store as before, while
    ``validate`` (and so ``run``) still refuses the missing file."""
    tracker, tmp = store
    ckpt = tmp_path / "w.safetensors"
    ckpt.write_bytes(b"")
    spec = {"name": "test_efficientnet", "params": {"input_size": 16}}
    backbones = [{**spec, "weights": "file", "path": str(ckpt)}]
    axes = TINY["axes"] | {"backbones": backbones, "strategies": ["linear_probe"], "regularizers": ["none"]}
    path = write_suite(tmp_path / "gone.yaml", name="gone", axes=axes)
    tracker.experiment("gone", tmp_path / "artifacts")  # the page is logged there, not in ./mlruns
    for cell in expand(load_suite(path)):
        record(tracker, cell, [0.5], [corr(0.8, 0.6, 0.5)])
    ckpt.unlink()
    args = ("--tracking-uri", tracker.uri)
    board = ptbench("leaderboard", str(path), "--format", "csv", "--output", "b.csv", *args, cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    rows = list(csv.DictReader((tmp_path / "b.csv").read_text().splitlines()))
    assert [r["weights"] for r in rows if r["view"] == "generalization"] == ["file"]
    assert ptbench("history", str(path), *args, cwd=tmp_path).returncode == 0
    refused = ptbench("validate", str(path), cwd=tmp_path)
    assert refused.returncode != 0 and "does not exist" in refused.stderr


def test_a_best_cell_with_one_seed_is_named_as_the_reason_no_row_is_tested(store):
    """Rows with three seeds are not "1 seed": the best is the side that allows no test."""
    tracker, tmp = store
    cells = grid(tmp, "lonely_best")
    runs = {("full_finetune", "none"): [0.95]}
    for (_, strategy, reg), cell in cells.items():
        record(
            tracker, cell, [0.5], [{"test_accuracy": a} for a in runs.get((strategy, reg), [0.8, 0.81, 0.82])]
        )
    g = generalization(build_leaderboard(tracker.uri, "lonely_best"))
    assert g[("full_finetune", "none")]["≈best"] == "best"
    assert {r["≈best"] for k, r in g.items() if k != ("full_finetune", "none")} == {"n/a (best: 1 seed)"}


def test_an_error_with_a_pipe_keeps_the_markdown_table_columns(store):
    tracker, tmp = store
    cells = grid(tmp, "piped")
    err = "TypeError: unsupported operand type(s) for |: 'int' and 'str'"
    for key, cell in cells.items():
        record(
            tracker,
            cell,
            [err] if key[1:] == ("linear_probe", "none") else [0.5],
            [] if key[1:] == ("linear_probe", "none") else [{"test_accuracy": 0.8}],
        )
    md = outputs(build_leaderboard(tracker.uri, "piped"), tmp, "piped")["md"]
    rows = [line for line in md.splitlines() if "TypeError" in line]
    header = next(
        line for line in md.splitlines()[md.splitlines().index(rows[0]) - 2 :] if line.startswith("|")
    )
    assert rows and all(r.replace("\\|", "").count("|") == header.count("|") for r in rows)


def test_a_store_with_no_cell_run_and_an_unwritable_output_are_one_line_errors(store, tmp_path):
    """A run stopped before its first cell (or only 'ptbench rank' so far) leaves a suite run and
    no cell; a page asked into a path that cannot be written. Both: one line, exit 2."""
    tracker, tmp = store
    path = write_suite(tmp_path / "early.yaml", name="early")
    exp = tracker.experiment("early", tmp_path / "artifacts")
    tracker.start_run(exp, "early", {"ptbench.kind": "suite"})
    args = ("--tracking-uri", tracker.uri)
    early = ptbench("leaderboard", str(path), *args, cwd=tmp_path)
    assert early.returncode == 2 and early.stderr.count("\n") == 1 and "no cell runs yet" in early.stderr
    (tmp_path / "afile").write_text("")
    for cell in expand(load_suite(path)):
        record(tracker, cell, [0.5], [{"test_accuracy": 0.8}])
    bad = ptbench("leaderboard", str(path), "--output", "afile/b.csv", "--format", "csv", *args, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "cannot write" in bad.stderr, bad.stderr


def test_boards_of_a_few_shot_grid_come_in_the_order_of_their_shots(store):
    tracker, tmp = store
    base = TINY["axes"]["tasks"][0]
    tasks = [{**base, "params": {**base["params"], "shots": k}} for k in (20, 1, 100, 5)]
    axes = {**TINY["axes"], "tasks": tasks, "strategies": ["linear_probe"], "regularizers": ["none"]}
    for cell in grid(tmp, "shots", axes=axes).values():
        record(tracker, cell, [0.5], [{"test_accuracy": 0.8}])
    titles = [b.title for b in build_leaderboard(tracker.uri, "shots")]
    assert [int(re.search(r"shots=(\d+)", t)[1]) for t in titles] == [1, 5, 20, 100]


def test_tied_cells_rank_alike_and_a_cell_without_test_values_is_not_called_worse(store):
    """Three findings of one review: (1) two cells with the same seeds' accuracies in another
    order got means apart by 2e-16 — one ranked 1 and 'best', the other 2 and '≈', by the store's
    order; (2) a cell whose final runs logged no test accuracy showed '' (which says
    "significantly worse"); (3) its seeds column counted runs the interval did not use."""
    tracker, tmp = store
    cells = grid(tmp, "ties")
    accs = [948 / 1197, 907 / 1197, 855 / 1197]
    runs = {
        ("full_finetune", "none"): [{"test_accuracy": a} for a in accs],
        ("full_finetune", "label_smoothing"): [{"test_accuracy": a} for a in reversed(accs)],
        ("linear_probe", "none"): [{"test_accuracy": 0.5}, {"test_ece": 0.1}, {"test_accuracy": 0.52}],
        ("linear_probe", "label_smoothing"): [{"test_ece": 0.1}, {"test_ece": 0.1}],
    }
    for (_, strategy, reg), cell in cells.items():
        record(tracker, cell, [0.5], runs[(strategy, reg)])
    boards = build_leaderboard(tracker.uri, "ties")
    g = generalization(boards)
    tied = g[("full_finetune", "none")], g[("full_finetune", "label_smoothing")]
    assert [r["rank"] for r in tied] == [1, 1] and [r["≈best"] for r in tied] == ["best", "best"]
    assert g[("linear_probe", "label_smoothing")]["≈best"] == "—"
    assert g[("linear_probe", "none")]["seeds"] == 2  # the two values behind its ±


def test_the_cost_view_keeps_a_probes_encoding_apart_from_its_training(store):
    """train seconds included the feature encoding, paid only by the seed that found the cache
    cold (40 s once): 22 s "to train" a cell that trains in 2."""
    tracker, tmp = store
    cells = grid(tmp, "encoding")
    cold = [{"train_seconds": 42.0, "encode_seconds": 40.0}, {"train_seconds": 2.0, "encode_seconds": 0.0}]
    for _, cell in cells.items():
        record(tracker, cell, [0.5], [m | {"test_accuracy": 0.8} for m in cold])
    cost = build_leaderboard(tracker.uri, "encoding")[0].views["cost"]
    assert set(cost["train_s"]) == {2.0} and set(cost["encode_s"]) == {20.0}
