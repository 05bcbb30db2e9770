"""Build a suite's leaderboard, write it under results/<suite>/, and log it to the suite run; or
one page over several suites (e.g. a question split per modality) under results/<page>/."""

from __future__ import annotations

from pathlib import Path


def publish(
    suite,
    tracking_uri: str,
    formats=("csv", "md", "html"),
    output: str | None = None,
    results_dir: str | Path = "results",
    night: str | None = None,
):
    from ptbench.leaderboard import Current, build_leaderboard

    boards = build_leaderboard(
        tracking_uri, suite.name, suite.robustness.reference or None, night, Current.of(suite)
    )
    night = night or next((b.night for b in boards if b.night), None)  # the latest, if only nights
    where = f"{suite.name}/nightly/{night}" if night else suite.name  # a night never overwrites
    written = _write(boards, where, formats, output, results_dir)
    _log(tracking_uri, suite.name, night, written, "leaderboard")
    return boards, written


def publish_many(
    suites: list[tuple[object, str]],
    page: str,
    formats=("csv", "md", "html"),
    output: str | None = None,
    results_dir: str | Path = "results",
    night: str | None = None,
):
    """One page over several suites, each given with its tracking URI: their boards side by side
    (each ranked within its own suite, with its own mCE reference), written to results/<page>/ and
    logged to every suite's run under leaderboard/<page>. A task that two suites share keeps both
    boards, titled by suite."""
    from collections import Counter

    from ptbench.leaderboard import Current, build_leaderboard

    per_suite = [
        (s, uri, build_leaderboard(uri, s.name, s.robustness.reference or None, night, Current.of(s)))
        for s, uri in suites
    ]
    shared = Counter(b.title for _, _, boards in per_suite for b in boards)
    boards = []
    for s, _, own in per_suite:
        for b in own:
            if shared[b.title] > 1:
                b.title = f"{s.name}: {b.title}"
            boards.append(b)
    where = f"{page}/nightly/{night}" if night else page
    written = _write(boards, where, formats, output, results_dir)
    for s, uri, _ in per_suite:
        _log(uri, s.name, night, written, f"leaderboard/{page}")
    return boards, written


def _write(boards, where: str, formats, output, results_dir) -> list[Path]:
    from ptbench.leaderboard import write_outputs

    written: list[Path] = []
    for fmt in formats:
        written += write_outputs(boards, where, fmt, output if len(formats) == 1 else None, results_dir)
    return written


def _log(tracking_uri: str, suite_name: str, night: str | None, files: list[Path], artifact_dir: str):
    """The pages on the suite's run (the HTML carries its plots: no image files beside it)."""
    from ptbench.tracking import Tracker

    tracker = Tracker(tracking_uri)
    exp = tracker.experiment_id(suite_name)
    run = tracker.find_run(exp, **{"ptbench.kind": "suite", "ptbench.night": night or ""}) if exp else None
    if run is not None:
        for p in files:
            tracker.log_artifact(run.info.run_id, p, artifact_dir)
