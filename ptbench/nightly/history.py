"""A suite's nights as MLflow holds them: one suite run per night (tag ``ptbench.night``), its
cell runs, their finished final runs, each final run's metrics and test predictions.

Cells are matched across nights by their labels (backbone, weights, task, strategy,
regularizer); what decides whether two nights of a cell may be compared at all is its identity
(cell hash — config, search space, suite version —, the data's split hash, the weights' sha256).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ptbench.finals import EVAL_KEY, FAMILY_KEYS, newest_evaluation, of_best, once_per_seed
from ptbench.jobs import BEST, NIGHT, OPENED, SUITE_RUN

LABELS = ("backbone", "weights", "task", "strategy", "regularizer")
_PARAM = {"weights": "backbone.weights"}  # label → the cell run's param, where they differ
IDENTITY = {  # identity field → where a final run records it, what a reader is told
    "cell_hash": ("params.cell_hash", "config, search space or suite version"),
    "suite_version": ("params.suite_version", "suite version"),
    "split_hash": ("tags.ptbench.split_hash", "data split hash"),
    "weights_sha256": ("tags.ptbench.weights_sha256", "weights sha256"),
}
# metrics that also need the same evaluation settings of their family (corruptions, attacks,
# their sizes) to be compared: the cell hash leaves evaluation out; an edited eps is no regression
EVALUATED = {"corr_mean_accuracy": "corr", "adv_accuracy": "adv"}


@dataclass
class CellNight:
    labels: tuple[str, ...]
    identity: dict[str, str]
    state: str  # finished | failed | unfinished
    seeds: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)  # metric → one value per seed
    final_runs: list[str] = field(default_factory=list)  # in seed order
    error: str = ""
    best: dict[str, str] = field(default_factory=dict)  # the configuration the night's search chose
    eval_key: str = ""  # the evaluation settings its final runs ran under ("" before the tag)
    family_keys: dict[str, str] = field(default_factory=dict)  # per robustness family (finals.py)

    def evaluated_as(self, metric: str) -> str:
        """The key ``metric`` was evaluated under: its family's, or (runs written before those
        tags) the whole evaluation's."""
        return self.family_keys.get(EVALUATED[metric]) or self.eval_key

    failed_seeds: list[int] = field(default_factory=list)  # seeds with a failed run and no result
    suite_run: str = ""  # the suite run that last planned it ("" in records written before)

    def mean(self, metric: str) -> float:
        vals = [v for v in self.metrics.get(metric, []) if v == v]
        return sum(vals) / len(vals) if vals else math.nan

    @property
    def name(self) -> str:
        return " | ".join(self.labels[2:3] + self.labels[0:1] + self.labels[3:])


@dataclass
class Night:
    key: str
    suite_run: str
    start_time: int
    status: str
    tags: dict[str, str]
    metrics: dict[str, float]
    cells: dict[tuple[str, ...], CellNight] = field(default_factory=dict)
    earlier_runs: list[str] = field(default_factory=list)  # suite runs of the night before an edit

    @property
    def commit(self) -> str:
        return self.tags.get("ptbench.git_commit", "unknown")[:10]


def _final_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The compared metrics of one final run; a mean over shifted sets / attacks where several."""

    def mean_of(prefix: str, suffix: str) -> float:
        vals = [float(v) for k, v in row.items() if k.startswith(prefix) and k.endswith(suffix) and v == v]
        return sum(vals) / len(vals) if vals else math.nan

    def get(name: str) -> float:
        v = row.get(f"metrics.{name}")
        return math.nan if v is None else float(v)

    return {
        "test_accuracy": get("test_accuracy"),
        "test_macro_f1": get("test_macro_f1"),
        "test_ece": get("test_ece"),
        "shifted_gap": mean_of("metrics.shifted_", "_gap"),
        "corr_mean_accuracy": get("corr_mean_accuracy"),
        "adv_accuracy": mean_of("metrics.adv_", "_accuracy"),
        # the training loop without feature encoding (a cold feature cache — a restore missed,
        # new weights — made a probe cell look many times slower), in units of the yardstick its
        # worker timed right after training: the machine's speed of the moment divided out (raw
        # seconds for a run without one)
        "train_seconds": (
            get("train_seconds") - (get("encode_seconds") if row.get("metrics.encode_seconds") else 0.0)
        )
        / (get("reference_seconds") if row.get("metrics.reference_seconds") else 1.0),
    }


Row = dict[str, Any]  # one MLflow run, flat (Tracker.runs_records)


def _cell_night(cell: Row, finals: list[Row], failed: list[Row]) -> CellNight:
    labels = tuple(str(cell.get(f"params.{_PARAM.get(k, k)}", "?")) for k in LABELS)
    finals = sorted(finals, key=lambda r: int(r.get("tags.ptbench.seed", 0)))
    first = finals[0] if finals else cell
    identity = {k: str(first.get(col, cell.get(col, ""))) for k, (col, _) in IDENTITY.items()}
    state = "finished" if finals else ("failed" if cell["status"] == "FAILED" or failed else "unfinished")
    # a failed final run's error, else the cell's own (a cell that gave up before any trial
    # was recorded: its storage unreachable, its workers dying at start)
    error = str((failed[0] if failed else cell).get("tags.ptbench.error", "") or "")
    out = CellNight(labels, identity, state, error=error)
    out.best = {  # tags since the search can be extended; params in records written before
        k.removeprefix(f"tags.{BEST}").removeprefix("params.best."): str(v)
        for k, v in cell.items()
        if (k.startswith(f"tags.{BEST}") or k.startswith("params.best.")) and isinstance(v, str)
    }
    out.eval_key = str(first.get(f"tags.{EVAL_KEY}") or "")
    out.family_keys = {
        f: str(first[f"tags.{EVAL_KEY}.{f}"]) for f in FAMILY_KEYS if first.get(f"tags.{EVAL_KEY}.{f}")
    }
    done = {str(r.get("tags.ptbench.seed", "")) for r in finals}
    out.failed_seeds = sorted({int(r["tags.ptbench.seed"]) for r in failed if _seed(r) not in done})
    for r in finals:
        out.seeds.append(int(r.get("tags.ptbench.seed", 0)))
        out.final_runs.append(r["run_id"])
        for k, v in _final_metrics(r).items():
            out.metrics.setdefault(k, []).append(v)
    return out


def _seed(r: Row) -> str:
    return str(r.get("tags.ptbench.seed", ""))


def load_nights(tracker, exp_name: str) -> list[Night]:
    """Every night of the suite, oldest first."""
    return nights_from_records(tracker.runs_records(exp_name))


def nights_from_records(records: list[Row]) -> list[Night]:
    """The nights in a suite's MLflow records, oldest first. A night run again after the suite
    was edited has two suite runs under one key (the cells that changed under the newer one):
    they are one night, the grid of its last opened suite run, each cell as that run has it —
    a cell the edit removed (maybe one that failed) is no longer part of it."""
    rows = [r for r in records if r.get(f"tags.{NIGHT}")]
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_parent.setdefault(str(r.get("tags.mlflow.parentRunId")), []).append(r)
    nights: dict[str, Night] = {}
    suites = sorted(
        (r for r in rows if r.get("tags.ptbench.kind") == "suite"),
        key=lambda r: int(r.get(f"tags.{OPENED}") or r["start_time"] or 0),
    )
    for s in suites:
        night = Night(
            s[f"tags.{NIGHT}"],
            s["run_id"],
            int(s["start_time"] or 0),
            s["status"],
            {k[5:]: v for k, v in s.items() if k.startswith("tags.") and isinstance(v, str)},
            {k[8:]: v for k, v in s.items() if k.startswith("metrics.") and v == v},
        )
        for c in by_parent.get(s["run_id"], []):
            if c.get("tags.ptbench.kind") != "cell":
                continue
            kids = [  # the final runs of the cell's current best (a search may have been extended)
                k
                for k in by_parent.get(c["run_id"], [])
                if k.get("tags.ptbench.kind") == "final"
                and of_best(c.get("metrics.best_trial"), k.get("tags.ptbench.source_trial"))
            ]
            kids = newest_evaluation(kids)  # a night re-evaluated otherwise: its newest settings
            finals = once_per_seed([k for k in kids if k["status"] == "FINISHED"])
            failed = [k for k in kids if k["status"] == "FAILED"]
            cn = _cell_night(c, finals, failed)
            cn.suite_run = str(c.get(f"tags.{SUITE_RUN}") or "")
            night.cells[cn.labels] = cn
        earlier = nights.get(night.key)
        if earlier is not None:  # the same night again: its first start orders it among nights
            merged = earlier.cells | night.cells
            night.cells = {k: c for k, c in merged.items() if c.suite_run in ("", night.suite_run)}
            night.start_time = min(earlier.start_time, night.start_time)
            night.tags = earlier.tags | night.tags
            night.earlier_runs = [*earlier.earlier_runs, earlier.suite_run]
        nights[night.key] = night
    return sorted(nights.values(), key=lambda n: n.start_time)


def predictions(tracker, cell: CellNight) -> list[dict[str, list[float]]]:
    """The test predictions of each of the cell's final runs that saved them, in seed order."""
    tables = [_table(tracker, run) for run in cell.final_runs]
    return [t for t in tables if t is not None]


_TABLES: dict[tuple[str, str], dict | None] = {}


def _table(tracker, run_id: str) -> dict | None:
    """A finished run's predictions never change: read once per process (a report reads the
    previous nights' again each night)."""
    key = (tracker.uri, run_id)
    if key not in _TABLES:
        _TABLES[key] = tracker.read_table(run_id, "predictions/test.csv")
    return _TABLES[key]


def history_table(nights: list[Night], metric: str = "test_accuracy") -> str:
    """Nights × cells: each cell's ``metric`` (mean over seeds); ``*`` where the cell's identity
    differs from the night before (not comparable), ``failed``/``—`` where it has no result."""
    cells = sorted({c for n in nights for c in n.cells})
    names = {c: f"c{i + 1}" for i, c in enumerate(cells)}
    head = ["night", "commit", "status", *names.values()]
    rows, last = [], {}
    for n in nights:
        row = [n.key, n.commit, n.status.lower()]
        for c in cells:
            cn = n.cells.get(c)
            if cn is None:
                row.append("")
                continue
            mark = "*" if cn.state == "finished" and c in last and last[c] != cn.identity else ""
            if cn.state == "finished":
                last[c] = cn.identity
            value = cn.mean(metric)
            shown = "—" if cn.state != "finished" or math.isnan(value) else f"{value:.4f}{mark}"
            row.append("failed" if cn.state == "failed" else shown)
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [f"{metric}, mean over seeds (* = identity changed since the night before)"]
    lines += [fmt.format(*head), *(fmt.format(*r) for r in rows), ""]
    lines += [f"{names[c]} = {' | '.join(c)}" for c in cells]
    return "\n".join(lines)
