"""``ptbench`` command line: parses, calls the Python API, prints. No logic of its own.

Heavy imports (torch, mlflow, optuna) happen inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ptbench import __version__


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


def _port(text: str) -> int:
    n = _positive(text)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"not a port (1-65535): {n}")
    return n


def _parser() -> argparse.ArgumentParser:
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
    lb.add_argument("--page", help="several suites on one page, written to results/PAGE/")
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
    pt.add_argument("--steps", type=_positive, default=200, help="optimizer steps (mlm/clm/contrastive)")
    pt.add_argument("--epochs", type=_positive, default=3, help="epochs (supervised)")
    pt.add_argument("--batch-size", type=_positive, default=64)
    pt.add_argument("--lr", type=float, default=1e-3)
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--name", help="name to use in suites as {weights: run, id: NAME}")
    pt.add_argument("--project-dir", default=".ptbench")
    pt.add_argument("--tracking-uri")


def _cmd_validate(a) -> int:
    from ptbench.suite import expand, load_suite

    suite = load_suite(a.suite)
    print(f"{a.suite}: valid — {len(expand(suite))} cells")
    return 0


def _options(a):
    from ptbench.runner import RunOptions

    return RunOptions(
        dry_run=getattr(a, "dry_run", False),
        workers=getattr(a, "workers", None),
        trials=getattr(a, "trials", None),
        project_dir=a.project_dir,
        tracking_uri=a.tracking_uri,
        storage_url=getattr(a, "storage", None),
        progress=_progress_mode(a),
        executor=getattr(a, "executor", None),
        address=getattr(a, "address", None),
    )


def _progress_mode(a) -> str:
    if getattr(a, "quiet", False):
        return "none"
    if getattr(a, "no_progress", False):
        return "lines"
    return getattr(a, "progress", "auto")


def _cmd_run(a) -> int:
    from pathlib import Path

    from ptbench.runner import plan_text, run_suite
    from ptbench.suite import load_suite

    suite = load_suite(a.suite)
    opts = _options(a)
    print(plan_text(suite, opts))
    if a.dry_run:
        return 0
    s = run_suite(suite, opts, Path(a.suite).read_text(encoding="utf-8"))
    print(f"done in {s.seconds:.0f}s: trials {s.trials}, final runs {s.finals}")
    for e in s.errors:
        print(f"  failed {e}")
    if not a.no_leaderboard:
        from ptbench.leaderboard import render
        from ptbench.leaderboard.publish import publish

        boards, written = publish(suite, s.tracking_uri)
        print(render(boards, "table"))
        print(f"leaderboard written to {written[0].parent}/ and logged to the suite run")
    print(f"browse every run: ptbench ui {a.suite}")
    return 0


def _cmd_leaderboard(a) -> int:
    from ptbench.errors import PtbenchError
    from ptbench.leaderboard import render
    from ptbench.leaderboard.publish import publish, publish_many
    from ptbench.runner import resolve
    from ptbench.suite import load_suite

    suites = [load_suite(path) for path in a.suite]
    if len(suites) > 1 and not a.page:
        raise PtbenchError("several suites make one page: name it with --page NAME (results/NAME/)")
    if a.page:
        named = [(s, resolve(s, _options(a))[1]) for s in suites]
        boards, written = publish_many(named, a.page, (a.format,), a.output, night=a.night)
    else:
        _, tracking, *_ = resolve(suites[0], _options(a))
        boards, written = publish(suites[0], tracking, (a.format,), a.output, night=a.night)
    if a.format == "table":
        print(render(boards, "table"))
    print(f"written {written[0]}")
    return 0


def _cmd_nightly(a) -> int:
    """Exit 1 when something regressed (or a cell that used to finish failed), 0 otherwise."""
    from pathlib import Path

    from ptbench.nightly.report import summary_line
    from ptbench.nightly.run import NightOptions, run_night
    from ptbench.suite import load_suite

    suite = load_suite(a.suite)
    opts = NightOptions(a.night, a.seeds, a.baseline, a.benchmarks, a.report_only, a.results_dir)
    if a.dry_run:
        from ptbench.runner import plan_text

        print(plan_text(suite, _options(a)))
        return 0
    report, written = run_night(suite, _options(a), opts, Path(a.suite).read_text(encoding="utf-8"))
    print(summary_line(report))
    for f in report.findings + report.speed:
        if f.status in ("regressed", "failed", "improved", "changed"):
            print(f"  {f.status:<9} {f.cell}  {f.metric}  {f.detail or ''}".rstrip())
    print(f"report: {written[0]} and {written[1].name}")
    if not (a.no_leaderboard or a.report_only):
        from ptbench.leaderboard.publish import publish
        from ptbench.runner import resolve

        _, tracking, *_ = resolve(suite, _options(a))
        _, pages = publish(suite, tracking, results_dir=a.results_dir, night=report.tonight.key)
        print(f"the night's leaderboard: {pages[0].parent}/")
    return 1 if report.regressed else 0


def _cmd_rank(a) -> int:
    from ptbench.rank import rank_suite, render, write
    from ptbench.runner import resolve
    from ptbench.suite import load_suite

    suite = load_suite(a.suite)
    names = [n.strip() for n in a.estimators.split(",")] if a.estimators else None
    project, tracking, *_ = resolve(suite, _options(a))
    report = rank_suite(suite, project, tracking, names)
    print(render(report))
    path = write(report, a.results_dir)
    print(f"written {path} (and rank.csv, rank_check.csv beside it)")
    return 0


def _cmd_history(a) -> int:
    from ptbench.nightly.history import history_table, load_nights
    from ptbench.runner import resolve
    from ptbench.suite import load_suite
    from ptbench.tracking import Tracker

    suite = load_suite(a.suite)
    _, tracking, *_ = resolve(suite, _options(a))
    nights = load_nights(Tracker.open(tracking, create=False), suite.name)
    if not nights:
        print(f"suite '{suite.name}' has no nightly runs yet: ptbench nightly {a.suite}")
        return 0
    print(history_table(nights, a.metric))
    return 0


def _cmd_ui(a) -> int:
    from ptbench.tracking.ui import serve

    if a.suite:
        from ptbench.runner import resolve
        from ptbench.suite import load_suite

        suite = load_suite(a.suite)
        _, tracking, *_ = resolve(suite, _options(a))
        return serve(tracking, a.host, a.port, suite.name)  # opens at the suite's experiment
    from pathlib import Path

    from ptbench.tracking import default_tracking_uri

    tracking = a.tracking_uri or default_tracking_uri(Path(a.project_dir or ".ptbench"))
    return serve(tracking, a.host, a.port)


def _kv(pairs: list[str], flag: str) -> dict:
    import yaml

    from ptbench.errors import PtbenchError

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise PtbenchError(f"{flag} '{pair}': expected KEY=VALUE")
        k, v = pair.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def _cmd_pretrain(a) -> int:
    from ptbench.pretrain.run import PretrainSpec, pretrain

    spec = PretrainSpec(
        a.backbone,
        a.objective,
        a.task,
        _kv(a.param, "--param"),
        _kv(a.task_param, "--task-param"),
        a.steps,
        a.epochs,
        a.batch_size,
        a.lr,
        a.seed,
    )
    res = pretrain(spec, a.project_dir, a.tracking_uri, a.name)
    verb = "reused" if res.reused else f"made in {res.meta['seconds']:.0f}s"
    print(f"{res.name}: {verb}, final loss {res.meta['final_loss']:.4f} → {res.path}")
    print(f"use in a suite: {{name: {a.backbone}, weights: run, id: {res.name}}}")
    return 0


def _cmd_ls(a) -> int:
    from ptbench.catalog import listing

    print(listing(a.what))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cmds = {
        "validate": _cmd_validate,
        "run": _cmd_run,
        "leaderboard": _cmd_leaderboard,
        "ui": _cmd_ui,
        "nightly": _cmd_nightly,
        "history": _cmd_history,
        "rank": _cmd_rank,
        "ls": _cmd_ls,
        "pretrain": _cmd_pretrain,
    }
    from ptbench.errors import PtbenchError, SuiteError

    signal.signal(signal.SIGTERM, _terminated)  # kill, systemd, Slurm, Kubernetes: stop cleanly
    try:
        return cmds[args.cmd](args)
    except SuiteError as err:
        for line in err.problems:
            print(line, file=sys.stderr)
        return 2
    except PtbenchError as err:
        print(f"ptbench: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head, less …
        return 0
    except Terminated:
        print("\nptbench: terminated — run the same command again to resume", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("\nptbench: interrupted — run the same command again to resume", file=sys.stderr)
        return 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so it unwinds like Ctrl-C: workers stopped,
    their trials handed back, servers stopped."""


def _terminated(signum, frame) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
