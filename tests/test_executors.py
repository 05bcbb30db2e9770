"""The local executor hands each job the device and thread budget of the worker it lands on: a
job never reads an executor's globals, so the same job runs in any executor (issue #11)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from concurrent.futures import wait
from concurrent.futures.process import BrokenProcessPool

import pytest
from conftest import ROOT

from ptbench.executors import LocalExecutor


def _placement(label: str, *, device: str, threads: int) -> tuple[str, str, int]:
    return label, device, threads


def test_a_job_is_handed_its_workers_device_and_thread_budget():
    ex = LocalExecutor(1, ["cpu"])
    try:
        got = ex.submit(_placement, "job").result(timeout=300)
    finally:
        ex.shutdown()
    assert got == ("job", "cpu", ex.threads) and ex.threads >= 1


def test_a_cuda_device_the_machine_lacks_is_a_one_line_error_before_the_run(tmp_path):
    """Every worker pinned to it died as it started, and the driver retried its jobs for ever.
    Said before the suite's pre-training (which may take hours), not after it."""
    import torch
    from conftest import TINY, ptbench, write_suite

    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last, on any machine
    data = copy.deepcopy(TINY)
    recipe = {"objective": "contrastive", "task": "fractals", "steps": 2}
    made = {"name": "test_efficientnet", "weights": "run", "params": {"input_size": 16}, "pretrain": recipe}
    data["axes"] |= {"strategies": ["linear_probe"], "regularizers": ["none"]}
    data["axes"]["backbones"] = [*data["axes"]["backbones"], made]
    data |= {"seeds": [0], "execution": {"workers": 1, "devices": ["cpu", missing]}}
    suite = write_suite(tmp_path / "tiny.yaml", data)
    out = ptbench("run", str(suite), "--project-dir", str(tmp_path / "proj"), cwd=tmp_path)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"execution.devices: '{missing}' is not on this machine" in out.stderr
    assert not (tmp_path / "proj" / "weights").exists()  # nothing pre-trained first


def _dies(*, device: str, threads: int) -> None:
    os._exit(137)  # what the out-of-memory killer leaves of a worker


def test_a_job_submitted_right_after_its_worker_died_runs_on_a_fresh_worker():
    """The run loop wakes on a lost job and submits its retry at once, before the lost future's
    done callbacks ran: the retry went to the broken pool, whose submit raised and stopped the
    driver. Each cycle here does what the run loop does; the race lost in most runs of 8."""
    ex = LocalExecutor(1, ["cpu"])
    try:
        for _ in range(8):
            lost = ex.submit(_dies)
            wait([lost])
            assert isinstance(lost.exception(), BrokenProcessPool)
            retry = ex.submit(_placement, "retry")  # raised BrokenProcessPool
        assert retry.result(timeout=300) == ("retry", "cpu", ex.threads)
        # the race's losing side, made certain: the pool is still the broken one when the retry
        # comes (the state a done callback that has not run yet leaves)
        (slot,) = ex.slots
        slot.pool._broken = "its worker died"  # what ProcessPoolExecutor sets when one does
        assert ex.submit(_placement, "again").result(timeout=300) == ("again", "cpu", ex.threads)
    finally:
        ex.shutdown(cancel=True)


MANY_CORES = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


@pytest.mark.skipif(not MANY_CORES, reason="this process may use one core only")
def test_cpu_workers_split_the_cores_the_process_may_use_not_the_machines():
    """Under taskset, a container's CPU set or a batch scheduler, each worker got a share of the
    whole machine's cores and they oversubscribed the few they had."""
    code = "from ptbench.executors import LocalExecutor; print(LocalExecutor(1, ['cpu']).threads)"
    one_core = {sorted(os.sched_getaffinity(0))[0]}
    out = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=lambda: os.sched_setaffinity(0, one_core),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["1"]


def test_a_ray_address_where_nothing_answers_is_one_line_before_any_work(tmp_path):
    """ray.init on a dead address retried for minutes (ignoring SIGTERM), and only after the
    suite's pre-training and data checks: now one line at once, before any of that."""
    import socket

    from conftest import ptbench, write_suite

    pytest.importorskip("ray", reason="pip install 'ptbench[ray]'")
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    suite = write_suite(tmp_path / "tiny.yaml")
    for address, says in ((f"127.0.0.1:{port}", "nothing answers there"), ("nohost", "expected auto")):
        out = ptbench(
            "run", str(suite), "--executor", "ray", "--address", address, "--project-dir", "p", cwd=tmp_path
        )
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and says in out.stderr, out.stderr
        assert "trial 0" not in out.stdout  # no job started
