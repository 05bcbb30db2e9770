"""The rank report as Markdown: per task, each backbone's score per estimator with its rank, the
fine-tuned truth where it exists, and how far each estimator's ranking agrees with it."""

from __future__ import annotations

from pathlib import Path

from ptbench.rank.score import RankReport


def render(report: RankReport) -> str:
    """Markdown: per task, each backbone's score per estimator (rank in parentheses, 1 = best),
    the fine-tuned truth where it exists, then how far each estimator's ranking agrees with it."""
    out = [f"# ptbench rank — {report.suite}", ""]
    for task in report.tasks():
        out += _task_table(report, task) + _check_lines(report, task)
    return "\n".join(out) + "\n"


def _task_table(report: RankReport, task: str) -> list[str]:
    rows = [r for r in report.rows if r.task == task]
    out = [
        f"## {task}",
        "",
        "| backbone | params | " + " | ".join(report.estimators) + " | features s | truth (test acc) |",
    ]
    out.append("|---" * (len(report.estimators) + 4) + "|")
    ranks = {n: _ranks([r.scores[n] for r in rows]) for n in report.estimators}
    for i, r in enumerate(rows):
        cells = [
            "n/a" if r.scores[n] != r.scores[n] else f"{r.scores[n]:.4g} ({ranks[n][i]})"
            for n in report.estimators
        ]
        truth = report.truth.get((task, r.backbone))
        shown = "—" if truth is None else f"{truth:.4f}"
        size = f"{r.params / 1e6:.1f} M"
        out.append(
            f"| {r.backbone} | {size} | " + " | ".join(cells) + f" | {r.seconds['features']:.1f} | {shown} |"
        )
    return out + ["", *sorted({n for r in rows for n in r.notes}), "", _seconds_line(report, rows)]


def _seconds_line(report: RankReport, rows) -> str:
    """What this task's ranking cost, per step, summed over its backbones."""
    steps = ["features", *report.estimators]
    total = {s: sum(r.seconds.get(s, 0.0) for r in rows) for s in steps}
    parts = "; ".join(f"{s} {total[s]:.1f}" for s in steps)
    return f"Seconds over these {len(rows)} backbones — {parts} (features: weights, data and forward passes)."


def _ranks(values: list[float]) -> list[str]:
    """1 = highest; equal scores share their best rank (they were told apart by grid order, as
    if the score had ordered them)."""
    known = [v for v in values if v == v]
    return [str(1 + sum(w > v for w in known)) if v == v else "—" for v in values]


def _check_lines(report: RankReport, task: str) -> list[str]:
    checks = {n: report.checks[task, n] for n in report.estimators if (task, n) in report.checks}
    truths = sum((task, r.backbone) in report.truth for r in report.rows if r.task == task)
    if truths < 3:
        return ["", "No check against the truth: fewer than 3 backbones have a finished fine-tuning cell."]
    unchecked = [n for n in report.estimators if n not in checks]
    few = f"{', '.join(unchecked)} scored fewer than 3 of the {truths} backbones with a truth: no τ."
    if not checks:
        return ["", f"No check against the truth: {few}"]
    out = [
        "",
        "| estimator | backbones | weighted τ [95 % interval] | Spearman ρ | top-1 |",
        "|---|---|---|---|---|",
    ]
    for n, a in checks.items():
        interval = (
            f"[{a['tau_w_low']:.2f}, {a['tau_w_high']:.2f}]"
            if a["tau_w_low"] == a["tau_w_low"]
            else "(no interval)"
        )
        k = a.get("backbones", "")
        out.append(f"| {n} | {k} | {a['tau_w']:.3f} {interval} | {a['spearman']:.3f} | {a['top1']:.2g} |")
    if unchecked:
        out += ["", few]
    out += _no_interval_lines(checks)
    out += _top1_lines(report, task)
    return out + _knn_lines(checks)


def _no_interval_lines(checks: dict[str, dict[str, float]]) -> list[str]:
    """Why a row has no interval: three backbones (every resample that can rank is the three),
    or no τ at all (every backbone scored alike — plain H-score saturates at classes − 1 —, or
    equal truths): the three-backbones line was printed for both."""
    nan = lambda v: v != v  # noqa: E731
    alike = [n for n, a in checks.items() if nan(a["tau_w"])]
    bare = [n for n, a in checks.items() if nan(a["tau_w_low"]) and n not in alike]
    three = [n for n in bare if checks[n].get("backbones") == 3]
    few = [n for n in bare if n not in three]
    out = []
    if three:
        why = "over three backbones every resample that can rank is the three themselves"
        out += ["", f"No interval for {', '.join(three)}: {why}."]
    if few:
        why = "no bootstrap resample varied on both sides (scores or truths nearly all equal)"
        out += ["", f"No interval for {', '.join(few)}: {why}."]
    if alike:
        why = "the scores (or the truths) are all equal, so they rank nothing"
        out += ["", f"No τ for {', '.join(alike)}: {why}."]
    return out


def _knn_lines(checks: dict[str, dict[str, float]]) -> list[str]:
    """Which estimators ranked no better than k-NN on the same backbones (LEEP and NCE score
    only those with a source classifier: there, k-NN's τ on those)."""
    if "knn" not in checks:
        return []
    knn = checks["knn"]
    worse = []
    for n, a in checks.items():
        base = a.get("knn_tau_w", knn["tau_w"])
        if n == "knn" or base != base or a["tau_w"] > base:
            continue
        same = a.get("backbones", knn.get("backbones")) == knn.get("backbones")
        worse.append(n if same else f"{n} (on its {a['backbones']} backbones, where k-NN's τ is {base:.3f})")
    if not worse:
        return []
    return ["", f"Did no better than k-NN accuracy (weighted τ ≤ {knn['tau_w']:.3f}): {', '.join(worse)}."]


def write(report: RankReport, results_dir: str | Path = "results") -> Path:
    """``rank.md`` (returned), and the same figures for scripts: ``rank.csv`` (one row per task
    and backbone: scores, seconds, truth) and ``rank_check.csv`` (per task and estimator: τ,
    its interval, ρ, top-1)."""
    folder = Path(results_dir) / report.suite
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rank.md").write_text(render(report), encoding="utf-8")
    _write_csv(folder / "rank.csv", _score_rows(report))
    checks = [{"task": t, "estimator": n, **a} for (t, n), a in report.checks.items()]
    _write_csv(folder / "rank_check.csv", checks, ["task", "estimator", *AGREEMENT])
    return folder / "rank.md"


AGREEMENT = ("backbones", "tau_w", "tau_w_low", "tau_w_high", "spearman", "top1", "knn_tau_w")


def _score_rows(report: RankReport) -> list[dict]:
    rows = []
    for r in report.rows:
        row = {"task": r.task, "backbone": r.backbone, "params": r.params}
        row |= {n: r.scores[n] for n in report.estimators}
        row |= {f"{k}_seconds": v for k, v in r.seconds.items()}
        row |= {"truth_test_accuracy": report.truth.get((r.task, r.backbone)), "imagenet_top1": r.top1}
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> None:
    """NaN (an estimator that cannot apply) and None (no truth yet) are empty cells."""
    import csv

    fields = header or list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, fields)
        out.writeheader()
        for row in rows:
            out.writerow({k: "" if v is None or v != v else v for k, v in row.items()})


def _top1_lines(report: RankReport, task: str) -> list[str]:
    """Against the free baseline for image checkpoints: their published ImageNet top-1."""
    checks = report.top1_checks.get(task)
    if not checks:
        return []
    base = checks["imagenet_top1"]
    shown = [r for r in report.rows if r.task == task and r.top1 is not None]
    k = sum((task, r.backbone) in report.truth for r in shown)
    if base["tau_w"] != base["tau_w"]:  # equal top-1s, or equal truths: nothing to beat
        return ["", f"On the {k} backbones with a published ImageNet top-1, ranking by it gives no τ."]
    # a τ that cannot be computed (the estimator scored them all alike) did not do better either
    worse = [n for n, a in checks.items() if n != "imagenet_top1" and not a["tau_w"] > base["tau_w"]]
    line = (
        f"On the {k} backbones with a published ImageNet top-1, ranking by it gives weighted "
        f"τ {base['tau_w']:.3f}; "
    )
    line += f"no better on them: {', '.join(worse)}." if worse else "every estimator did better."
    return ["", line]
