"""Real services for the scale-out tests, started by the tests on loopback and stopped after:
a PostgreSQL server from the machine's own binaries, an MLflow tracking server backed by it,
and a Ray cluster of a head and a second worker node (issue #13). No mocks of either."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ptbench.lifetime import stop_group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, hang_guard_s: float = 300) -> None:
    """Wait for the state (the port answers); ``hang_guard_s`` only turns a hang into a failure."""
    guard = time.monotonic() + hang_guard_s
    while True:
        with socket.socket() as s, contextlib.suppress(OSError):
            s.connect(("127.0.0.1", port))
            return
        assert proc is None or proc.poll() is None, (
            f"the server exited ({proc.returncode}) before port {port}"
        )
        assert time.monotonic() < guard, f"nothing on port {port} after {hang_guard_s:.0f} s"
        time.sleep(0.2)


def _as_postgres(*cmd: str) -> subprocess.CompletedProcess:
    """``initdb`` refuses to run as root: as root, PostgreSQL's commands run as ``postgres``."""
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*as_pg, *cmd], check=True, capture_output=True, text=True)


def _pg_start(data: Path, port: int) -> None:
    opts = f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1 -c max_connections=100"
    _as_postgres("pg_ctl", "-D", str(data), "-o", opts, "-l", str(data.parent / "log"), "-w", "start")


def _pg_stop(data: Path) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        _as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on a random loopback port, in a folder the ``postgres`` user owns
    when run as root; yields its URL (no database part)."""
    base = Path(tempfile.mkdtemp(prefix="ptbench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    port, data = free_port(), base / "data"
    _as_postgres("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    _pg_start(data, port)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        _pg_stop(data)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def postgres_down(server: str) -> Iterator[None]:
    """The server of ``postgres_server`` stopped at once, as a crash or a lost host would; started
    again, on the same port and data, on leaving."""
    import psycopg

    with psycopg.connect(f"{server}/postgres") as conn:
        data = Path(conn.execute("SHOW data_directory").fetchone()[0])
    _pg_stop(data)
    try:
        yield
    finally:
        _pg_start(data, int(server.rsplit(":", 1)[1]))


def create_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


@contextlib.contextmanager
def mlflow_server(backend: str, artifacts: Path) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend]
    cmd += ["--default-artifact-root", str(artifacts), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)


@contextlib.contextmanager
def ray_cluster(env: dict[str, str]) -> Iterator[str]:
    """A head node and a second worker node on this machine (1 CPU each); yields the address."""
    port = free_port()
    ray = [str(Path(sys.executable).with_name("ray"))]
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--object-store-memory", str(100 << 20)]
    # loopback only, so no token: a ~/.ray/auth_token left by an earlier local Ray instance would
    # otherwise switch the head to token auth and lock the second node out
    env = {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    try:
        subprocess.run(
            [*ray, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common],
            check=True,
            capture_output=True,
            env=env,
        )
        address = f"127.0.0.1:{port}"
        subprocess.run(
            [*ray, "start", "--address", address, *common], check=True, capture_output=True, env=env
        )
        yield address
    finally:
        subprocess.run([*ray, "stop", "--force"], capture_output=True, env=env)
