"""Search that can be trusted: distinct proposals across workers, replayable seeds, failures recorded.

Every test runs a real Optuna study on a journal file under tmp_path, with a tiny objective in
place of training, so the search machinery itself is what is measured.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path
from typing import get_args

import optuna
import pytest
from conftest import write_suite

from ptbench.jobs import RunContext, open_study, search_trial
from ptbench.search import ERROR, PRUNERS, SAMPLERS, CellStudy, Pruned, default_storage_url
from ptbench.suite import Suite, expand, load_suite
from ptbench.tracking import Tracker, default_tracking_uri

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "epochs": 3,
}
TRIALS = 12
BARRIER_GUARD_S = 300  # only turns a dead worker into a failure instead of a hang


def objective(params: dict) -> float:
    """A smooth, deterministic stand-in for validation accuracy (best near lr=1e-2, wd=1e-4)."""
    return 1.0 / (1.0 + (params["lr"] - 1e-2) ** 2 * 1e4 + (params["weight_decay"] - 1e-4) ** 2 * 1e6)


def _storage(tmp_path: Path) -> str:
    return default_storage_url(tmp_path)


def _configs(study: CellStudy) -> list[tuple]:
    trials = sorted(study.study.get_trials(deepcopy=False), key=lambda t: t.number)
    return [tuple(sorted(t.params.items())) for t in trials]


def _worker(url: str, rounds: int, barrier) -> None:
    """One worker process: in every round all workers ask together, then all tell (worst case)."""
    studies = [CellStudy(url, sampler, "maximize", sampler, "none", seed=0) for sampler in SAMPLERS]
    for _ in range(rounds):
        for study in studies:
            trial, params = study.ask(SPACE)
            barrier.wait(BARRIER_GUARD_S)
            study.tell(trial, objective(params), "complete")


@pytest.mark.parametrize("workers", [2, 4])
def test_parallel_workers_propose_distinct_configurations(workers, tmp_path):
    """One study per sampler, each opened by every worker with the same sampler_seed."""
    url = _storage(tmp_path)
    for sampler in SAMPLERS:  # created once, as the runner does before it starts workers
        CellStudy(url, sampler, "maximize", sampler, "none", seed=0)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_worker, args=(url, TRIALS // workers, barrier)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * workers
    configs = {s: _configs(CellStudy(url, s, "maximize", s, "none", seed=0)) for s in SAMPLERS}
    assert {s: len(c) for s, c in configs.items()} == {s: TRIALS for s in SAMPLERS}
    duplicates = {s: TRIALS - len(set(c)) for s, c in configs.items()}
    assert duplicates == {s: 0 for s in SAMPLERS}


def _search(tmp_path: Path, sampler: str, seed: int, trials: int = 10) -> list[tuple]:
    study = CellStudy(_storage(tmp_path), "cell", "maximize", sampler, "none", seed=seed)
    for _ in range(trials):
        trial, params = study.ask(SPACE)
        study.tell(trial, objective(params), "complete")
    return _configs(study)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_one_worker_replays_the_search_from_its_sampler_seed(sampler, tmp_path):
    first = _search(tmp_path / "a", sampler, seed=7)
    assert _search(tmp_path / "b", sampler, seed=7) == first
    other = _search(tmp_path / "c", sampler, seed=8)
    assert all(a != b for a, b in zip(first, other, strict=True))


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """One real MLflow store and experiment for the module (creating a store takes seconds)."""
    tmp = tmp_path_factory.mktemp("mlflow")
    suite = load_suite(write_suite(tmp / "tiny.yaml"))
    tracker = Tracker(default_tracking_uri(tmp))
    return suite, tracker, tracker.experiment(suite.name, tmp / "artifacts")


@pytest.fixture
def trial_job(mlflow_store, tmp_path):
    """A real cell of the tiny suite, its own MLflow cell run, and the context a worker gets."""
    suite, tracker, exp_id = mlflow_store
    cell = expand(suite)[0]
    cell_run = tracker.start_run(exp_id, cell.describe(), {"ptbench.kind": "cell"})
    ctx = RunContext(
        tracking_uri=tracker.uri,
        storage_url=_storage(tmp_path),
        exp_id=exp_id,
        sampler="tpe",
        pruner="median",
        sampler_seed=0,
        search_seed=0,
        evaluation=(),
        cache_dir=str(tmp_path / "cache"),
        weights_dir=str(tmp_path / "weights"),
    )
    return cell, cell_run, ctx, tracker


def _trial_runs(tracker: Tracker, cell, cell_run: str) -> list[dict]:
    return [
        r
        for r in tracker.runs_records(cell.suite)
        if r.get("tags.ptbench.kind") == "trial" and r.get("tags.mlflow.parentRunId") == cell_run
    ]


def _raise_once(monkeypatch, owner, name: str) -> None:
    """``owner.name`` raises on its first call, then works: a sampler or storage that hiccups once."""
    original, calls = getattr(owner, name), []

    def hiccup(self, *args, **kwargs):
        if not calls:
            calls.append(name)
            raise RuntimeError(f"{name} broke")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, hiccup)


# where asking can raise: in Optuna's study.ask (before_trial), in sampling (suggest), or before
# any trial exists (the storage cannot create one)
FAULTS = [
    (optuna.samplers.RandomSampler, "before_trial"),
    (optuna.samplers.RandomSampler, "sample_independent"),
    (optuna.storages.JournalStorage, "create_new_trial"),
]


@pytest.mark.parametrize(("owner", "name"), FAULTS, ids=[f[1] for f in FAULTS])
def test_a_sampler_raising_at_ask_is_one_failed_trial_and_the_search_goes_on(
    owner, name, monkeypatch, trial_job
):
    cell, cell_run, ctx, tracker = trial_job
    _raise_once(monkeypatch, owner, name)

    res = search_trial(cell, cell_run, ctx)  # returns, never raises: run_suite counts it and goes on

    assert (res.kind, res.state, res.error) == ("trial", "fail", f"RuntimeError: {name} broke")
    study = open_study(ctx, cell)
    (failed,) = study.study.get_trials(deepcopy=False)
    assert failed.number == res.number == 0
    assert failed.state.name == "FAIL" and failed.user_attrs[ERROR] == res.error
    assert study.counts().failed == 1  # counts against the cell's budget
    (run,) = _trial_runs(tracker, cell, cell_run)
    assert run["run_name"] == "trial-000" and run["status"] == "FAILED"
    assert run["tags.ptbench.state"] == "failed" and run["tags.ptbench.error"] == res.error
    error_txt = Path(tracker.client.download_artifacts(run["run_id"], "error.txt", str(ctx.cache_dir)))
    assert f"{name} broke" in error_txt.read_text()

    trial, params = study.ask(cell.space)  # the search goes on: the next trial samples normally
    assert set(params) == set(cell.space)
    study.tell(trial, 0.5, "complete")
    c = study.counts()
    assert (c.complete, c.failed, c.running, trial.number) == (1, 1, 0, 1)


def test_an_mlflow_run_that_cannot_open_is_one_failed_trial(trial_job):
    cell, cell_run, ctx, tracker = trial_job
    gone = tracker.experiment("deleted-experiment")
    tracker.client.delete_experiment(gone)  # a real MLflow error: runs cannot start in it

    res = search_trial(cell, cell_run, replace(ctx, exp_id=gone))

    assert res.state == "fail" and "must be in the 'active' state" in res.error
    (failed,) = open_study(ctx, cell).study.get_trials(deepcopy=False)
    assert failed.state.name == "FAIL" and failed.user_attrs[ERROR] == res.error
    assert failed.params  # sampled before the run failed to open: on record with the failure


EPOCHS = 9


def _pruned_search(study: CellStudy, trials: int) -> None:
    """Trials whose validation accuracy climbs to ``objective`` over the epochs, reported each epoch."""
    for _ in range(trials):
        trial, params = study.ask(SPACE)
        report, final = study.reporter(trial, "val_accuracy"), objective(params)
        try:
            for epoch in range(EPOCHS):
                report(epoch, {"val_accuracy": final * (epoch + 1) / EPOCHS})
        except Pruned:
            study.tell(trial, None, "pruned")
        else:
            study.tell(trial, final, "complete")


def test_the_tests_cover_every_sampler_and_pruner_a_suite_may_name():
    fields = Suite.model_fields["search"].annotation.model_fields
    assert set(get_args(fields["sampler"].annotation)) == set(SAMPLERS)
    assert set(get_args(fields["pruner"].annotation)) == set(PRUNERS)


@pytest.mark.parametrize("pruner", PRUNERS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_with_every_pruner(sampler, pruner, tmp_path):
    study = CellStudy(_storage(tmp_path), "cell", "maximize", sampler, pruner, seed=0)
    _pruned_search(study, TRIALS)
    c = study.counts()
    assert (c.complete + c.pruned, c.failed, c.running) == (TRIALS, 0, 0)
    assert c.complete >= 1 and (c.pruned > 0) == (pruner != "none")
    assert len(set(_configs(study))) == TRIALS


def _fail_stale_while_beating(study, live, dead) -> None:
    """Sweep for stale trials while ``live`` beats, until ``dead`` is failed: the live trial must
    still run, and the dead one wait to be retried."""
    guard = time.monotonic() + 120  # turns a hang into a failure; no correct run comes near it
    with study.beating(live):
        while study.is_running(dead):
            assert time.monotonic() < guard, f"trial {dead.number} was never failed"
            study.fail_stale()
            time.sleep(0.2)
        assert study.is_running(live)
    c = study.counts()
    assert (c.running, c.waiting, c.failed) == (1, 1, 0)


def test_only_a_trial_whose_worker_stopped_beating_is_failed_and_retried(tmp_path):
    """Leases (issue #13): a live trial — maybe another driver's — is never failed on sight; one
    whose beats stopped is failed after the grace period and enqueued again with its params, and
    its worker, should it wake up, sees it was declared dead (its result must not land)."""
    from ptbench.search import LeaseConfig

    leases = LeaseConfig(interval=1, grace=3)
    study = CellStudy(default_storage_url(tmp_path), "lease", "maximize", "random", "none", 0, leases)
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    live, _ = study.ask(space)
    study.bind(live, "live-job")
    dead, _ = study.ask(space)
    study.bind(dead, "dead-job")  # one beat, then nothing: its worker was killed
    assert study.fail_stale() == []  # both within their grace period
    _fail_stale_while_beating(study, live, dead)  # the dead one is retried, not counted
    retry, _ = study.ask(space)
    assert retry.params == dead.params


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_tied_trials_resolve_to_the_earliest_on_every_storage(storage, tmp_path):
    """A cell's final runs re-run its best trial and its record names it: with tied validation
    scores (common on small sets) both must name the same trial, whatever the storage's order."""
    url = default_storage_url(tmp_path) if storage == "journal" else f"sqlite:///{tmp_path}/optuna.db"
    for direction, values in (("maximize", [0.5, 0.7, 0.7, 0.7, 0.2]), ("minimize", [0.5, 0.1, 0.9, 0.1])):
        cs = CellStudy(url, f"ties-{direction}", direction, "random", "none", seed=0)
        dist = optuna.distributions.FloatDistribution(0.0, 1.0)
        for i, v in enumerate(values):
            trial = optuna.trial.create_trial(value=v, params={"lr": i / 10}, distributions={"lr": dist})
            cs.study.add_trial(trial)
        assert cs.best()[:2] == (1, {"lr": 0.1})


def test_two_drivers_claiming_one_seed_at_the_same_moment_run_it_once(tmp_path):
    """The second driver claims the seed at the worst moment: right after the first driver's
    claim got its number. Exactly one of the two may run it (when a claim was asked first and
    labelled after, the second saw no seed on the first, and both ran)."""
    from ptbench.search.claims import FinalClaims

    first = FinalClaims(default_storage_url(tmp_path), "cell")
    second = FinalClaims(default_storage_url(tmp_path), "cell")  # another driver's connection
    storage, rival = first.study._storage, []
    create = storage.create_new_trial

    def then_the_rival_claims(*args, **kwargs):
        trial_id = create(*args, **kwargs)
        if not rival:  # once: the rival's own claim goes straight through
            rival.append(None)
            rival[0] = second.claim(0, "job-b", source=3)
        return trial_id

    storage.create_new_trial = then_the_rival_claims
    mine = first.claim(0, "job-a", source=3)
    assert (mine is None) != (rival[0] is None)  # one holds the seed, the other stands down


def test_final_claims_name_their_trial_and_older_claims_count_for_none(tmp_path):
    """A claim re-runs one search trial: a better trial found later is claimed afresh. A claim
    from before claims named their trial holds its seed while running, and is done for none."""
    from ptbench.search.claims import SEED, FinalClaims

    claims = FinalClaims(default_storage_url(tmp_path), "cell")
    assert claims.claim(0, "job-a", source=3) is not None
    assert claims.claim(0, "job-b", source=3) is None  # the seed's run for trial 3 is taken
    held = claims.claim(1, "job-c", source=3)
    claims.done(held, 0.9)
    assert claims.seeds(3)[:2] == ({1}, {0})
    assert claims.seeds(5)[:2] == (set(), set())  # a new best: nothing of it is done or running
    assert claims.claim(1, "job-d", source=5) is not None

    old = claims.study.ask()  # an older claim: a seed, no trial
    claims.study._storage.set_trial_system_attr(old._trial_id, SEED, 2)
    assert claims.seeds(5)[1] == {1, 2} and claims.claim(2, "job-e", source=5) is None
    claims.study.tell(old.number, 0.5)
    assert 2 not in claims.seeds(5)[0]  # done, but for no trial: MLflow's tag says which
    assert claims.claim(2, "job-f", source=5) is not None


def test_a_configuration_that_kills_its_worker_three_times_is_one_failed_trial_in_every_process(tmp_path):
    """The driver counted the last failure as a retry of itself (the journal's own trial object
    got it appended to its retry_history), so it saw 0 finished where a worker saw 1 and kept
    queuing trial jobs for a cell whose budget was spent: the suite never ended."""
    import subprocess
    import sys

    url = default_storage_url(tmp_path)
    study = CellStudy(url, "oom", "maximize", "random", "none", 0)
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    params = []
    for i in range(3):
        trial, p = study.ask(space)
        study.bind(trial, f"job-{i}")
        assert study.fail_job(f"job-{i}") == [trial.number]  # its worker died
        params.append(p)
    assert params[0] == params[1] == params[2]  # retried with the same configuration
    c = study.counts()
    assert (c.failed, c.waiting, c.finished) == (1, 0, 1)  # no fourth try
    code = (
        "from ptbench.search import CellStudy\n"
        f"c = CellStudy({url!r}, 'oom', 'maximize', 'random', 'none', 0).counts()\n"
        "print(c.failed, c.waiting)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "0"]


def test_on_a_database_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed(tmp_path):
    """Optuna's RDB storage never finds a trial stale that has no heartbeat row: a worker killed
    between asking its trial and binding it left the trial RUNNING for ever, and the cell's
    search never ended, on this run and on every resume."""
    from ptbench.search import LeaseConfig

    leases = LeaseConfig(interval=1, grace=2)
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = CellStudy(url, "rdb", "maximize", "random", "none", 0, leases)
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    orphan, _ = study.ask(space)  # its worker died here: never bound, never beaten
    live, _ = study.ask(space)
    study.bind(live, "live-job")
    _fail_stale_while_beating(study, live, orphan)  # retried, not counted


def test_on_a_database_a_retry_whose_worker_died_before_binding_it_is_failed_too(tmp_path):
    """Optuna's retry callback copied every system attr onto the retry: the dead job's id and the
    first-beat mark, so a retry whose own worker died between asking and binding it was taken
    as beaten (Optuna never fails a trial without a heartbeat row) and stayed RUNNING for ever."""
    from ptbench.search import LeaseConfig

    leases = LeaseConfig(interval=1, grace=2)
    study = CellStudy(f"sqlite:///{tmp_path}/optuna.db", "rdb", "maximize", "random", "none", 0, leases)
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    first, params = study.ask(space)
    study.bind(first, "job-a")
    assert study.fail_job("job-a") == [first.number]  # its worker died: failed and retried
    retry, again = study.ask(space)  # a second worker takes the retry and dies before binding it
    assert again == params
    assert study.counts().running_jobs == {""}  # bound to no job: not the dead job-a's
    live, _ = study.ask(space)
    study.bind(live, "live-job")
    _fail_stale_while_beating(study, live, retry)  # failed once its grace is over, retried again
    (third,) = study.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert third.system_attrs["retry_history"] == [first.number, retry.number]


def test_a_storage_server_that_accepts_and_never_answers_is_a_one_line_error(tmp_path):
    """The Optuna engine had no connect timeout: a database port that accepts the connection
    and never answers (a firewall, a stopped VM) held ``ptbench run`` for ever."""
    import socket
    import threading

    from conftest import ptbench

    pytest.importorskip("psycopg")  # the PostgreSQL driver, a test dependency
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list = []  # accepted, never answered
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)], daemon=True).start()
    url = f"postgresql://bench:pw@127.0.0.1:{server.getsockname()[1]}/optuna"
    suite = write_suite(tmp_path / "tiny.yaml")
    try:  # the timeout only turns a hang into a failure: the error comes after the 10 s connect timeout
        out = ptbench(
            "run", str(suite), "--storage", url, "--project-dir", str(tmp_path), cwd=tmp_path, timeout=300
        )
    finally:
        server.close()
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "storage.url 'postgresql://bench:***@127.0.0.1" in out.stderr and "timeout" in out.stderr
