"""The nightly comparison's statistics against values computed by hand (and, where a library
computes the same thing, against the library)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptbench.nightly.stats import Preds, lookback, mcnemar, metric_value, paired_bootstrap, zscore


def _preds(label, pred, conf=None) -> Preds:
    label, pred = np.asarray(label), np.asarray(pred)
    conf = np.full(len(label), 0.9) if conf is None else np.asarray(conf, float)
    return Preds(label, pred, conf)


def test_mcnemar_exact_on_discordant_pairs():
    # 10 examples right → wrong, 2 wrong → right, 5 right on both nights, 3 wrong on both
    label = np.zeros(20, int)
    base = np.array([0] * 10 + [1] * 2 + [0] * 5 + [1] * 3)
    cur = np.array([1] * 10 + [0] * 2 + [0] * 5 + [1] * 3)
    b, c, p = mcnemar(_preds(label, base), _preds(label, cur))
    assert (b, c) == (10, 2)
    # two-sided exact: 2 · P(X ≤ 2), X ~ Binomial(12, 1/2) = 2 · (1 + 12 + 66) / 4096
    assert p == pytest.approx(158 / 4096, abs=1e-12)


def test_mcnemar_compares_one_pair_of_models_and_sees_no_change_as_p_one():
    """It pooled the discordant counts of every seed pair into one exact test, as if the pairs'
    flips were independent: five pairs flipping the same 8 examples gave p = 1.8e−12 where one
    pair's counts give 0.0078."""
    label = np.zeros(4, int)
    same = _preds(label, [0, 1, 0, 1])
    assert mcnemar(same, same) == (0, 0, 1.0)
    label = np.zeros(10, int)
    base, cur = _preds(label, np.zeros(10, int)), _preds(label, np.array([1] * 8 + [0] * 2))
    assert mcnemar(base, cur) == (8, 0, pytest.approx(2 / 2**8))


def test_zscore_and_lookback_by_hand():
    hist = [0.80, 0.82, 0.81]  # mean 0.81, sample sd 0.01
    assert zscore(hist, 0.78) == pytest.approx(-3.0)
    lb = lookback(hist, 0.78)
    assert lb.center == pytest.approx(0.81) and lb.z == pytest.approx(-3.0)
    # t = −0.03 / (0.01·√(1 + 1/3)) = −2.598; with 2 df the t CDF is ½ + t / (2√(2 + t²)),
    # so the two-sided p is 1 − |t| / √(2 + t²)
    t = 3 / math.sqrt(4 / 3)
    assert lb.p == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)  # 0.1217
    pinned = lookback(hist, 0.78, pinned=0.81)  # one pinned night: scale sd·√2
    t = 3 / math.sqrt(2)
    assert pinned.p == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)  # 0.1680


def test_lookback_edges():
    assert math.isnan(lookback([0.8], 0.7).p)  # one night: no spread to compare with
    flat = lookback([0.8, 0.8, 0.8], 0.8)
    assert flat.p == 1.0 and flat.z == 0.0
    moved = lookback([0.8, 0.8, 0.8], 0.7)
    assert moved.p == 0.0 and moved.z == -math.inf


def test_paired_bootstrap_distribution_by_hand():
    # one example goes from wrong to right, three stay right: on a resample of 4 examples the
    # accuracy difference is K/4, K ~ Binomial(4, 1/4): P(K=0) = 0.316, P(K≤2) = 0.949,
    # P(K≤3) = 0.996 — so the 95 % percentile interval is [0, 0.75]; its sd is √(4·¼·¾)/4 =
    # 0.2165, so p = 2·(1 − Φ(0.25 / 0.2165)) = 2·(1 − Φ(1.1547)) = 0.2482
    label = np.zeros(4, int)
    base, cur = _preds(label, [1, 0, 0, 0]), _preds(label, [0, 0, 0, 0])
    r = paired_bootstrap("test_accuracy", [base], [cur], k=2, n_boot=20000, alpha=0.05)
    assert r.effect == pytest.approx(0.25)
    assert (r.low, r.high) == (0.0, 0.75)
    assert r.p == pytest.approx(0.2482, abs=0.01)


def test_paired_bootstrap_agrees_with_scipy_for_one_model_per_side():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(1)
    label = rng.integers(0, 3, 400)
    base = np.where(rng.random(400) < 0.8, label, (label + 1) % 3)
    cur = np.where(rng.random(400) < 0.75, label, (label + 2) % 3)
    r = paired_bootstrap("test_accuracy", [_preds(label, base)], [_preds(label, cur)], 3, 5000, 0.05)
    ref = bootstrap(
        ((cur == label).astype(float), (base == label).astype(float)),
        lambda a, b, axis: a.mean(axis) - b.mean(axis),
        paired=True,
        method="percentile",
        n_resamples=5000,
        random_state=0,
        vectorized=True,
    ).confidence_interval
    assert r.low == pytest.approx(ref.low, abs=0.01) and r.high == pytest.approx(ref.high, abs=0.01)


def test_models_per_side_widen_the_interval_by_the_seed_noise():
    """Two seeds that disagree make a wider interval than one seed repeated: the bootstrap
    resamples the models as well as the examples."""
    rng = np.random.default_rng(2)
    label = rng.integers(0, 2, 500)
    good = np.where(rng.random(500) < 0.9, label, 1 - label)
    bad = np.where(rng.random(500) < 0.7, label, 1 - label)
    base = [_preds(label, good)]
    one = paired_bootstrap("test_accuracy", base, [_preds(label, good)] * 2, 2, 4000, 0.05)
    two = paired_bootstrap("test_accuracy", base, [_preds(label, good), _preds(label, bad)], 2, 4000, 0.05)
    assert two.high - two.low > 1.5 * (one.high - one.low)


def test_macro_f1_and_ece_match_the_libraries():
    import torch
    from sklearn.metrics import f1_score
    from torchmetrics.functional.classification import multiclass_calibration_error

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 4, generator=g) * 2
    y = torch.randint(0, 4, (300,), generator=g)
    probs = logits.softmax(1)
    conf, pred = probs.max(1)
    p = Preds(y.numpy(), pred.numpy(), conf.double().numpy())
    assert metric_value("test_macro_f1", p, 4) == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-9)
    ece = float(multiclass_calibration_error(probs, y, 4, n_bins=15, norm="l1"))
    assert metric_value("test_ece", p, 4) == pytest.approx(ece, abs=1e-5)


def test_paired_needs_the_same_examples():
    with pytest.raises(ValueError, match="same test examples"):
        paired_bootstrap("test_accuracy", [_preds([0, 1], [0, 1])], [_preds([1, 0], [0, 1])], 2)


def test_a_nights_best_configuration_is_read_from_tags_and_from_older_params():
    """Cell runs record their best configuration as tags (a search may be extended); nights
    recorded before that have it as params, and both must compare."""
    from ptbench.nightly.history import _cell_night

    base = {"status": "FINISHED", "params.task": "digits", "params.cell_hash": "c0ffee"}
    now = _cell_night(base | {"tags.ptbench.best.lr": "0.01", "tags.ptbench.best.epochs": "3"}, [], [])
    before = _cell_night(base | {"params.best.lr": "0.02", "params.best.epochs": "3"}, [], [])
    assert now.best == {"lr": "0.01", "epochs": "3"}
    assert before.best == {"lr": "0.02", "epochs": "3"}


def test_a_pinned_night_that_ran_the_cell_otherwise_is_no_baseline():
    """Pinned to a night whose cell had another data split, tonight is "changed" since it —
    not "regressed" against its value while the rolling nights (the same split) agree."""
    from ptbench.nightly.compare import Baseline, compare
    from ptbench.nightly.history import CellNight, Night
    from ptbench.schema import Nightly

    labels = ("digits", "net", "full_finetune", "none")
    ident = {"cell_hash": "h", "suite_version": "1", "split_hash": "s2", "weights_sha256": "w"}

    def night(i: int, acc: float, split: str = "s2") -> Night:
        cell = CellNight(
            labels, ident | {"split_hash": split}, "finished", [0, 1], {"test_accuracy": [acc, acc]}
        )
        return Night(f"night-{i}", f"run-{i}", i, "FINISHED", {}, {}, {labels: cell})

    pinned, rolling = night(0, 0.95, split="s1"), [night(i, 0.80 + i / 1000) for i in range(1, 6)]
    tonight = night(9, 0.80)
    found = compare(None, tonight, Baseline([pinned], rolling, pinned=True), Nightly())
    assert [(f.status, f.metric) for f in found] == [("changed", "—")]
    assert "data split hash s1 → s2" in found[0].detail
    same = night(0, 0.95)  # pinned on the same split: compared with its value, and far below it
    found = compare(None, tonight, Baseline([same], rolling, pinned=True), Nightly())
    assert next(f for f in found if f.metric == "test_accuracy").baseline == pytest.approx(0.95)


def test_a_pinned_night_that_did_not_finish_or_lacks_the_cell_is_said_so():
    """Pinned to an unfinished night, or to one without the cell, the cell was silently compared
    with the rolling nights while the report's header said "pinned night X"."""
    from ptbench.errors import PtbenchError
    from ptbench.nightly.compare import Baseline, compare, pinned_night
    from ptbench.nightly.history import CellNight, Night
    from ptbench.schema import Nightly

    labels = ("digits", "net", "full_finetune", "none")
    ident = {"cell_hash": "h", "suite_version": "1", "split_hash": "s", "weights_sha256": "w"}

    def night(i: int, acc: float, status: str = "FINISHED", cells: bool = True) -> Night:
        cell = CellNight(labels, ident, "finished", [0, 1], {"test_accuracy": [acc, acc]})
        return Night(f"night-{i}", f"run-{i}", i, status, {}, {}, {labels: cell} if cells else {})

    killed = night(0, 0.9, status="KILLED")
    with pytest.raises(PtbenchError, match="night-0 did not finish \\(killed\\); pin a finished night"):
        pinned_night([killed, night(1, 0.8)], "night-0")
    rolling = [night(i, 0.80 + i / 1000) for i in range(1, 6)]
    empty = night(0, 0.9, cells=False)
    found = compare(None, night(9, 0.70), Baseline([empty], rolling, pinned=True), Nightly())
    assert [(f.status, f.metric) for f in found] == [("new", "—")]
    assert "not in the pinned night night-0" in found[0].detail


def test_trend_plots_keep_the_nights_in_order():
    """A cell missing a night drew first put that night after later ones on the category axis."""
    from ptbench.nightly.compare import Baseline
    from ptbench.nightly.history import CellNight, Night
    from ptbench.nightly.report import NightReport, _trend

    ident = {"cell_hash": "h", "suite_version": "1", "split_hash": "s", "weights_sha256": "w"}

    def night(key: str, regs: list[str]) -> Night:
        cells = {
            ("b", "p", "t", "s", r): CellNight(
                ("b", "p", "t", "s", r), ident, "finished", [0], {"test_ece": [0.1]}
            )
            for r in regs
        }
        return Night(key, f"run-{key}", len(key), "FINISHED", {}, {}, cells)

    nights = [night("n1", ["a", "z"]), night("n2", ["z"]), night("n3", ["a", "z"])]
    fig = _trend(NightReport("s", nights[-1], Baseline([], []), [], nights, []), "test_ece")
    assert fig.data[0].x == ("n1", "n3")  # cell a, drawn first, missed n2
    assert fig.layout.xaxis.categoryorder == "array" and fig.layout.xaxis.categoryarray == ("n1", "n2", "n3")


LABELS = ("lite0@package", "package", "digits", "full_finetune", "none")
IDENT = {"cell_hash": "h", "suite_version": "1", "split_hash": "s", "weights_sha256": "w"}


def _nights(values: list[list[float]], metric: str = "test_accuracy", eval_keys=None):
    """One cell over nights, ``values[i]`` its per-seed values on night i (the last: tonight)."""
    from ptbench.nightly.history import CellNight, Night

    out = []
    for i, vals in enumerate(values):
        cell = CellNight(LABELS, dict(IDENT), "finished", list(range(len(vals))), {metric: vals})
        cell.eval_key = eval_keys[i] if eval_keys else ""
        out.append(Night(f"n{i}", f"s{i}", i, "FINISHED", {}, {}, {LABELS: cell}))
    return out


def _compare(nights):
    from ptbench.nightly.compare import choose_baseline, compare
    from ptbench.schema import Nightly

    return compare(None, nights[-1], choose_baseline(nights, nights[-1], Nightly(), None), Nightly())


def test_seeds_that_failed_tonight_fail_the_night_whatever_the_others_show():
    """4 of 5 seeds diverged (loss NaN): the cell's mean over the one left looked 'unchanged'
    and the night passed."""
    from ptbench.nightly.compare import BAD
    from ptbench.nightly.history import _cell_night

    row = {"status": "FINISHED", "params.cell_hash": "h"}
    final = row | {"run_id": "f0", "tags.ptbench.seed": "0", "metrics.test_accuracy": 0.8}
    failed = [
        row | {"run_id": f"x{s}", "tags.ptbench.seed": str(s), "tags.ptbench.error": "loss is NaN"}
        for s in (1, 2, 3, 4, 0)
    ]
    cn = _cell_night(row, [final], failed)
    assert (cn.state, cn.seeds, cn.failed_seeds) == ("finished", [0], [1, 2, 3, 4])  # seed 0 retried fine
    nights = _nights([[0.8, 0.81, 0.79, 0.8, 0.8]] * 7 + [[0.8]])
    nights[-1].cells[LABELS].failed_seeds = [1, 2, 3, 4]
    found = _compare(nights)
    assert [f.status for f in found if f.status in BAD] == ["failed"]
    assert "seed(s) 1, 2, 3, 4 failed, 1 finished" in found[0].detail


def test_edited_evaluation_settings_are_changed_not_regressed():
    """A larger attack budget lowers adversarial accuracy: 'changed' (the cell hash leaves
    evaluation out), while corrupted and test accuracy, which it does not touch, are still
    compared — each robustness family has its own key."""
    seeds = [[0.60, 0.61, 0.59]] * 7 + [[0.30, 0.31, 0.29]]
    nights = _nights(seeds, "adv_accuracy", eval_keys=["all1"] * 7 + ["all2"])
    for i, n in enumerate(nights):
        cell = n.cells[LABELS]
        cell.metrics |= {"test_accuracy": [0.9, 0.91, 0.89], "corr_mean_accuracy": [0.7, 0.71, 0.69]}
        cell.family_keys = {"corr": "c1", "adv": "eps1" if i < 7 else "eps8"}
    found = {f.metric: f for f in _compare(nights)}
    assert found["adv_accuracy"].status == "changed" and "eps1 → eps8" in found["adv_accuracy"].detail
    assert found["test_accuracy"].status == found["corr_mean_accuracy"].status == "unchanged"
    again = _nights(seeds, "adv_accuracy", eval_keys=["eps8"] * 8)  # the same settings: a regression
    assert {f.metric: f.status for f in _compare(again)}["adv_accuracy"] == "regressed"


def test_final_runs_carry_a_key_per_robustness_family():
    from ptbench.finals import family_keys

    rb = {
        "corruptions": "all",
        "severities": [1, 3],
        "size": 500,
        "eps": [0.01],
        "pgd_steps": 10,
        "adversarial_size": 200,
    }
    a = family_keys(["test", "corruptions", "adversarial"], rb)
    b = family_keys(["test", "corruptions", "adversarial"], rb | {"eps": [0.03]})
    assert a["corr"] == b["corr"] and a["adv"] != b["adv"]
    assert family_keys(["test"], rb) == {"corr": "", "adv": ""}


def test_a_seed_that_collapses_tonight_does_not_widen_its_own_noise_floor():
    """Tonight [.80 .80 .80 .80 .68]: a 2.4-point drop; with tonight's spread in the floor the
    lookback test called it noise."""
    rnd = np.random.default_rng(3)
    history = [list(0.80 + rnd.normal(0, 0.004, 5)) for _ in range(7)]
    found = _compare(_nights([*history, [0.80, 0.80, 0.80, 0.80, 0.68]], "corr_mean_accuracy"))
    assert [(f.metric, f.status) for f in found] == [("corr_mean_accuracy", "regressed")]


def test_a_night_run_again_after_the_suite_was_edited_is_one_night_with_its_newest_cells():
    """The edited suite opens a second suite run under the same night key, with the cells that
    changed: the report read the first (stale) one, and the window counted the night twice."""
    from ptbench.nightly.history import nights_from_records

    def run(rid, kind, parent=None, start=0, **kw):
        base = {"run_id": rid, "tags.ptbench.kind": kind, "tags.ptbench.night": "n1", "status": "FINISHED"}
        return base | {"tags.mlflow.parentRunId": parent, "start_time": start} | kw

    def cell(rid, parent, h, reg, start):
        labels = {"params.backbone": "b", "params.backbone.weights": "package", "params.task": "digits"}
        return run(
            rid,
            "cell",
            parent,
            start,
            **labels,
            **{"params.cell_hash": h, "params.strategy": "probe", "params.regularizer": reg},
        )

    def final(rid, parent, acc, start, key="k1"):
        return run(
            rid,
            "final",
            parent,
            start,
            **{"tags.ptbench.seed": "0", "metrics.test_accuracy": acc, "tags.ptbench.eval_key": key},
        )

    records = [
        run("A", "suite", start=1),
        cell("cA1", "A", "h1", "none", 2),
        cell("cA2", "A", "h2", "ls", 3),
        final("f1", "cA1", 0.80, 4),
        final("f2", "cA2", 0.70, 5),
        run("B", "suite", start=10),
        cell("cB3", "B", "h3", "ls", 11),
        final("f3", "cB3", 0.78, 12),
        final("f4", "cA1", 0.60, 13, key="k2"),  # cell none re-evaluated under new settings
    ]
    (night,) = nights_from_records(records)
    acc = {
        labels[-1]: (c.identity["cell_hash"], c.mean("test_accuracy")) for labels, c in night.cells.items()
    }
    assert acc == {"none": ("h1", 0.60), "ls": ("h3", 0.78)}
    assert (night.suite_run, night.start_time, night.earlier_runs) == ("B", 1, ["A"])
    from ptbench.nightly.compare import pinned_night

    assert pinned_night([night], "A") is night  # pinned by the run id it had before the edit


@pytest.mark.parametrize(
    "args, message",
    [
        (("--benchmarks", "nope.json"), "--benchmarks nope.json: not a pytest-benchmark JSON file"),
        (("--baseline", "night-0"), "--baseline 'night-0': no night, suite run or tag of this suite matches"),
        (("--baseline", "n1"), "--baseline 'n1' is tonight's own night: the baseline is an earlier one"),
    ],
    ids=["benchmarks", "baseline", "baseline-tonight"],
)
def test_nightly_options_that_cannot_work_fail_before_the_night_runs(tmp_path, args, message):
    """Found after the run, a typo in --benchmarks or --baseline had spent the night's hours."""
    from conftest import TINY, ptbench, write_suite

    write_suite(tmp_path / "s.yaml", TINY)
    out = ptbench("nightly", "s.yaml", "--night", "n1", "--project-dir", "p", *args, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr.strip().splitlines()[-1]
    assert not list((tmp_path / "p").glob("**/optuna*"))  # no trial was asked for


def test_a_cold_feature_cache_is_not_a_slower_night():
    """A probe's final run encodes its features first; on a night whose cache was cold (restore
    missed, new weights) that took most of train_seconds. The speed compared is the loop's."""
    from ptbench.nightly.history import _final_metrics

    warm = {"metrics.train_seconds": 2.5, "metrics.encode_seconds": 0.5, "metrics.reference_seconds": 0.5}
    cold = warm | {"metrics.train_seconds": 32.0, "metrics.encode_seconds": 30.0}
    assert _final_metrics(warm)["train_seconds"] == _final_metrics(cold)["train_seconds"] == 4.0
    assert _final_metrics({"metrics.train_seconds": 3.0})["train_seconds"] == 3.0  # older runs


def test_a_night_searched_with_another_budget_says_so_in_its_report():
    """--trials 1 tonight (or an edited search.trials) keeps every cell's hash: its cells compare
    with nights of 3 trials as the same cells, so the report says the settings differ."""
    import html

    from ptbench.nightly.report import NightReport, markdown, page

    nights = _nights([[0.8, 0.81, 0.79]] * 4 + [[0.7, 0.71, 0.69]])
    for n in nights:
        n.tags = {"ptbench.trials_per_cell": "3", "ptbench.sampler": "tpe"}
    nights[-1].tags["ptbench.trials_per_cell"] = "1"
    from ptbench.nightly.compare import choose_baseline, compare
    from ptbench.schema import Nightly

    base = choose_baseline(nights, nights[-1], Nightly(), None)
    report = NightReport("s", nights[-1], base, compare(None, nights[-1], base, Nightly()), nights)
    note = "search settings differ from the baseline's: trials_per_cell 3 → 1"
    assert note in markdown(report) and note in html.unescape(page(report))
    nights[-1].tags["ptbench.trials_per_cell"] = "3"
    assert "search settings differ" not in markdown(report)


def test_a_cell_that_gave_up_reports_its_reason():
    """A cell whose trial jobs failed before any trial was recorded has no final run: its
    error is on the cell run, and the report said only 'no finished final run (failed)'."""
    from ptbench.nightly.history import _cell_night

    why = "3 trial jobs in a row failed before their trial was recorded: storage unreachable"
    cell = {"status": "FAILED", "params.cell_hash": "h", "tags.ptbench.error": why}
    assert _cell_night(cell, [], []).error == why


def test_a_metric_earlier_nights_recorded_and_tonight_lacks_fails_the_night():
    """A corruption family skipped by a bug logged no corr_mean_accuracy: the metric was passed
    over as one the suite does not evaluate, and the night exited 0. A suite that stopped
    evaluating it (other settings) is not flagged."""
    from ptbench.nightly.compare import BAD

    nights = _nights([[0.71, 0.70]] * 7 + [[]], metric="corr_mean_accuracy")
    (f,) = _compare(nights)
    assert (f.status, f.metric, f.nights) == ("missing", "corr_mean_accuracy", 7) and f.status in BAD
    assert f.baseline == pytest.approx(0.705)
    edited = _nights([[0.71, 0.70]] * 7 + [[]], metric="corr_mean_accuracy", eval_keys=["a"] * 7 + ["b"])
    assert _compare(edited) == []


def test_a_pinned_night_without_the_metric_leaves_the_rolling_nights_as_its_baseline():
    """Pinned to a night from before the metric was evaluated, the lookback centred on NaN: p was
    NaN, and with 7 rolling nights the finding read 'unchanged' — a gap of 0.05 → 0.30 passed."""
    from ptbench.nightly.compare import Baseline, compare
    from ptbench.schema import Nightly

    nights = _nights([[0.05, 0.04, 0.06]] * 7 + [[], [0.30, 0.31]], metric="shifted_gap")
    pinned, tonight = nights[-2], nights[-1]
    found = compare(None, tonight, Baseline([pinned], nights[:7], pinned=True), Nightly())
    (f,) = [f for f in found if f.metric == "shifted_gap"]
    assert f.baseline == pytest.approx(0.05) and f.status == "regressed"


def test_the_paired_baseline_shown_is_over_the_nights_the_effect_was_measured_on():
    """The effect came from the nights that saved predictions, the baseline shown from every
    paired night: tonight − baseline did not give the effect on the same row."""
    from ptbench.nightly.compare import Finding, _paired
    from ptbench.nightly.stats import Preds
    from ptbench.schema import Nightly

    label = np.zeros(10, int)

    def preds(right: int) -> Preds:
        return Preds(label, np.array([0] * right + [1] * (10 - right)), np.ones(10))

    nights = _nights([[0.5], [0.5], [0.9], [0.9]])
    cells = [n.cells[LABELS] for n in nights[:3]]
    f = Finding("c", "test_accuracy", "no history")
    _paired(f, "test_accuracy", [[], [], [preds(9)]], [preds(9)], cells, Nightly())
    assert f.baseline == pytest.approx(0.9) and f.effect == pytest.approx(0.0)


def test_history_shows_a_dash_where_a_cell_has_no_value():
    """An unfinished cell, or one without the metric, printed 'nan' where '—' was promised."""
    from ptbench.nightly.history import history_table

    nights = _nights([[0.8], [0.81]])
    nights[1].cells[LABELS].state = "unfinished"
    row = history_table(nights, "test_accuracy").splitlines()[3]
    assert row.split()[-1] == "—" and "nan" not in history_table(nights, "test_ece")


def test_a_night_whose_leaderboard_cannot_be_built_keeps_its_exit_code(tmp_path, capsys):
    """The board is built after the report: when it raised, a regressed night exited 3 ("internal
    error") instead of 1. Now a warning line, and the caller's exit code stands."""
    import argparse

    from conftest import TINY

    from ptbench.cli import _night_board
    from ptbench.nightly.history import Night
    from ptbench.suite import parse_suite

    a = argparse.Namespace(project_dir=str(tmp_path / "none"), tracking_uri=None, results_dir=str(tmp_path))
    report = argparse.Namespace(tonight=Night("n1", "r1", 1, "FINISHED", {}, {}, {}))
    _night_board(a, parse_suite(TINY), report)  # no tracking store there: the board cannot be built
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: the night's leaderboard was not built: ")
