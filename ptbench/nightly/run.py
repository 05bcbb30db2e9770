"""``ptbench nightly``: tonight's run of a suite, compared with its history, reported.

A night is a suite run of its own: its key (the UTC date by default) is part of every study's
name and every run's key tags, so it searches afresh and never reopens a previous night's
trials, while cached features, weights and decoded data are reused. Seeds are drawn from the
night's key (``--seeds night``, the default), so the history measures seed noise; ``--seeds
fixed`` repeats the suite's own. Running the same night again resumes it, then reports again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from ptbench.errors import NoStore, PtbenchError
from ptbench.hashing import stable_hash
from ptbench.nightly.compare import choose_baseline, compare, compare_speed, pinned_night
from ptbench.nightly.history import load_nights
from ptbench.nightly.report import NightReport, markdown, page
from ptbench.nightly.speed import bench_ratios
from ptbench.runner import RunOptions, resolve, run_suite
from ptbench.schema import Suite

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass
class NightOptions:
    night: str | None = None  # default: today's UTC date
    seeds: str = "night"  # night: drawn from the night's key | fixed: the suite's own
    baseline: str | None = None  # a night key, suite run id or KEY=VALUE tag; default: rolling
    benchmarks: str | None = None  # a pytest-benchmark JSON file of the same night
    report_only: bool = False  # compare and report an existing night, run nothing
    results_dir: str = "results"


def night_key(key: str | None) -> str:
    key = key or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    if not KEY.match(key):
        raise PtbenchError(f"--night '{key}': use letters, digits, '_', '.', ':', '-' (at most 64)")
    return key


def night_seeds(suite: Suite, key: str) -> list[int]:
    """As many seeds as the suite lists, drawn from the suite's name and the night's key."""
    return [int(stable_hash([suite.name, key, i], 8), 16) % 2**31 for i in range(len(suite.seeds))]


def night_suite(suite: Suite, key: str, seeds: str) -> Suite:
    """The suite as tonight runs it: the night's seeds (the search's sampler too), or its own."""
    if seeds == "fixed":
        return suite
    drawn = night_seeds(suite, key)
    search = suite.search.model_copy(update={"sampler_seed": drawn[0]})
    return suite.model_copy(update={"seeds": drawn, "search": search})


def run_night(suite: Suite, run_opts: RunOptions, opts: NightOptions, suite_text: str | None = None):
    """Run (or resume) tonight, then compare it with the baseline and write the report.
    Returns (report, written files)."""
    from ptbench.tracking import Tracker

    key = night_key(opts.night)
    _, tracking, *_ = resolve(suite, run_opts)
    if not opts.report_only:
        _check_options(tracking, suite.name, key, opts)  # before a night of training, not after
        run_suite(night_suite(suite, key, opts.seeds), replace(run_opts, night=key), suite_text)
    tracker = Tracker.open(tracking, create=False)  # a report of a store that exists
    nights = load_nights(tracker, suite.name)
    tonight = next((n for n in nights if n.key == key), None)
    if tonight is None:
        raise PtbenchError(f"suite '{suite.name}' has no night '{key}' (ptbench history lists them)")
    _measure(tracker, tonight, opts)
    base = choose_baseline(nights, tonight, suite.nightly, opts.baseline)
    findings = compare(tracker, tonight, base, suite.nightly)
    up_to = [
        n for n in nights if n.start_time <= tonight.start_time and (n.status == "FINISHED" or n is tonight)
    ]
    report = NightReport(
        suite.name, tonight, base, findings, up_to, compare_speed(tonight, base, suite.nightly)
    )
    return report, _write(tracker, report, Path(opts.results_dir) / suite.name / "nightly")


def _check_options(tracking: str, suite_name: str, key: str, opts: NightOptions) -> None:
    """A --benchmarks file that cannot be read, or a --baseline no earlier night matches, is
    a one-line error before the night runs (found after it, the night's hours were spent)."""
    from ptbench.tracking import Tracker

    if opts.benchmarks:
        bench_ratios(opts.benchmarks)
    try:
        nights = load_nights(Tracker(tracking, create=False), suite_name)
    except NoStore:
        nights = []  # no store yet: no earlier night either (a bad URI still says so)
    _warn_reused_key(nights, key)
    if opts.baseline:
        pinned_night(nights, opts.baseline, key)  # raises where none matches, or it is tonight


def _warn_reused_key(nights, key: str) -> None:
    """A night key that already finished under another commit: two schedules that meet on one
    UTC date (a local-time timer past midnight UTC) resume that night, and the cells the code
    change left as they were are not trained again. Said, not refused: a re-run is legitimate."""
    import sys

    from ptbench.provenance import git_commit

    done = next((n for n in nights if n.key == key and n.status == "FINISHED"), None)
    now = git_commit()[:10]
    if done is None or "unknown" in (done.commit, now) or done.commit == now:
        return
    print(
        f"ptbench: warning: night '{key}' already finished under commit {done.commit}, now at {now}: "
        f"this resumes it (unchanged cells are not trained again); for a night of its own, "
        f"give it a new key: --night {key}-{now[:7]}",
        file=sys.stderr,
        flush=True,
    )


def _measure(tracker, tonight, opts: NightOptions) -> None:
    """The night's benchmark ratios (speed history), logged on its suite run, with the JSON."""
    if not opts.benchmarks:
        return
    ratios = bench_ratios(opts.benchmarks)
    tracker.log_artifact(tonight.suite_run, opts.benchmarks, "benchmarks")
    tracker.log_metrics(tonight.suite_run, ratios)
    tonight.metrics |= ratios


def _write(tracker, report: NightReport, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for ext, text in (("md", markdown(report)), ("html", page(report))):
        path = folder / f"{report.tonight.key}.{ext}"
        path.write_text(text, encoding="utf-8")
        tracker.log_artifact(report.tonight.suite_run, path, "nightly")
        written.append(path)
    return written
