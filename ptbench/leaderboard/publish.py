"""Build a suite's leaderboard, write it under results/<suite>/, and log it to the suite run."""

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
    from ptbench.leaderboard import build_leaderboard, write_outputs
    from ptbench.tracking import Tracker

    boards = build_leaderboard(tracking_uri, suite.name, suite.robustness.reference or None, night)
    written: list[Path] = []
    for fmt in formats:
        where = f"{suite.name}/nightly/{night}" if night else suite.name  # a night never overwrites
        written += write_outputs(boards, where, fmt, output if len(formats) == 1 else None, results_dir)
    tracker = Tracker(tracking_uri)
    exp = tracker.experiment_id(suite.name)
    run = tracker.find_run(exp, **{"ptbench.kind": "suite", "ptbench.night": night or ""}) if exp else None
    if run is not None:
        for p in written:  # the HTML page carries its plots: no image files beside it
            tracker.log_artifact(run.info.run_id, p, "leaderboard")
    return boards, written
