"""Tonight against the baseline, per cell and metric: regressed, improved, unchanged — or
changed (not comparable), new, failed, without enough history.

A regression needs both: a statistically significant move in the worse direction and a move
at least as large as the suite's ``nightly.min_effect`` for that metric. Test accuracy,
macro-F1 and ECE are compared pairwise on the same test examples (``stats.paired_bootstrap``
over examples and seeds); the other metrics by a z-score against the previous nights. A cell
whose identity (config, split hash, weights) differs from the baseline's is "changed": never
compared as if it were the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ptbench.nightly.history import EVALUATED, IDENTITY, CellNight, Night, predictions
from ptbench.nightly.stats import PAIRED, Paired, Preds, lookback, mcnemar, paired_bootstrap
from ptbench.schema import NIGHTLY_METRICS, Nightly

BAD = ("regressed", "failed", "missing")  # statuses that make the night's exit code 1


@dataclass
class Finding:
    cell: str
    metric: str
    status: str  # regressed | improved | unchanged | changed | new | failed | missing | no history
    value: float = math.nan  # tonight (mean over seeds)
    baseline: float = math.nan
    effect: float = math.nan  # tonight − baseline (train_seconds and benchmarks: relative)
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    z: float = math.nan
    test: str = ""  # paired bootstrap | z-score
    detail: str = ""
    nights: int = 0  # baseline nights the comparison used
    paired: Paired | None = None  # the paired bootstrap, where per-example predictions exist


@dataclass
class Baseline:
    """The nights tonight is compared with: ``paired`` for the paired tests (the rolling window,
    or the pinned night), ``history`` for z-scores (the rolling window, always)."""

    paired: list[Night]
    history: list[Night]
    pinned: bool = False

    def describe(self) -> str:
        keys = ", ".join(n.key for n in self.paired) or "none"
        return f"pinned night {keys}" if self.pinned else f"previous {len(self.paired)} night(s): {keys}"


SEARCH_SETTINGS = ("trials_per_cell", "sampler", "pruner")  # suite-run tags; not in the cell hash


def settings_changed(tonight: Night, base: Baseline) -> str:
    """The search settings tonight ran with that its baseline nights did not (``--trials 1``, an
    edited budget or sampler): the cell hash leaves them out, so cells compare as the same, and a
    reader must know a drop may come from them, not from the code."""
    diffs = []
    for key in SEARCH_SETTINGS:
        now = tonight.tags.get(f"ptbench.{key}")
        before = {n.tags[f"ptbench.{key}"] for n in base.paired + base.history if f"ptbench.{key}" in n.tags}
        if now is not None and before and before != {now}:
            diffs.append(f"{key} {'/'.join(sorted(before))} → {now}")
    if not diffs:
        return ""
    return (
        "search settings differ from the baseline's: " + "; ".join(diffs) + " — a change may come from them"
    )


def choose_baseline(nights: list[Night], tonight: Night, cfg: Nightly, pinned: str | None) -> Baseline:
    """Previous finished nights, newest ``lookback`` of them; or the pinned one (a night key,
    a suite run id, or a ``KEY=VALUE`` tag of the suite run) for the paired tests."""

    before = [n for n in nights if n.start_time < tonight.start_time and n.status == "FINISHED"]
    history = before[-cfg.lookback :]
    if not pinned:
        return Baseline(history, history)
    return Baseline([pinned_night(nights, pinned, tonight.key)], history, pinned=True)


def pinned_night(nights: list[Night], pinned: str, tonight: str = "") -> Night:
    """The newest night other than ``tonight`` that ``pinned`` names: a night key, a suite run
    id, or a ``KEY=VALUE`` tag."""
    from ptbench.errors import PtbenchError

    if pinned == tonight:
        raise PtbenchError(f"--baseline '{pinned}' is tonight's own night: the baseline is an earlier one")
    nights = [n for n in nights if n.key != tonight]

    key, _, val = pinned.partition("=")
    match = [
        n
        for n in nights
        if n.key == pinned or pinned in (n.suite_run, *n.earlier_runs) or (val and n.tags.get(key) == val)
    ]
    if not match:
        raise PtbenchError(f"--baseline '{pinned}': no night, suite run or tag of this suite matches")
    if match[-1].status != "FINISHED":  # its cells are partial: each missing one would go unseen
        raise PtbenchError(
            f"--baseline '{pinned}': night {match[-1].key} did not finish ({match[-1].status.lower()}); "
            "pin a finished night (ptbench history lists them)"
        )
    return match[-1]


def compare(tracker, tonight: Night, base: Baseline, cfg: Nightly) -> list[Finding]:
    out: list[Finding] = []
    for _, cell in sorted(tonight.cells.items()):
        out += _compare_cell(tracker, cell, base, cfg)
    decide(out, cfg)
    return out


def _comparable(cell: CellNight, nights: list[Night]) -> list[CellNight]:
    return [
        n.cells[cell.labels]
        for n in nights
        if cell.labels in n.cells
        and n.cells[cell.labels].state == "finished"
        and n.cells[cell.labels].identity == cell.identity
    ]


def _changed(cell: CellNight, nights: list[Night]) -> str:
    """What differs from the newest baseline night that had the cell finished, or ''."""
    seen = [n.cells[cell.labels] for n in nights if cell.labels in n.cells]
    seen = [c for c in seen if c.state == "finished"]
    if not seen:
        return ""
    last = seen[-1].identity
    diffs = [
        f"{IDENTITY[k][1]} {last[k][:12]} → {cell.identity[k][:12]}"
        for k in IDENTITY
        if k != "cell_hash" and last.get(k) != cell.identity.get(k)
    ]
    if not diffs and last.get("cell_hash") != cell.identity.get("cell_hash"):
        diffs = [f"{IDENTITY['cell_hash'][1]} (cell hash {last['cell_hash']} → {cell.identity['cell_hash']})"]
    return "; ".join(diffs)


def _compare_cell(tracker, cell: CellNight, base: Baseline, cfg: Nightly) -> list[Finding]:
    had = [n for n in base.history + base.paired if cell.labels in n.cells]
    if cell.state != "finished":  # a new cell that failed has failed too
        ran = cell.state == "failed" or any(n.cells[cell.labels].state == "finished" for n in had)
        status = "failed" if ran else "new"
        return [Finding(cell.name, "—", status, detail=cell.error or f"no finished final run ({cell.state})")]
    found = _failed_seeds(cell)  # whatever else the cell shows
    paired, history = _comparable(cell, base.paired), _comparable(cell, base.history)
    pinned_change = _changed(cell, base.paired) if base.pinned and not paired else ""
    if pinned_change:  # the pinned night ran this cell otherwise: its value is not tonight's baseline
        detail = f"since the pinned baseline: {pinned_change}"
        return [*found, Finding(cell.name, "—", "changed", value=cell.mean("test_accuracy"), detail=detail)]
    if base.pinned and not paired:  # not against the rolling nights while the header says pinned
        key = base.paired[0].key
        detail = f"not in the pinned night {key} (absent or unfinished there): not compared"
        return [*found, Finding(cell.name, "—", "new", value=cell.mean("test_accuracy"), detail=detail)]
    if not paired and not history:
        change = _changed(cell, base.paired + base.history)
        status, detail = ("changed", change) if change else ("new", "no earlier night of this cell")
        return [*found, Finding(cell.name, "—", status, value=cell.mean("test_accuracy"), detail=detail)]
    cur, by_night = None, None
    for metric in NIGHTLY_METRICS:
        if math.isnan(cell.mean(metric)):  # not evaluated by this suite, or lost tonight
            found += _missing(cell, metric, paired + history)
            continue
        if metric in EVALUATED and (f := _evaluated_otherwise(cell, metric, paired + history)):
            found.append(f)
            continue
        hist, pin = history, paired[0] if base.pinned and paired else None
        if metric in EVALUATED:  # only the nights that evaluated it as tonight did
            hist = [c for c in history if c.evaluated_as(metric) == cell.evaluated_as(metric)]
            pin = pin if pin is not None and pin.evaluated_as(metric) == cell.evaluated_as(metric) else None
        f = _by_history(cell, metric, hist, pin, cfg)
        if metric in PAIRED and paired:
            if cur is None:  # downloaded once per cell, only when a paired test can run
                cur, by_night = _preds(tracker, cell), [_preds(tracker, c) for c in paired]
            if cur and any(by_night):
                _paired(f, metric, by_night, cur, paired, cfg)
        found.append(f)
    note = _search_note(cell, paired or history)
    for f in found if note else []:
        f.detail = f"{f.detail}; {note}" if f.detail else note
    return found


def _missing(cell: CellNight, metric: str, earlier: list[CellNight]) -> list[Finding]:
    """A metric that earlier nights recorded under the same evaluation settings and tonight did
    not (a corruption family silently skipped, a metric no longer logged) fails the night: it was
    passed over as one this suite does not evaluate. A suite that stopped evaluating it has other
    settings (another evaluation key), and is not flagged."""

    def same(c: CellNight) -> bool:
        if metric in EVALUATED:
            return c.evaluated_as(metric) == cell.evaluated_as(metric)
        return c.eval_key == cell.eval_key

    earlier = list({id(c): c for c in earlier}.values())  # the rolling nights are paired and history both
    had = [c for c in earlier if not math.isnan(c.mean(metric)) and same(c)]
    if not had:
        return []
    detail = f"recorded on {len(had)} earlier night(s) evaluated as tonight was, not tonight"
    mean = _mean(c.mean(metric) for c in had)
    return [Finding(cell.name, metric, "missing", baseline=mean, detail=detail, nights=len(had))]


def _failed_seeds(cell: CellNight) -> list[Finding]:
    """Seeds whose final run failed tonight: the cell's means are over the others, and a change
    that makes most seeds diverge must not pass as 'unchanged' on the one left."""
    if not cell.failed_seeds:
        return []
    seeds = ", ".join(map(str, cell.failed_seeds))
    detail = f"seed(s) {seeds} failed, {len(cell.seeds)} finished" + (f": {cell.error}" if cell.error else "")
    return [Finding(cell.name, "seeds", "failed", detail=detail)]


def _evaluated_otherwise(cell: CellNight, metric: str, earlier: list[CellNight]) -> Finding | None:
    """'changed' where no earlier night evaluated ``metric`` (corruptions, attacks) as tonight
    did: an edited attack budget or corruption list is not a regression."""
    now = cell.evaluated_as(metric)
    if not earlier or any(c.evaluated_as(metric) == now for c in earlier):
        return None
    detail = f"evaluation settings {earlier[-1].evaluated_as(metric) or '(untagged)'} → {now or '(untagged)'}"
    return Finding(cell.name, metric, "changed", value=cell.mean(metric), detail=detail)


def _search_note(cell: CellNight, earlier: list[CellNight]) -> str:
    """Which hyperparameters tonight's search chose differently from the newest comparable
    night: a move in a cell whose search flipped is a real change of its result, but its cause
    is the search, not the code."""
    if not earlier or not cell.best or not earlier[-1].best:
        return ""
    last = earlier[-1].best
    moved = [
        f"{k}={_short(v)} (was {_short(last.get(k, '—'))})" for k, v in cell.best.items() if last.get(k) != v
    ]
    return "search chose " + ", ".join(moved) if moved else ""


def _short(v: str) -> str:
    try:
        return f"{float(v):.3g}"
    except ValueError:
        return v


def _preds(tracker, cell: CellNight) -> list[Preds]:
    return [Preds.of(t) for t in predictions(tracker, cell)]


def _seed_sd(cells: list[CellNight], metric: str) -> float:
    """The pooled within-night sd over seeds: how far one night's mean may stray by its seeds
    alone (divided by √seeds below), whatever a short history happens to show."""
    ss = dof = 0.0
    for c in cells:
        vals = [v for v in c.metrics.get(metric, []) if v == v]
        if len(vals) > 1:
            m = sum(vals) / len(vals)
            ss += sum((v - m) ** 2 for v in vals)
            dof += len(vals) - 1
    return math.sqrt(ss / dof) if dof else 0.0


def _by_history(cell, metric, history: list[CellNight], pinned_cell, cfg: Nightly) -> Finding:
    """Tonight's cell mean against the comparable previous nights' (``stats.lookback``),
    centred on the pinned night's where one is pinned and comparable."""
    hist = [c.mean(metric) for c in history]
    value = cell.mean(metric)
    pinned = pinned_cell.mean(metric) if pinned_cell is not None else None
    if pinned is not None and math.isnan(pinned):  # the pinned night did not record it: the rolling nights'
        pinned = None
    seeds = max(1, len(cell.metrics.get(metric, [])))
    # the seeds' spread of the earlier nights (tonight's only without one): a regression that
    # collapses one seed tonight would otherwise widen its own noise floor and hide
    sd = _seed_sd(history, metric) or _seed_sd(history + [cell], metric)
    lb = lookback(hist, value, pinned, floor=sd / math.sqrt(seeds))
    f = Finding(cell.name, metric, "no history", value, lb.center, z=lb.z, p=lb.p, test="lookback")
    f.nights = len([h for h in hist if h == h])
    f.effect = value / lb.center - 1 if metric == "train_seconds" else value - lb.center
    if f.nights < cfg.min_history:
        f.detail = f"{f.nights} comparable night(s) before; a flag needs {cfg.min_history}"
    return f


def _paired(f: Finding, metric, by_night: list[list[Preds]], cur: list[Preds], nights, cfg: Nightly) -> None:
    """The paired test on the same test examples, beside the lookback test: a flag needs both
    (``decide``), as one night's paired test cannot see night-to-night noise (which
    configuration the search picked) and the lookback test cannot see the examples."""
    base = [p for night in by_night for p in night]
    k = int(max(max(p.label.max(), p.pred.max()) for p in base + cur)) + 1
    f.paired = paired_bootstrap(metric, base, cur, k, cfg.bootstrap, cfg.alpha)
    f.effect, f.low, f.high = f.paired.effect, f.paired.low, f.paired.high
    f.baseline = _mean(n.mean(metric) for n, preds in zip(nights, by_night, strict=True) if preds)
    if metric == "test_accuracy":
        newest = next(night for night in reversed(by_night) if night)
        b, c, p = mcnemar(newest[0], cur[0])
        f.detail = (
            f"McNemar, one model of each (the newest night's first seed, tonight's): {b} right→wrong, "
            f"{c} wrong→right, p={p:.2g}"
        )


def decide(findings: list[Finding], cfg: Nightly, min_effect=None) -> None:
    """Regressed / improved / unchanged for every finding with enough history, at once. A move
    is flagged when (1) Holm's step-down over all of ``findings`` (the night's cell tests; its
    benchmarks are a second family) rejects it at
    ``cfg.alpha`` — so a suite of 50 cells × 7 metrics does not raise three false alarms a night
    at 1 % each — on the paired test where there is one, else on the lookback test; (2) for a
    paired metric, the lookback test agrees at ``cfg.alpha`` too: the move is unusual for this
    cell across nights, not only across examples; (3) it is at least the metric's min effect."""
    tested = [f for f in findings if f.status == "no history" and f.nights >= cfg.min_history]
    ps = [f.paired.p if f.paired is not None else f.p for f in tested]
    order = sorted(range(len(tested)), key=lambda i: ps[i] if ps[i] == ps[i] else 1.0)
    rejecting = True
    for rank, i in enumerate(order):
        f = tested[i]
        rejecting = rejecting and ps[i] == ps[i] and ps[i] <= cfg.alpha / (len(tested) - rank)
        agrees = f.paired is None or (f.p == f.p and f.p <= cfg.alpha)
        big = abs(f.effect) >= (min_effect if min_effect is not None else cfg.effect(f.metric))
        f.status = "unchanged"
        if rejecting and agrees and big:
            better = NIGHTLY_METRICS.get(f.metric, ("min",))[0]
            worse = f.effect < 0 if better == "max" else f.effect > 0
            f.status = "regressed" if worse else "improved"


def _mean(values) -> float:
    vals = [v for v in values if v == v]
    return sum(vals) / len(vals) if vals else math.nan


def compare_speed(tonight: Night, base: Baseline, cfg: Nightly) -> list[Finding]:
    """Each benchmark's ratio to the reference loop against the previous nights' ratios, on a
    log scale (ratios spread multiplicatively); flagged as ``decide`` says, with
    ``bench_min_effect`` as the smallest relative change worth it."""
    out = []
    for key in sorted(k for k in tonight.metrics if k.startswith("bench.")):
        value = tonight.metrics[key]
        hist = [n.metrics[key] for n in base.history if key in n.metrics]
        lb = lookback([math.log(h) for h in hist], math.log(value))
        f = Finding(key[6:], key, "no history", value, math.exp(lb.center), z=lb.z, p=lb.p, test="lookback")
        f.nights, f.effect = len(hist), value / f.baseline - 1
        if f.nights < cfg.min_history:
            f.detail = f"{f.nights} earlier night(s); a flag needs {cfg.min_history}"
        out.append(f)
    decide(out, cfg, min_effect=cfg.bench_min_effect)
    for f in out:  # slower is worse
        if f.status in ("regressed", "improved"):
            f.status = "regressed" if f.effect > 0 else "improved"
    return out
