"""The local executor hands each job the device and thread budget of the worker it lands on: a
job never reads an executor's globals, so the same job runs in any executor (issue #11)."""

from __future__ import annotations

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


def test_a_ray_address_where_nothing_answers_is_one_line_before_any_work(tmp_path):
    """ray.init on a dead address retried for minutes (ignoring SIGTERM), and only after the
    suite's pre-training and data checks: now one line at once, before any of that."""
    import socket

    import pytest
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
