"""``ptbench rank`` on a real tiny suite: scores before the suite runs, the check against the
fine-tuned truth after it, MLflow runs of kind rank, and a one-line error for a bad name."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ptbench, write_suite

from ptbench.tracking import Tracker, default_tracking_uri

SUITE = {
    "name": "rank_tiny",
    "version": 1,
    "axes": {
        "backbones": [
            {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}},
            {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 24}},
            {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 32}},
        ],
        "tasks": [{"name": "digits", "params": {"train_size": 200, "val_size": 100, "test_size": 100}}],
        "strategies": ["full_finetune"],
        "regularizers": ["none"],
    },
    "search": {"trials": 1, "pruner": "none", "space": {"epochs": 2, "batch_size": 50, "lr": 1e-2}},
    "seeds": [0],
    "execution": {"workers": 1},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("rank")
    write_suite(root / "rank_tiny.yaml", SUITE)
    return root


def _runs(root, kind: str) -> list[dict]:
    records = Tracker(default_tracking_uri(root / ".ptbench")).runs_records("rank_tiny")
    return [r for r in records if r.get("tags.ptbench.kind") == kind]


def test_rank_before_and_after_the_suite_runs(project):
    args = ("--project-dir", ".ptbench")
    before = ptbench("rank", "rank_tiny.yaml", *args, cwd=project, check=True).stdout
    assert "No check against the truth" in before
    assert "leep: n/a where the weights carry no source classifier (random init" in before  # why
    assert "Seconds over these 3 backbones — features " in before and "; logme " in before  # the cost
    ranks = _runs(project, "rank")
    assert len(ranks) == 3 and all("metrics.rank.logme" in r and "metrics.rank.knn" in r for r in ranks)

    ptbench("run", "rank_tiny.yaml", *args, "--quiet", "--no-leaderboard", cwd=project, check=True)
    after = ptbench("rank", "rank_tiny.yaml", *args, cwd=project, check=True).stdout
    assert "weighted τ" in after and "| logme |" in after and "truth (test acc)" in after
    assert len(_runs(project, "rank")) == 3  # scored again into the same runs, not new ones
    check = _runs(project, "rank_check")
    assert len(check) == 1 and "metrics.logme.tau_w" in check[0] and "metrics.knn.top1" in check[0]
    assert (project / "results" / "rank_tiny" / "rank.md").read_text().count("| test_efficientnet") == 3
    # the same figures for scripts
    import csv

    with open(project / "results" / "rank_tiny" / "rank.csv") as f:
        scored = list(csv.DictReader(f))
    assert len(scored) == 3 and all(float(r["truth_test_accuracy"]) >= 0 and r["logme"] for r in scored)
    assert all(r["leep"] == "" and float(r["features_seconds"]) >= 0 for r in scored)  # n/a: empty
    # a score is weighed against a size: each backbone's parameter count, as built
    from ptbench.backbones.build import build_backbone

    size = sum(p.numel() for p in build_backbone(SUITE["axes"]["backbones"][0]).parameters())
    assert [int(r["params"]) for r in scored] == [size] * 3
    assert all(r["metrics.rank.params"] == size for r in _runs(project, "rank"))
    with open(project / "results" / "rank_tiny" / "rank_check.csv") as f:
        taus = {r["estimator"]: r for r in csv.DictReader(f)}
    assert set(taus) == {"logme", "hscore", "hscore_shrink", "knn", "probe"}  # LEEP/NCE: none to check
    assert float(taus["logme"]["tau_w"]) == pytest.approx(check[0]["metrics.logme.tau_w"])
    # the same backbones under another search space are another grid: its truth is not this one's
    other = {**SUITE, "search": {**SUITE["search"], "space": {**SUITE["search"]["space"], "lr": 3e-3}}}
    write_suite(project / "rank_tiny_v2.yaml", other)
    again = ptbench("rank", "rank_tiny_v2.yaml", *args, cwd=project, check=True).stdout
    assert "No check against the truth" in again and "weighted τ" not in again


def test_unknown_estimator_is_one_line(project):
    proc = ptbench(
        "rank", "rank_tiny.yaml", "--estimators", "logmee", "--project-dir", ".ptbench", cwd=project
    )
    assert proc.returncode == 2 and "unknown estimator 'logmee'; did you mean 'logme'?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_estimator_listed_twice_is_one_line(project):
    """--estimators logme,logme computed LogME twice and showed two logme columns."""
    proc = ptbench(
        "rank", "rank_tiny.yaml", "--estimators", "logme, knn,logme", "--project-dir", ".ptbench", cwd=project
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--estimators logme, knn,logme: 'logme' is listed twice" in proc.stderr


def _checkpoints(root, n: int, head: int = 0) -> list[str]:
    """``n`` checkpoints of one tiny network (different random weights: different features),
    with a ``head``-class source classifier where ``head`` is set."""
    import torch
    from safetensors.torch import save_file

    from ptbench.backbones import BACKBONES

    paths = []
    for seed in range(n):
        torch.manual_seed(seed)
        bb = BACKBONES.get("test_efficientnet").fn({"name": "test_efficientnet"})
        state = {k: v.contiguous() for k, v in bb.net.state_dict().items()}
        if head:
            state |= {
                "classifier.weight": torch.randn(head, bb.num_features),
                "classifier.bias": torch.zeros(head),
            }
        path = root / f"ckpt{seed}{'h' if head else ''}.safetensors"
        save_file(state, str(path))
        paths.append(str(path))
    return paths


def test_leep_and_nce_read_the_source_classifier_where_the_weights_have_one(tmp_path):
    """Checkpoints with a classifier are scored by LEEP and NCE from its predictions on the
    target's train split; a backbone without one is n/a, with the reason, never a made-up score."""
    import numpy as np
    import torch

    from ptbench.backbones.build import build_backbone
    from ptbench.evaluate.transferability import ESTIMATORS
    from ptbench.rank import rank_suite, render
    from ptbench.suite import load_suite
    from ptbench.tasks import TASKS

    task = {"train_size": 200, "val_size": 100, "test_size": 100}
    specs = [
        {"name": "test_efficientnet", "weights": "file", "path": p} for p in _checkpoints(tmp_path, 2, head=7)
    ]
    specs.append({"name": "test_efficientnet", "weights": "none"})
    axes = {**SUITE["axes"], "backbones": specs, "tasks": [{"name": "digits", "params": task}]}
    suite = load_suite(write_suite(tmp_path / "heads.yaml", {**SUITE, "name": "heads", "axes": axes}))
    project = tmp_path / ".ptbench"
    report = rank_suite(suite, project, default_tracking_uri(project), ["leep", "nce", "logme"])
    scored = {r.backbone: r for r in report.rows}
    data = TASKS.get("digits").fn(task)
    for spec in specs[:2]:
        bb = build_backbone(spec).eval()
        with torch.no_grad():
            probs = bb.source_head.probs(bb(bb.preprocess(bb.encode(data.train.x)))).double().numpy()
        row = scored[f"test_efficientnet@file:{Path(spec['path']).name}"]
        y = data.train.y.numpy()
        assert row.scores["leep"] == pytest.approx(
            ESTIMATORS.get("leep").fn(None, y, source_probs=probs), abs=1e-6
        )
        assert row.scores["nce"] == pytest.approx(
            ESTIMATORS.get("nce").fn(None, y, source_labels=probs.argmax(1))
        )
        assert row.scores["leep"] < 0 and row.scores["nce"] <= 0
    control = scored["test_efficientnet@none"]
    assert (
        np.isnan(control.scores["leep"])
        and np.isnan(control.scores["nce"])
        and control.scores["logme"] == control.scores["logme"]
    )
    assert "nce: n/a where the weights carry no source classifier" in render(report)


def test_the_funnel_keeps_exactly_the_top_k_and_logs_the_rest(tmp_path):
    """``axes.select: {by: knn, top: 2}`` over three checkpoints and a random-init control: the
    run trains the two best by k-NN (as ``ptbench rank`` scores them) and the control, and the
    suite run says what it dropped and why."""
    from ptbench.rank import rank_suite
    from ptbench.suite import expand, load_suite

    params = {"input_size": 16}
    suite_data = {
        **SUITE,
        "name": "funnel",
        "axes": {
            **SUITE["axes"],
            "backbones": [  # the three checkpoints in one line
                {
                    "name": "test_efficientnet",
                    "weights": "file",
                    "path": str(tmp_path / "ckpt*"),
                    "params": params,
                },
                {"name": "test_efficientnet", "weights": "none", "params": params},
            ],
            "strategies": ["linear_probe"],
            "select": {"by": "knn", "top": 2},
        },
        "search": {"trials": 1, "pruner": "none", "space": {"epochs": 2, "batch_size": 50}},
        "execution": {"executor": "inline"},
    }
    _checkpoints(tmp_path, 3)
    path = write_suite(tmp_path / "funnel.yaml", suite_data)
    suite = load_suite(path)
    project = tmp_path / ".ptbench"
    uri = default_tracking_uri(project)
    control = "test_efficientnet(input_size=16)@none"
    rows = rank_suite(suite, project, uri, ["knn"]).rows
    scores = {r.backbone: r.scores["knn"] for r in rows if r.backbone != control}
    order = sorted(scores, key=lambda b: -scores[b])
    assert len(set(scores.values())) == 3  # three different scores: the ranking means something

    args = ("--project-dir", ".ptbench", "--no-leaderboard")
    out = ptbench("run", "funnel.yaml", *args, cwd=tmp_path, check=True)
    (task,) = [line for line in out.stdout.splitlines() if line.startswith("select ")]
    assert f"kept {order[0]}, {order[1]}, {control}; dropped {order[2]} (knn {scores[order[2]]:.4g})" in task

    records = Tracker(uri).runs_records("funnel")
    trained = {r["params.backbone"] for r in records if r.get("tags.ptbench.kind") == "final"}
    assert trained == {*order[:2], control}
    (suite_run,) = [r for r in records if r.get("tags.ptbench.kind") == "suite"]
    assert suite_run["tags.ptbench.select"] == "top 2 by knn" and suite_run["metrics.select_dropped"] == 1
    note = Tracker(uri).client.download_artifacts(suite_run["run_id"], "select.md", str(tmp_path))
    text = Path(note).read_text()
    assert f"| {order[2]} | {scores[order[2]]:.4g} | dropped: rank 3 of 3, below the top 2 |" in text
    assert f"| {control} | — | kept: random-init control |" in text

    # a driver killed while it trained the third backbone (under ``top: 3``) left its cell run
    # RUNNING: the rerun that drops it closes it, where it stayed RUNNING for ever
    (dropped,) = [c for c in expand(suite) if c.labels["backbone"] == order[2]]
    tracker = Tracker(uri)
    left = tracker.client.create_run(
        tracker.experiment_id("funnel"),
        tags={
            "mlflow.parentRunId": suite_run["run_id"],
            "ptbench.kind": "cell",
            "ptbench.cell_hash": dropped.hash,
        },
    ).info.run_id
    ptbench("run", "funnel.yaml", *args, cwd=tmp_path, check=True)
    run = tracker.client.get_run(left)
    assert (run.info.status, run.data.tags["ptbench.state"]) == ("KILLED", "interrupted")


def test_image_checkpoints_are_set_beside_their_published_imagenet_top1():
    """Ranking by the published ImageNet top-1 is free: the report says which estimators did no
    better on the backbones that have one (and never gives random init or a file a top-1)."""
    from scipy import stats

    from ptbench.rank import render
    from ptbench.rank.score import Scored, _published_top1, _top1_checks

    assert _published_top1({"name": "efficientnet_lite1", "weights": "package"}) == 76.7
    assert _published_top1({"name": "efficientnet_lite1", "weights": "none"}) is None
    assert _published_top1({"name": "test_efficientnet", "weights": "package"}) is None
    truth = {("t", "lite0"): 0.80, ("t", "lite1"): 0.70, ("t", "lite2"): 0.90}
    rows = [
        Scored("t", "lite0", {"logme": 0.2, "knn": 0.5}, {"features": 1.0}, top1=75.1),
        Scored("t", "lite1", {"logme": 0.1, "knn": 0.6}, {"features": 1.0}, top1=76.7),
        Scored("t", "lite2", {"logme": 0.3, "knn": 0.4}, {"features": 1.0}, top1=77.6),
    ]
    checks = _top1_checks(rows, truth, ["logme", "knn"])["t"]
    tau = stats.weightedtau([75.1, 76.7, 77.6], [0.80, 0.70, 0.90]).statistic
    assert checks["imagenet_top1"]["tau_w"] == pytest.approx(tau)
    assert checks["logme"]["tau_w"] == pytest.approx(1.0)  # logme orders them as the truth does
    from ptbench.rank.score import RankReport, _checks

    report = RankReport(
        "s", rows, truth, _checks(rows, truth, ["logme", "knn"]), ["logme", "knn"], {"t": checks}
    )
    text = render(report)
    assert "On the 3 backbones with a published ImageNet top-1" in text
    assert "no better on them: knn." in text and "logme" not in text.split("no better on them")[1]


def test_leep_and_nce_say_why_a_backbone_has_no_source_classifier():
    """n/a is never bare: the generic reason, or the one the weights give (a BERT classifier
    read with masked-mean features names the param that would read it as its head does)."""
    import math

    import torch

    from ptbench.rank.score import NO_SOURCE, _score
    from ptbench.trial import FrozenFeatures

    x, y = torch.randn(20, 4), torch.arange(20) % 2
    for name in ("leep", "nce"):
        value, _, note = _score(name, FrozenFeatures(x, y, x, y, 0.0, 0))
        assert math.isnan(value) and note == f"{name}: {NO_SOURCE}"
        why = "the BertForSequenceClassification classifier reads the pooler's [CLS] …"
        value, _, note = _score(name, FrozenFeatures(x, y, x, y, 0.0, 0, source_note=why))
        assert math.isnan(value) and note == f"{name}: {why}"
    assert not math.isnan(_score("logme", FrozenFeatures(x, y, x, y, 0.0, 0))[0])


def test_the_truth_is_each_backbones_best_cell_by_the_suites_objective(tmp_path):
    """ "Best by validation" follows the suite's objective: with ``val_loss`` to minimize, the
    cell with the lowest validation loss gives the truth (it read best_val_accuracy, absent
    there, and took whichever cell the store listed first)."""
    from ptbench.rank.score import _truth
    from ptbench.suite import expand, parse_suite

    spec = {
        **SUITE,
        "axes": {
            **SUITE["axes"],
            "backbones": SUITE["axes"]["backbones"][:1],
            "strategies": ["full_finetune", "llrd"],
        },
        "search": {**SUITE["search"], "objective": {"metric": "val_loss", "direction": "minimize"}},
    }
    suite = parse_suite(spec)
    tracker = Tracker(default_tracking_uri(tmp_path))
    exp = tracker.experiment(suite.name, tmp_path / "artifacts")
    for cell, loss, test in zip(expand(suite), (0.5, 0.9), (0.7, 0.9), strict=True):  # best first
        tags = {"ptbench.kind": "cell", "ptbench.cell_hash": cell.hash}
        run = tracker.start_run(exp, "cell", tags)
        labels = {"task": cell.labels["task"], "backbone": cell.labels["backbone"]}
        tracker.log_params(run, labels | {"strategy.name": cell.strategy["name"]})
        tracker.log_metrics(run, {"best_val_loss": loss, "best_trial": 0})
        tracker.end(run)
        final = tracker.start_run(
            exp, "final", {"ptbench.kind": "final", "ptbench.source_trial": 0}, parent=run
        )
        tracker.log_metrics(final, {"test_accuracy": test})
        tracker.end(final)
    assert list(_truth(tracker, suite).values()) == [0.7]


def test_the_truth_averages_what_the_leaderboard_averages_and_a_validation_tie_evenly(tmp_path):
    """The truth counted final runs of a seed the suite no longer asks for (the leaderboard
    did not), and of two cells tied on validation took whichever the store listed first."""
    from ptbench.rank.score import _truth
    from ptbench.suite import expand, parse_suite

    axes = {**SUITE["axes"], "backbones": SUITE["axes"]["backbones"][:1]}
    suite = parse_suite({**SUITE, "axes": {**axes, "strategies": ["full_finetune", "llrd"]}, "seeds": [0]})
    tracker = Tracker(default_tracking_uri(tmp_path))
    exp = tracker.experiment(suite.name, tmp_path / "artifacts")
    for cell, tests in zip(expand(suite), ({0: 0.9, 1: 0.1, 2: 0.1}, {0: 0.7}), strict=True):
        run = tracker.start_run(exp, "cell", {"ptbench.kind": "cell", "ptbench.cell_hash": cell.hash})
        labels = {"task": cell.labels["task"], "backbone": cell.labels["backbone"]}
        tracker.log_params(run, labels | {"strategy.name": cell.strategy["name"]})
        tracker.log_metrics(run, {"best_val_accuracy": 0.8, "best_trial": 0})  # a tie
        tracker.end(run)
        for seed, test in tests.items():  # seeds 1 and 2: from when the suite asked for three
            tags = {"ptbench.kind": "final", "ptbench.source_trial": 0, "ptbench.seed": seed}
            final = tracker.start_run(exp, "final", tags, parent=run)
            tracker.log_metrics(final, {"test_accuracy": test})
            tracker.end(final)
    assert list(_truth(tracker, suite).values()) == [pytest.approx(0.8)]  # (0.9 + 0.7) / 2


def test_a_best_cell_without_finished_final_runs_gives_no_truth_not_the_second_best(tmp_path):
    """The truth chose the best cell among those with finished final runs only: while the best
    cell's finals ran (or had failed), the second best's test accuracy stood as the backbone's
    truth. Now the backbone has no truth until its best cell's finals finish."""
    from ptbench.rank.score import _truth
    from ptbench.suite import expand, parse_suite

    axes = {**SUITE["axes"], "backbones": SUITE["axes"]["backbones"][:1]}
    suite = parse_suite({**SUITE, "axes": {**axes, "strategies": ["full_finetune", "llrd"]}, "seeds": [0]})
    tracker = Tracker(default_tracking_uri(tmp_path))
    exp = tracker.experiment(suite.name, tmp_path / "artifacts")
    runs = []
    for cell, val in zip(expand(suite), (0.92, 0.85), strict=True):
        run = tracker.start_run(exp, "cell", {"ptbench.kind": "cell", "ptbench.cell_hash": cell.hash})
        labels = {"task": cell.labels["task"], "backbone": cell.labels["backbone"]}
        tracker.log_params(run, labels | {"strategy.name": cell.strategy["name"]})
        tracker.log_metrics(run, {"best_val_accuracy": val, "best_trial": 0})
        tracker.end(run)
        runs.append(run)

    def final(parent: str, test: float) -> None:
        tags = {"ptbench.kind": "final", "ptbench.source_trial": 0, "ptbench.seed": 0}
        run = tracker.start_run(exp, "final", tags, parent=parent)
        tracker.log_metrics(run, {"test_accuracy": test})
        tracker.end(run)

    final(runs[1], 0.80)  # the second best's finals finished; the best's have not
    assert _truth(tracker, suite) == {}
    final(runs[0], 0.90)
    assert list(_truth(tracker, suite).values()) == [pytest.approx(0.90)]


def test_the_funnel_keeps_a_backbone_tied_with_the_last_of_the_top():
    """k-NN 0.80 / 0.75 / 0.75 with top 2: grid order kept one 0.75 and dropped the other, and
    called them rank 2 and rank 3 where rank.md says 2 and 2."""
    from ptbench.rank.funnel import _verdicts
    from ptbench.rank.score import Scored

    rows = [Scored("t", b, {"knn": s}) for b, s in (("a", 0.75), ("b", 0.8), ("c", 0.75), ("d", 0.5))]
    rows.append(Scored("t", "e", {"knn": float("nan")}))
    assert [(b, v) for b, _, v in _verdicts(rows, "knn", 2)] == [
        ("b", "kept: rank 1 of 5"),
        ("a", "kept: rank 2 of 5"),
        ("c", "kept: rank 2 of 5, tied with the last of the top 2"),
        ("d", "dropped: rank 4 of 5, below the top 2"),
        ("e", "dropped: no finite score, below the top 2"),
    ]
    rows.append(Scored("t", "f", {"knn": float("nan")}))  # the top reaches the unscored: both kept
    assert [v for _, _, v in _verdicts(rows, "knn", 5)][-2:] == [
        "kept: rank 5 of 6, no finite score",
        "kept: rank 5 of 6, no finite score, tied with the last of the top 5",
    ]


def test_hub_weights_named_by_id_get_no_published_top1_and_an_estimator_without_a_tau_did_no_better():
    """Any checkpoint under hub + id was given the ImageNet model's 75.1 %; an estimator whose τ
    is not defined (it scored the backbones alike) was left out of 'no better on them'."""
    from ptbench.rank.report import _top1_lines
    from ptbench.rank.score import RankReport, Scored, _published_top1, _top1_checks

    assert _published_top1({"name": "efficientnet_lite0", "weights": "hub"}) == 75.1
    assert _published_top1({"name": "efficientnet_lite0", "weights": "hub", "id": "me/finetuned"}) is None
    truth = {("t", "l0"): 0.80, ("t", "l1"): 0.70, ("t", "l2"): 0.90}
    rows = [
        Scored("t", b, {"hscore": 9.0}, {"features": 1.0}, top1=t1)
        for b, t1 in (("l0", 75.1), ("l1", 76.7), ("l2", 77.6))
    ]
    report = RankReport("s", rows, truth, {}, ["hscore"], _top1_checks(rows, truth, ["hscore"]))
    assert _top1_lines(report, "t")[-1].endswith("no better on them: hscore.")
    equal = [Scored("t", r.backbone, {"hscore": 9.0}, {"features": 1.0}, top1=75.0) for r in rows]
    report = RankReport("s", equal, truth, {}, ["hscore"], _top1_checks(equal, truth, ["hscore"]))
    assert _top1_lines(report, "t")[-1].endswith("ranking by it gives no τ.")  # not: hscore no better


def test_equal_scores_share_a_rank():
    from ptbench.rank.report import _ranks

    assert _ranks([0.5, 0.9, 0.5, float("nan"), 0.1]) == ["2", "1", "2", "—", "4"]


def test_the_check_says_why_an_estimator_has_no_tau():
    """Two report lines gave the wrong reason: an estimator that scored six backbones alike (plain
    H-score saturates at classes − 1) got "no interval over three backbones", and estimators that
    scored only 2 of 5 backbones with a truth got "fewer than 3 backbones have a finished
    fine-tuning cell"."""
    from ptbench.rank.report import _check_lines
    from ptbench.rank.score import RankReport, Scored, _checks

    truth = {("t", f"b{i}"): 0.5 + 0.05 * i for i in range(6)}
    rows = [Scored("t", f"b{i}", {"hscore": 9.0, "knn": 0.4 + 0.1 * i}, {"features": 1.0}) for i in range(6)]
    names = ["hscore", "knn"]
    lines = _check_lines(RankReport("s", rows, truth, _checks(rows, truth, names), names), "t")
    assert "No τ for hscore: the scores (or the truths) are all equal, so they rank nothing." in lines
    assert not any("three" in line for line in lines)
    rows = [Scored("t", f"b{i}", {"leep": -1.0 - i if i < 2 else float("nan")}) for i in range(5)]
    lines = _check_lines(RankReport("s", rows, truth, _checks(rows, truth, ["leep"]), ["leep"]), "t")
    assert lines[-1] == (
        "No check against the truth: leep scored fewer than 3 of the 5 backbones with a truth: no τ."
    )
