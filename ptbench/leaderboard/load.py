"""A suite's runs from the MLflow store, scoped so that nightly runs never pool as seeds."""

from __future__ import annotations

import pandas as pd

from ptbench.errors import PtbenchError


def load_runs(tracking_uri: str, suite_name: str, night: str | None = None) -> pd.DataFrame:
    """The suite's runs of one scope, so nightly runs never pool with each other as seeds: the
    night ``night``; else the plain ``ptbench run`` runs; else, where only nights exist, the
    latest night."""
    from ptbench.tracking import Tracker

    tracker = Tracker.open(tracking_uri, create=False)
    records = tracker.runs_records(suite_name)
    if not records:
        raise PtbenchError(f"no runs for suite '{suite_name}' in the tracking store; run 'ptbench run' first")
    df = pd.DataFrame(records).assign(experiment_id=tracker.experiment_id(suite_name))
    nights = df.get("tags.ptbench.night", pd.Series(None, index=df.index))
    kind = df.get("tags.ptbench.kind", pd.Series(None, index=df.index))
    # plain runs exist when plain *cells* do: 'ptbench rank' scores outside any night too
    if night is None and (nights.isna() & kind.isin(["cell", "trial", "final"])).any():
        return df[nights.isna()]
    suites = df[(kind == "suite") & nights.notna() & (nights != "")].sort_values("start_time")
    if night is None and suites.empty:  # a run stopped before its first cell, or only 'ptbench rank'
        raise PtbenchError(f"suite '{suite_name}' has no cell runs yet; run 'ptbench run' first")
    night = night if night is not None else str(suites["tags.ptbench.night"].iloc[-1])
    if night not in set(nights.dropna()):
        raise PtbenchError(
            f"--night '{night}': suite '{suite_name}' has no such night (ptbench history lists them)"
        )
    out = df[nights == night].copy()
    out.attrs["night"] = night  # the night chosen: where the page is written and logged
    return out
