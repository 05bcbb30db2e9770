"""MLflow record of a suite: suite run → cell runs → trial and final runs (parentRunId links).

Runs are found again by tags (kind + key), so a resumed ``ptbench run`` writes into the same
suite and cell runs instead of starting a second record.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ptbench.errors import NoStore, PtbenchError, first_line, redact
from ptbench.tracking.connect import first_open, reach_database

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per read table

PARENT = "mlflow.parentRunId"
PARAM_TAG = "ptbench.param."  # a param whose value changed since it was logged (update_params)


def default_tracking_uri(project_dir: str | Path) -> str:
    return f"sqlite:///{Path(project_dir).resolve()}/mlflow.db"


def _metrics(metrics: dict[str, float], step: int) -> list[Any]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in metrics.items() if isinstance(v, int | float)]


def _cell(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


class EpochLog:
    """Per-epoch metrics of one run, written at most every ``every_s`` seconds and when the
    block ends (whatever ended it). Why: one write to a SQLite store costs ~9 ms, more than a
    whole epoch of a linear-probe head; an epoch that takes longer than ``every_s`` (a fine-tune)
    is still written as soon as it ends, so curves stay live in the UI.

    ``with tracker.epoch_log(run_id) as log: log(metrics, step)``
    """

    def __init__(self, tracker: Tracker, run_id: str, every_s: float):
        self.tracker, self.run_id, self.every_s = tracker, run_id, every_s
        self.pending: list[Any] = []
        self.last = time.monotonic()

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        self.pending += _metrics(metrics, step)
        if time.monotonic() - self.last >= self.every_s or len(self.pending) >= 900:
            self.flush()

    def flush(self) -> None:
        for i in range(0, len(self.pending), 1000):  # MLflow's per-batch limit
            self.tracker.client.log_batch(self.run_id, metrics=self.pending[i : i + 1000], synchronous=True)
        self.pending = []
        self.last = time.monotonic()

    def __enter__(self) -> EpochLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


class Tracker:
    """Thin wrapper over ``MlflowClient``: every call names its run, so no global state."""

    def __init__(self, uri: str, create: bool = True):
        """``create=False`` for commands that only read: a store that does not exist is an error
        (opening a SQLite one would create it, empty, wherever a mistyped URI pointed)."""
        from mlflow.tracking import MlflowClient

        # after mlflow's own logging set-up: no table-creation chatter on the user's terminal
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.uri = uri
        if "://" not in uri:  # MLflow would take it as a folder for its retired file store
            raise PtbenchError(
                f"tracking.uri '{redact(uri)}' is not a URI: sqlite:///PATH.db, http://HOST:PORT "
                "(an MLflow server) or postgresql://USER@HOST/DB"
            )
        db = Path(uri.removeprefix("sqlite:///").split("?")[0]) if uri.startswith("sqlite:///") else None
        if not create and db is not None and not db.is_file():
            raise NoStore(f"no tracking store at {db}: run the suite first, or pass --tracking-uri")
        try:
            reach_database(uri)
            with first_open(uri):
                self.client = MlflowClient(tracking_uri=uri)
        except Exception as err:  # a malformed URI, an unknown scheme, a server that refuses
            raise PtbenchError(f"tracking.uri '{redact(uri)}' cannot be opened: {first_line(err)}") from None

    @classmethod
    def open(cls, uri: str, create: bool = True) -> Tracker:
        """A tracker whose store answered, or a one-line PtbenchError."""
        tracker = cls(uri, create)
        tracker.check()
        return tracker

    # --- setup ---------------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast, in one line, when the store cannot be reached or created."""
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.search_experiments(max_results=1)
        except Exception as err:
            raise PtbenchError(
                f"tracking.uri '{redact(self.uri)}' cannot be reached: {first_line(err)}"
            ) from None

    def experiment(self, name: str, artifact_root: str | Path | None = None) -> str:
        # MLflow 3's experiment type: "custom_model_development" opens the UI's model-training
        # view (runs nested, metrics, charts) instead of the GenAI one (traces, evaluations)
        kind, training = "mlflow.experimentKind", "custom_model_development"
        exp = self._named(name)
        if exp is not None:
            if kind not in exp.tags:  # a store written before the tag: the UI would guess
                self.client.set_experiment_tag(exp.experiment_id, kind, training)
            return exp.experiment_id
        loc = Path(artifact_root).resolve().as_uri() if artifact_root else None
        try:
            return self.client.create_experiment(name, artifact_location=loc, tags={kind: training})
        except Exception:  # created by a concurrent process in the meantime
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def experiment_id(self, name: str) -> str | None:
        exp = self._named(name)
        return exp.experiment_id if exp else None

    def _named(self, name: str) -> Any | None:
        """The experiment of this name; one deleted (in the MLflow UI) is a one-line error with
        the command that restores it. Not restored here: deleting was the user's act, and
        writing into it (or reading it as "no runs") hid that from them."""
        import shlex

        exp = self.client.get_experiment_by_name(name)
        if exp is None or exp.lifecycle_stage == "active":
            return exp
        uri = shlex.quote(redact(self.uri))
        raise PtbenchError(
            f"experiment '{name}' is deleted in the tracking store: restore it with "
            f"MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id {exp.experiment_id}"
        )

    # --- writing -------------------------------------------------------------------------
    def start_run(self, exp_id: str, name: str, tags: dict[str, Any], parent: str | None = None) -> str:
        tags = {k: str(v) for k, v in tags.items()}
        if parent:
            tags[PARENT] = parent
        return self.client.create_run(exp_id, tags=tags, run_name=name).info.run_id

    def find_run(self, exp_id: str, **tags: str) -> Any | None:
        """The earliest run with these tags; a tag given as "" must be absent (a plain run's key
        has ``ptbench.night: ""``, so it never reopens a nightly run of the same suite or cell)."""
        flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items() if v != "")
        absent = [k for k, v in tags.items() if v == ""]
        runs = self.client.search_runs(
            [exp_id], filter_string=flt, max_results=1000, order_by=["attributes.start_time ASC"]
        )
        runs = [r for r in runs if not any(k in r.data.tags for k in absent)]
        return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)) if runs else None

    def ensure_run(
        self,
        exp_id: str,
        name: str,
        key: dict[str, str],
        tags: dict[str, Any],
        parent: str | None = None,
        elect: Callable[[str], str] | None = None,
    ) -> str:
        """The run with these key tags, reopened if it exists, else a new one. ``elect`` agrees on
        one run with drivers that start at the same moment (see ``search.records``): given the
        run found or made here, it returns the run every driver uses; a run made here that lost
        is deleted."""
        run = self.find_run(exp_id, **key)
        made = None
        if run is None:
            made = self.start_run(exp_id, name, {**tags, **{k: v for k, v in key.items() if v != ""}}, parent)
        chosen = elect(made or run.info.run_id) if elect else made or run.info.run_id
        if made and chosen != made:
            self.client.delete_run(made)
        if chosen != made and self.client.get_run(chosen).info.status != "RUNNING":
            self.client.update_run(chosen, status="RUNNING")
        return chosen

    def alive(self, run_id: str, exp_id: str) -> bool:
        """The run is in this store's experiment and not deleted. A store that cannot answer
        raises: a driver must not take that as 'no record' and go its own way."""
        from mlflow.exceptions import MlflowException

        try:
            info = self.client.get_run(run_id).info
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return info.lifecycle_stage == "active" and info.experiment_id == exp_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self._log_param_batch(run_id, items[i : i + 100])

    def update_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Params of a run opened again: new ones are logged; one whose value changed since (a
        label that depends on the rest of the grid, e.g. a checkpoint told apart from one added
        later) is kept as a ``ptbench.param.<key>`` tag, which ``runs_records`` reads in its
        place — MLflow params cannot change, and refusing would stop the run from resuming."""
        data = self.client.get_run(run_id).data
        have = data.params
        new = {k: v for k, v in params.items() if k not in have}
        # a value that changed, or changed back (an override tag already there is rewritten)
        changed = {
            f"{PARAM_TAG}{k}": v
            for k, v in params.items()
            if k in have and (have[k] != str(v)[:6000] or f"{PARAM_TAG}{k}" in data.tags)
        }
        self.log_params(run_id, new)
        self.set_tags(run_id, changed)

    def _log_param_batch(self, run_id: str, items: list[Any]) -> None:
        """MLflow checks a run's params, then inserts the new ones: two drivers writing the same
        params at once (both closing one cell) collide on the insert. The second write is tried
        once more, now against what the first one left: equal values pass, different ones are
        refused by MLflow as before."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.log_batch(run_id, params=items, synchronous=True)
        except MlflowException:
            have = self.client.get_run(run_id).data.params
            if any(have.get(p.key) != p.value for p in items):
                self.client.log_batch(run_id, params=items, synchronous=True)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        items = _metrics(metrics, step)
        if items:
            self.client.log_batch(run_id, metrics=items, synchronous=True)

    def epoch_log(self, run_id: str, every_s: float = 2.0) -> EpochLog:
        return EpochLog(self, run_id, every_s)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)[:5000]) for k, v in tags.items()]
        if items:
            self.client.log_batch(run_id, tags=items, synchronous=True)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_table(self, run_id: str, columns: dict[str, list], artifact_file: str) -> None:
        """Equal-length columns as a CSV artifact (the MLflow UI shows it as a table)."""
        names = list(columns)
        rows = zip(*(columns[n] for n in names), strict=True)
        body = "\n".join([",".join(names), *(",".join(_cell(v) for v in row) for row in rows)])
        self.client.log_text(run_id, body + "\n", artifact_file)

    def read_table(self, run_id: str, artifact_file: str) -> dict[str, list[float]] | None:
        """A table written by ``log_table`` as float columns, or None when the run has none."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.client.download_artifacts(run_id, artifact_file, tmp)
            except Exception:
                return None
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        names = lines[0].split(",")
        cols: dict[str, list[float]] = {n: [] for n in names}
        for line in lines[1:]:
            for n, v in zip(names, line.split(","), strict=True):
                cols[n].append(float(v))
        return cols

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def kill_stale(
        self, exp_id: str, parent: str, alive: set[str] | None = None, keep_cells: set[str] = frozenset()
    ) -> int:
        """Runs left RUNNING under ``parent`` by a killed process are marked KILLED; those of a
        job in ``alive`` (a live worker, maybe another driver's), and cell runs in ``keep_cells``,
        are left running."""
        n = 0
        for run in self.search(exp_id, f"tags.`{PARENT}` = '{parent}' and attributes.status = 'RUNNING'"):
            if alive and run.data.tags.get("ptbench.job") in alive:
                continue
            if (
                run.data.tags.get("ptbench.cell_hash") in keep_cells
                and run.data.tags.get("ptbench.kind") == "cell"
            ):
                continue
            self.set_tags(run.info.run_id, {"ptbench.state": "interrupted"})
            self.end(run.info.run_id, "KILLED")
            n += 1
        return n

    def kill_job_runs(self, exp_id: str, parent: str, job_id: str, error: str = "") -> None:
        """The run of a job whose worker died is closed as KILLED (the job is retried), or, with
        ``error`` (it will not be retried), as FAILED with that error."""
        flt = (
            f"tags.`{PARENT}` = '{parent}' and tags.`ptbench.job` = '{job_id}' "
            "and attributes.status = 'RUNNING'"
        )
        for run in self.search(exp_id, flt):
            tags = (
                {"ptbench.state": "failed", "ptbench.error": error}
                if error
                else {"ptbench.state": "interrupted"}
            )
            self.set_tags(run.info.run_id, tags)
            self.end(run.info.run_id, "FAILED" if error else "KILLED")

    # --- reading -------------------------------------------------------------------------
    def search(self, exp_id: str, filter_string: str = "") -> list[Any]:
        out, token = [], None
        while True:
            page = self.client.search_runs(
                [exp_id], filter_string=filter_string, max_results=1000, page_token=token
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    def runs_records(self, exp_name: str) -> list[dict[str, Any]]:
        """Every run of an experiment as a flat dict: info, params.*, metrics.*, tags.*."""
        exp_id = self.experiment_id(exp_name)
        if exp_id is None:
            return []
        rows = []
        for r in self.search(exp_id):
            row: dict[str, Any] = {
                "run_id": r.info.run_id,
                "status": r.info.status,
                "start_time": r.info.start_time,
                "end_time": r.info.end_time,
                "run_name": r.info.run_name,
            }
            row.update({f"params.{k}": v for k, v in r.data.params.items()})
            row.update({f"metrics.{k}": v for k, v in r.data.metrics.items()})
            row.update({f"tags.{k}": v for k, v in r.data.tags.items()})
            row.update(
                {
                    f"params.{k.removeprefix(PARAM_TAG)}": v
                    for k, v in r.data.tags.items()
                    if k.startswith(PARAM_TAG)
                }
            )
            rows.append(row)
        return rows

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]
