"""nox sessions: tests, lint, quickstart, benchmarks. Each reuses the current interpreter's
packages (the torch stack is several GB; a fresh venv per session would re-download it)."""

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session):
    session.run("pip", "install", "-q", "-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session):
    session.run("ruff", "check", "ptbench", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "ptbench", "tests", "benchmarks", "noxfile.py")


@nox.session
def quickstart(session):
    session.run("pip", "install", "-q", "-e", ".")
    session.run("ptbench", "run", "suites/quickstart.yaml", *session.posargs)


@nox.session
def benchmarks(session):
    session.run("pip", "install", "-q", "-e", ".[dev]")
    session.run("pytest", "benchmarks", "--benchmark-only", "-p", "no:cacheprovider", *session.posargs)


SHIPPED = ["quickstart", "pretrained_vs_random", "strategies", "few_shot"]


@nox.session
def results(session):
    """Re-run every shipped suite and regenerate results/<suite>/ (CSV, Markdown, HTML + plots)."""
    session.run("pip", "install", "-q", "-e", ".")
    for name in session.posargs or SHIPPED:
        session.run("ptbench", "run", f"suites/{name}.yaml", "--no-progress")
        session.run("ptbench", "leaderboard", f"suites/{name}.yaml", "--format", "html")
