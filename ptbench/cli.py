"""``ptbench`` command line: parses, calls the Python API, prints. No logic of its own.

Heavy imports (torch, mlflow, optuna) happen inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import signal
import sys

from ptbench.cli_parser import parser


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
    print(f"browse every run: {_ui_hint(a)}")
    return 0


def _ui_hint(a) -> str:
    """The ``ptbench ui`` line that opens the store this run wrote: with its --project-dir and
    --tracking-uri (the bare suite opened the default store) and each word quoted for a shell."""
    import shlex

    from ptbench.errors import redact

    words = [a.suite]
    for flag, value in (("--project-dir", a.project_dir), ("--tracking-uri", a.tracking_uri)):
        words += [flag, redact(value)] if value else []
    return "ptbench ui " + " ".join(shlex.quote(w) for w in words)


def _cmd_leaderboard(a) -> int:
    from ptbench.errors import PtbenchError
    from ptbench.leaderboard import render
    from ptbench.leaderboard.publish import publish, publish_many
    from ptbench.runner import resolve
    from ptbench.suite import load_suite

    _check_output(a.output, a.format)
    suites = [load_suite(path, sources=False) for path in a.suite]
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


def _check_output(output: str | None, fmt: str) -> None:
    """--output must be a file, of the format written (HTML went silently into a .md file)."""
    from pathlib import Path

    from ptbench.errors import PtbenchError

    if output is None:
        return
    if Path(output).is_dir():
        raise PtbenchError(f"--output {output} is a folder: name the file to write")
    suffix = Path(output).suffix.lower()
    fits = {"csv": (".csv",), "md": (".md",), "html": (".html", ".htm"), "table": (".txt",)}[fmt]
    if suffix and suffix not in fits:
        raise PtbenchError(f"--output {output} with --format {fmt}: name it {Path(output).stem}{fits[0]}")


def _cmd_nightly(a) -> int:
    """Exit 1 when something regressed (or a cell that used to finish failed), 0 otherwise."""
    from pathlib import Path

    from ptbench.errors import PtbenchError
    from ptbench.nightly.report import summary_line
    from ptbench.nightly.run import NightOptions, run_night
    from ptbench.suite import load_suite

    if a.dry_run and a.report_only:  # it printed a plan of runs that --report-only never runs
        raise PtbenchError("--dry-run with --report-only: a report-only night runs nothing; drop one")
    suite = load_suite(a.suite)
    _check_results_dir(a.results_dir)
    opts = NightOptions(a.night, a.seeds, a.baseline, a.benchmarks, a.report_only, a.results_dir)
    if a.dry_run:
        from ptbench.runner import plan_text

        print(plan_text(suite, _options(a)))
        return 0
    report, written = run_night(suite, _options(a), opts, Path(a.suite).read_text(encoding="utf-8"))
    print(summary_line(report))
    for f in report.findings + report.speed:
        if f.status in ("regressed", "failed", "missing", "improved", "changed"):
            print(f"  {f.status:<9} {f.cell}  {f.metric}  {f.detail or ''}".rstrip())
    print(f"report: {written[0]} and {written[1].name}")
    if not (a.no_leaderboard or a.report_only):
        _night_board(a, suite, report)
    return 1 if report.regressed else 0


def _night_board(a, suite, report) -> None:
    """The night's leaderboard, after its report: a board that cannot be built is one warning
    line, never the night's exit code — a regressed night that also failed here said "internal
    error" (3) instead of "regressed" (1) to the scheduler."""
    import sys

    from ptbench.errors import first_line
    from ptbench.leaderboard.publish import publish
    from ptbench.runner import resolve

    try:
        _, tracking, *_ = resolve(suite, _options(a))
        _, pages = publish(suite, tracking, results_dir=a.results_dir, night=report.tonight.key)
    except Exception as err:  # the report is written and the exit code decided: say it, go on
        from ptbench.errors import PtbenchError

        why = first_line(err) if isinstance(err, PtbenchError) else f"{type(err).__name__}: {first_line(err)}"
        print(f"warning: the night's leaderboard was not built: {why}", file=sys.stderr)
        return
    print(f"the night's leaderboard: {pages[0].parent}/")


def _check_results_dir(path: str) -> None:
    """--results-dir must be a folder this user can write (or one that can be made there):
    found after the night's hours of training, it was a NotADirectoryError traceback."""
    from ptbench.errors import PtbenchError
    from ptbench.files import folder_problem

    problem = folder_problem(path)
    if problem is not None:
        raise PtbenchError(f"--results-dir {path}: {problem}")


def _cmd_rank(a) -> int:
    from ptbench.rank import rank_suite, render, write
    from ptbench.runner import make_project, resolve
    from ptbench.suite import load_suite

    suite = load_suite(a.suite)
    _check_results_dir(a.results_dir)
    names = _estimators(a.estimators)
    project = make_project(suite, _options(a))
    _, tracking, *_ = resolve(suite, _options(a))
    report = rank_suite(suite, project, tracking, names)
    print(render(report))
    path = write(report, a.results_dir)
    print(f"written {path} (and rank.csv, rank_check.csv beside it)")
    return 0


def _estimators(text: str | None) -> list[str] | None:
    """--estimators as a list; a name given twice was scored twice, in two columns."""
    from ptbench.errors import PtbenchError

    if not text:
        return None
    names = [n.strip() for n in text.split(",")]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise PtbenchError(f"--estimators {text}: '{n}' is listed twice")
    return names


def _cmd_history(a) -> int:
    from ptbench.errors import PtbenchError
    from ptbench.nightly.history import history_table, load_nights
    from ptbench.runner import resolve
    from ptbench.schema import NIGHTLY_METRICS
    from ptbench.suite import load_suite
    from ptbench.tracking import Tracker

    if a.metric not in NIGHTLY_METRICS:
        raise PtbenchError(f"--metric {a.metric}: not a nightly metric ({', '.join(NIGHTLY_METRICS)})")
    suite = load_suite(a.suite, sources=False)
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

        suite = load_suite(a.suite, sources=False)
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


def _flag(field: str) -> str:
    """A recipe field as the command line spells it: task_params.k → --task-param k, lr → --lr."""
    if field == "backbone":
        return "BACKBONE"
    head, _, key = field.partition(".")
    return {"task_params": "--task-param ", "params": "--param "}[head] + key if key else f"--{field}"


def _cmd_pretrain(a) -> int:
    from ptbench.files import make_folder
    from ptbench.pretrain.run import PretrainSpec, pretrain, spec_problems

    budget = {k: v for k, v in (("steps", a.steps), ("epochs", a.epochs)) if v is not None}
    params, task_params = _kv(a.param, "--param"), _kv(a.task_param, "--task-param")
    spec = PretrainSpec(
        a.backbone,
        a.objective,
        a.task,
        params,
        task_params,
        **budget,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
    )
    problems = [f"{_flag(f)}: {why}" for f, why in spec_problems(spec, set(budget))]
    if problems:
        from ptbench.errors import SuiteError

        raise SuiteError(problems)
    make_folder(a.project_dir, f"--project-dir {a.project_dir}")
    res = pretrain(spec, a.project_dir, a.tracking_uri, a.name)
    verb = "reused" if res.reused else f"made in {res.meta['seconds']:.0f}s"
    print(f"{res.name}: {verb}, final loss {res.meta['final_loss']:.4f} → {res.path}")
    shown = f", params: {{{', '.join(f'{k}: {v}' for k, v in params.items())}}}" if params else ""
    print(f"use in a suite: {{name: {a.backbone}, weights: run, id: {res.name}{shown}}}")
    return 0


def _cmd_ls(a) -> int:
    from ptbench.catalog import listing

    print(listing(a.what))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # a closed terminal; not under nohup
        signal.signal(signal.SIGHUP, _terminated)
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
    except Exception:  # a bug or a broken store, not the user's mistake: 3, not a regression's 1
        import traceback

        traceback.print_exc()
        print("ptbench: internal error (exit 3) — the traceback above says where", file=sys.stderr)
        return 3


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so it unwinds like Ctrl-C: workers stopped,
    their trials handed back, servers stopped."""


def _terminated(signum, frame) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
