"""nox sessions: tests, lint, quickstart, benchmarks. Each reuses the current interpreter's
packages (the torch stack is several GB; a fresh venv per session would re-download it), and
runs every tool through that interpreter (``python -m …``): cron and systemd start nox with a
PATH that holds no venv, where "pip" was the system's and "ptbench" not found."""

import os
import re
import sys

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]
TOOL = {"pip": "pip", "pytest": "pytest", "ruff": "ruff", "ptbench": "ptbench.cli"}


def run(session, tool: str, *args, **kwargs):
    """``session.run`` of a tool from this interpreter's environment, whatever PATH is."""
    return session.run(sys.executable, "-m", TOOL[tool], *args, **kwargs)


@nox.session
def tests(session):
    run(session, "pip", "install", "-q", "-e", ".[dev]")
    run(session, "pytest", *session.posargs)


@nox.session
def lint(session):
    run(session, "ruff", "check", "ptbench", "tests", "benchmarks", "noxfile.py")
    run(session, "ruff", "format", "--check", "ptbench", "tests", "benchmarks", "noxfile.py")


@nox.session
def quickstart(session):
    run(session, "pip", "install", "-q", "-e", ".")
    run(session, "ptbench", "run", "suites/quickstart.yaml", *session.posargs)


@nox.session
def benchmarks(session):
    run(session, "pip", "install", "-q", "-e", ".[dev]")
    run(session, "pytest", "benchmarks", "--benchmark-only", "-p", "no:cacheprovider", *session.posargs)


SHIPPED = ["quickstart", "pretrained_vs_random", "strategies", "few_shot", "rank"]
RANKED = ["rank"]  # + ptbench rank: estimators against the fine-tuned truth (results/rank/rank.md)
# one question split per modality (each suite under an hour on 2 cores), read as one page
PAGES = {"robustness": ["robustness_image", "robustness_text", "robustness_audio"]}


@nox.session
def results(session):
    """Re-run every shipped suite and regenerate results/<suite>/ and results/<page>/ (CSV,
    Markdown, HTML + plots). Posargs: the suites or pages to regenerate."""
    run(session, "pip", "install", "-q", "-e", ".")
    for name in session.posargs or [*SHIPPED, *PAGES]:
        if name not in PAGES:
            run(session, "ptbench", "run", f"suites/{name}.yaml", "--no-progress")
            run(session, "ptbench", "leaderboard", f"suites/{name}.yaml", "--format", "html")
            if name in RANKED:
                run(session, "ptbench", "rank", f"suites/{name}.yaml")
            continue
        files = [f"suites/{suite}.yaml" for suite in PAGES[name]]
        for f in files:
            run(session, "ptbench", "run", f, "--no-progress", "--no-leaderboard")
        for fmt in ("csv", "md", "html"):
            run(session, "ptbench", "leaderboard", *files, "--page", name, "--format", fmt)


NIGHTLY = ["quickstart"]  # the shipped suites a night runs (README: what a night costs); more as posargs
NIGHTLY_BENCHMARKS = [  # the speed history: quick benchmarks, and the reference loop they are divided by
    "benchmarks/test_bench_reference.py",
    "benchmarks/test_bench_strategies.py::test_linear_probe_epoch_cached_vs_frozen_backbone",
    "benchmarks/test_bench_foundation.py::test_trainer_vs_plain_pytorch_loop",
]


# a step's exit status, as the night's summary names it (ptbench: README "Report and exit code")
STATUS = {0: "ok", 1: "regressed", 2: "user error", 3: "internal error"}


def status(session, tool: str, *args) -> int:
    """Run a step of the night, its output streamed, and return its exit status instead of
    stopping the session: one failing step must not keep the others from running."""
    from nox.command import CommandFailed

    try:
        run(session, tool, *args)
    except CommandFailed as err:
        code = getattr(err, "return_code", None)  # nox releases before 2026.07 do not set it
        if code is None:  # their message: "Returned code N"
            found = re.search(r"Returned code (-?\d+)", str(getattr(err, "reason", None) or err))
            code = int(found[1]) if found else -1
        return code
    return 0


@nox.session
def nightly(session):
    """Tonight's benchmark: the speed benchmarks (pytest-benchmark JSON), then each suite run as
    tonight's night and compared with its history (ptbench nightly). Every step runs, whatever
    the ones before it did; the session fails at the end when any step did not exit 0."""
    import datetime

    run(session, "pip", "install", "-q", "-e", ".[dev]")
    night = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    bench = f"results/nightly-benchmarks/{night}.json"
    os.makedirs(os.path.dirname(bench), exist_ok=True)
    if os.path.exists(bench):  # an earlier try of the same night: never compare a stale file
        os.remove(bench)
    steps = {
        "benchmarks": status(
            session,
            "pytest",
            *NIGHTLY_BENCHMARKS,
            "--benchmark-only",
            f"--benchmark-json={bench}",
            "-p",
            "no:cacheprovider",
        )
    }
    timed = ["--benchmarks", bench] if os.path.exists(bench) else []
    for name in session.posargs or NIGHTLY:
        steps[name] = status(
            session, "ptbench", "nightly", f"suites/{name}.yaml", "--night", night, *timed, "--no-progress"
        )
    said = {  # the benchmarks are pytest's: any exit but 0 is a failed benchmark
        name: STATUS.get(code, "failed") if name != "benchmarks" or not code else "failed"
        for name, code in steps.items()
    }
    for name, code in steps.items():
        session.log(f"nightly {night}: {name}: {said[name]} (exit {code})")
    bad = [f"{name} ({said[name]})" for name, code in steps.items() if code]
    if bad:
        session.error(f"tonight: {', '.join(bad)} (reports in results/<suite>/nightly/)")
