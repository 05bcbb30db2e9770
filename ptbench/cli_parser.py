"""``ptbench``'s arguments: the parser of every command, and the types that refuse a bad value
in one line (argparse's own ``error:``) before any command runs. Only the standard library:
``ptbench --help`` answers at once."""

from __future__ import annotations

import argparse

from ptbench import __version__


def _batch(text: str) -> int:
    """A batch size: at least 2, as a suite's recipe asks (BatchNorm cannot train on one example:
    a traceback, exit 3)."""
    n = _positive(text)
    if n < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {n} (BatchNorm trains on two or more)")
    return n


def _positive(text: str) -> int:
    """An argument that counts something: 0 or less was silently the suite's value, or a plan
    of -2 runs."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _seed(text: str) -> int:
    """A seed as a suite's ``seeds`` takes it (numpy refuses a negative one); -5 was accepted."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 0 <= n < 2**32:
        raise argparse.ArgumentTypeError(f"{n} is not a seed: seeds are whole numbers from 0 to 2**32 - 1")
    return n


def _page(text: str) -> str:
    """A page's name is a folder under results/ (``../x`` wrote outside it)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text) or ".." in text:
        raise argparse.ArgumentTypeError(f"'{text}' is not a page name (letters, digits, _ . -)")
    return text


def _weights_name(text: str) -> str:
    """A weights name is a folder under the project's weights/ (``../x`` wrote outside it)."""
    from ptbench.files import NAME_RULE, is_folder_name

    if not is_folder_name(text):
        raise argparse.ArgumentTypeError(f"'{text}' is not {NAME_RULE}")
    return text


def _port(text: str) -> int:
    n = _positive(text)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"not a port (1-65535): {n}")
    return n


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ptbench",
        description=(
            "Benchmark pretrained-model transfer: backbone × task × strategy × regularization, "
            "searched with Optuna, recorded in MLflow, ranked on leaderboards."
        ),
    )
    p.add_argument("--version", action="version", version=f"ptbench {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check a suite file; one line per problem")
    v.add_argument("suite")

    _run_parser(sub.add_parser("run", help="run a suite (resumes where an interrupted run stopped)"))

    lb = sub.add_parser("leaderboard", help="rank the cells of a suite from its MLflow runs")
    lb.add_argument("suite", nargs="+", help="a suite file; several make one page (with --page)")
    lb.add_argument("--page", type=_page, help="several suites on one page, written to results/PAGE/")
    lb.add_argument("--format", choices=("table", "csv", "md", "html"), default="table")
    lb.add_argument("--output", help="file to write (default: results/<suite>/leaderboard.*)")
    lb.add_argument(
        "--night", help="the nightly run to rank (default: the plain runs, else the latest night)"
    )
    lb.add_argument("--project-dir")
    lb.add_argument("--tracking-uri")

    _nightly_parser(sub.add_parser("nightly", help="run tonight's suite, compare it with history, report"))

    _rank_parser(
        sub.add_parser("rank", help="score a suite's backbones per task by transferability estimators")
    )

    h = sub.add_parser("history", help="a suite's nights × cells, from its MLflow runs")
    h.add_argument("suite")
    h.add_argument("--metric", default="test_accuracy", help="metric shown (default: test_accuracy)")
    h.add_argument("--project-dir")
    h.add_argument("--tracking-uri")

    _ui_parser(sub.add_parser("ui", help="start the MLflow UI on the suite's store (127.0.0.1)"))

    _pretrain_parser(
        sub.add_parser("pretrain", help="make pretrained weights offline (reused when asked again)")
    )

    ls = sub.add_parser("ls", help="list registered backbones, tasks, strategies, regularizers")
    ls.add_argument(
        "what",
        choices=(
            "backbones",
            "tasks",
            "strategies",
            "regularizers",
            "corruptions",
            "objectives",
            "estimators",
        ),
    )
    return p


def _run_parser(r: argparse.ArgumentParser) -> None:
    r.add_argument("suite")
    r.add_argument("--dry-run", action="store_true", help="print cells and planned trials only")
    r.add_argument("--workers", type=_positive, help="parallel worker processes (one device each)")
    r.add_argument("--trials", type=_positive, help="trials per cell (overrides search.trials)")
    r.add_argument("--project-dir", help="where the default stores and caches live")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite in project dir)")
    r.add_argument("--storage", help="Optuna storage URL (default: journal file in project dir)")
    r.add_argument(
        "--executor",
        choices=("local", "ray", "inline"),
        help="where jobs run (overrides execution.executor); inline: in this process, one at a time",
    )
    r.add_argument("--address", help="Ray cluster: auto or ray://host:port (default: a local Ray instance)")
    shown = r.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        choices=("auto", "bar", "lines"),
        default="auto",
        help="a live bar, or one line per finished job (default: bar on a terminal, else lines)",
    )
    shown.add_argument("--no-progress", action="store_true", help="no bar: one line per finished job")
    shown.add_argument("--quiet", action="store_true", help="no per-job output, only the summary")
    r.add_argument("--no-leaderboard", action="store_true", help="do not write the leaderboard")


def _ui_parser(ui: argparse.ArgumentParser) -> None:
    ui.add_argument("suite", nargs="?")
    ui.add_argument("--project-dir")
    ui.add_argument("--tracking-uri")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=_port, default=5000)


def _rank_parser(rk: argparse.ArgumentParser) -> None:
    rk.add_argument("suite")
    rk.add_argument("--estimators", help="comma-separated (default: all; ptbench ls estimators)")
    rk.add_argument("--project-dir")
    rk.add_argument("--tracking-uri")
    rk.add_argument("--results-dir", default="results", help="the table goes to RESULTS_DIR/<suite>/rank.md")


def _nightly_parser(n: argparse.ArgumentParser) -> None:
    _run_parser(n)
    n.add_argument("--night", help="the night's key (default: today's UTC date); the same key resumes")
    n.add_argument(
        "--seeds",
        choices=("night", "fixed"),
        default="night",
        help="night: seeds drawn from the night's key (default) | fixed: the suite's own",
    )
    n.add_argument("--baseline", help="pin the baseline: a night key, suite run id or KEY=VALUE tag")
    n.add_argument("--benchmarks", help="pytest-benchmark JSON of tonight (--benchmark-json) for speed")
    n.add_argument("--report-only", action="store_true", help="compare and report an existing night")
    n.add_argument("--results-dir", default="results", help="reports go to RESULTS_DIR/<suite>/nightly/")


def _pretrain_parser(pt: argparse.ArgumentParser) -> None:
    pt.add_argument("backbone")
    pt.add_argument("--objective", required=True, help="supervised | mlm | clm | contrastive")
    pt.add_argument("--task", required=True, help="source task (its train split is the corpus)")
    pt.add_argument("--param", action="append", default=[], metavar="K=V", help="backbone param")
    pt.add_argument("--task-param", action="append", default=[], metavar="K=V")
    pt.add_argument("--steps", type=_positive, help="optimizer steps (mlm/clm/contrastive; default 200)")
    pt.add_argument("--epochs", type=_positive, help="epochs (supervised; default 3)")
    pt.add_argument("--batch-size", type=_batch, default=64)
    pt.add_argument("--lr", type=float, default=1e-3)
    pt.add_argument("--seed", type=_seed, default=0)
    pt.add_argument("--name", type=_weights_name, help="name to use in suites as {weights: run, id: NAME}")
    pt.add_argument("--project-dir", default=".ptbench")
    pt.add_argument("--tracking-uri")
