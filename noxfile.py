"""nox sessions: tests, lint, quickstart, benchmarks. Each reuses the current interpreter's
packages (the torch stack is several GB; a fresh venv per session would re-download it), and
runs every tool through that interpreter (``python -m …``): cron and systemd start nox with a
PATH that holds no venv, where "pip" was the system's and "ptbench" not found."""

import os
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


@nox.session
def nightly(session):
    """Tonight's benchmark: the speed benchmarks (pytest-benchmark JSON), then each suite run as
    tonight's night and compared with its history (ptbench nightly). Fails (exit 1) when any
    suite regressed, after every suite has run and reported."""
    import datetime

    run(session, "pip", "install", "-q", "-e", ".[dev]")
    night = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    bench = f"results/nightly-benchmarks/{night}.json"
    os.makedirs(os.path.dirname(bench), exist_ok=True)
    run(
        session,
        "pytest",
        *NIGHTLY_BENCHMARKS,
        "--benchmark-only",
        f"--benchmark-json={bench}",
        "-p",
        "no:cacheprovider",
    )
    regressed = []
    for name in session.posargs or NIGHTLY:
        out = run(
            session,
            "ptbench",
            "nightly",
            f"suites/{name}.yaml",
            "--night",
            night,
            "--benchmarks",
            bench,
            "--no-progress",
            success_codes=[0, 1],
            silent=True,
        )
        print(out)
        if "REGRESSED" in (out or ""):
            regressed.append(name)
    if regressed:
        session.error(f"regressed tonight: {', '.join(regressed)} (reports in results/<suite>/nightly/)")
