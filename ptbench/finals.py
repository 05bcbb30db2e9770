"""Which recorded final runs count for a cell: those of its current best trial, each seed
once. Shared by the leaderboard, the nightly history and the rank truth, so all three average
the same runs."""

from __future__ import annotations

import math
from typing import Any

from ptbench.hashing import stable_hash

EVAL_KEY = "ptbench.eval_key"  # the tag on a final run: the evaluation settings it ran under


FAMILY_KEYS = {"corr": ("corruptions", "severities", "size"), "adv": ("eps", "pgd_steps", "adversarial_size")}
FAMILY_EVALUATION = {"corr": "corruptions", "adv": "adversarial"}


# What the corruptions do, beyond their settings: bumped when an implementation changes its
# output (ptbench/evaluate/corruptions.py), so final runs corrupted the old way are evaluated
# again and the nightly comparison says "changed", not "regressed". 2 (2026-12-07): elastic's
# base grid at pixel centres, motion blur's angle per image, reverb's room per clip.
CORRUPTION_REVISION = 2


def _corruption_settings(evaluation, robustness: dict[str, Any]) -> dict[str, Any]:
    """The settings the corrupted accuracy depends on, with the implementation's revision."""
    settings = {k: robustness.get(k) for k in FAMILY_KEYS["corr"]}
    if "corruptions" in evaluation and CORRUPTION_REVISION > 1:  # revision 1: the keys as they were
        settings["revision"] = CORRUPTION_REVISION
    return settings


def evaluation_key(evaluation, robustness: dict[str, Any]) -> str:
    """What a final run was evaluated on (splits, corruptions, attacks), as a short hash. Not
    part of the cell (the search does not depend on it): a suite edited to evaluate otherwise
    re-runs its final runs instead of counting the old ones, or averaging old and new. The mCE
    reference only changes the leaderboard, so it is left out."""
    rb = {k: v for k, v in robustness.items() if k != "reference"}
    used = {"corruptions", "adversarial"} & set(evaluation)
    if "corruptions" in evaluation and CORRUPTION_REVISION > 1:
        rb["corruption_revision"] = CORRUPTION_REVISION
    return stable_hash({"evaluation": sorted(evaluation), "robustness": rb if used else {}}, 10)


def family_keys(evaluation, robustness: dict[str, Any]) -> dict[str, str]:
    """A key per robustness family, tagged ``ptbench.eval_key.<family>`` on final runs: the
    nightly comparison of corrupted accuracy must not stop because an attack budget changed,
    nor the other way round ("" where the family is not evaluated)."""
    settings = {
        "corr": _corruption_settings(evaluation, robustness),
        "adv": {k: robustness.get(k) for k in FAMILY_KEYS["adv"]},
    }
    return {
        fam: stable_hash(settings[fam], 10) if FAMILY_EVALUATION[fam] in evaluation else ""
        for fam in FAMILY_KEYS
    }


def of_evaluation(key: str | None, record_key: Any) -> bool:
    """A final run counts under evaluation settings ``key`` when it ran under them; records
    without the tag (written before it existed) count."""
    return key is None or not isinstance(record_key, str) or record_key in ("", key)


def of_seeds(seeds, record_seed: Any) -> bool:
    """A final run of a plain run counts while the suite still asks for its seed (a seed since
    removed belongs to an earlier version of the question); records without the tag count."""
    return not isinstance(record_seed, str) or record_seed in ("", *(str(s) for s in seeds))


def of_best(best_trial: Any, source_trial: Any) -> bool:
    """A final run counts for its cell when it re-ran the cell's best trial (a search extended
    with more trials may have found a better one since); records without either field count."""
    try:
        return int(float(best_trial)) == int(float(source_trial))
    except (TypeError, ValueError, OverflowError):  # missing, None or NaN
        return True


def newest_evaluation(finals: list[dict]) -> list[dict]:
    """The final runs of one cell evaluated as its newest final run was (untagged old records
    count): a night re-run under edited evaluation settings re-runs its final runs, and the
    earlier ones, kept first by ``once_per_seed``, would stand in for them."""
    if not finals:
        return finals
    newest = max(finals, key=_started).get(f"tags.{EVAL_KEY}")
    return [
        r
        for r in finals
        if of_evaluation(newest if isinstance(newest, str) else None, r.get(f"tags.{EVAL_KEY}"))
    ]


def once_per_seed(finals: list[dict]) -> list[dict]:
    """Finished final runs (MLflow records), one per (cell, trial, seed): the earliest. A seed
    can be recorded twice — a worker killed after recording its run but before closing its
    claim, or two drivers in a store written before claims were atomic — and counted twice it
    narrows every interval and weighs that seed double in a test. Runs without a seed tag (old
    records) all count."""
    seen: set[tuple] = set()
    out = []
    for r in sorted(finals, key=_started):
        seed = r.get("tags.ptbench.seed")
        key = (r.get("tags.mlflow.parentRunId"), r.get("tags.ptbench.source_trial"), seed)
        if isinstance(seed, str) and seed != "":
            if key in seen:
                continue
            seen.add(key)
        out.append(r)
    return out


def _started(record: dict) -> float:
    try:
        ms = float(record.get("start_time"))
    except (TypeError, ValueError):
        return math.inf
    return ms if ms == ms else math.inf
