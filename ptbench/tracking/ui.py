"""``ptbench ui``: the MLflow UI on the suite's store, on 127.0.0.1 unless told otherwise; and the
UI's addresses for an experiment or a run, which the leaderboard page links to."""

from __future__ import annotations

import subprocess
import sys

LOCAL_UI = "http://127.0.0.1:5000"  # what `ptbench ui` serves by default


def ui_base(tracking_uri: str) -> str:
    """Where a person opens a store's runs: the tracking server itself when the store is one,
    else the local UI that ``ptbench ui`` starts (a SQLite file has no UI of its own). Without
    the URI's user and password: the links land in pages that are published and logged."""
    uri = str(tracking_uri)
    if not uri.startswith(("http://", "https://")):
        return LOCAL_UI
    scheme, rest = uri.split("://", 1)
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rsplit('@', 1)[-1]}{slash}{path}".rstrip("/")


def is_server(tracking_uri: str) -> bool:
    return str(tracking_uri).startswith(("http://", "https://"))


def experiment_url(base: str, experiment_id: str) -> str:
    """The experiment's runs tab (MLflow 3's route ``/experiments/:experimentId/runs``), where
    suite → cell → trial runs show nested under their parents."""
    return f"{base}/#/experiments/{experiment_id}/runs"


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def ui_command(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
    ]


def start_url(tracking_uri: str, host: str, port: int, suite_name: str | None = None) -> tuple[str, bool]:
    """The page to open first, and whether it is the suite's experiment (runs nested, training
    view); without the suite's experiment, the experiment list."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}"
    if suite_name is None:
        return f"{base}/", False
    from ptbench.tracking.store import Tracker

    exp = Tracker(tracking_uri, create=False).experiment_id(suite_name)
    return (experiment_url(base, exp), True) if exp is not None else (f"{base}/", False)


def _port_free(host: str, port: int) -> None:
    """A port another server holds: one line now, not a URL printed for whatever answers there."""
    import socket

    from ptbench.errors import PtbenchError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # as the server binds: a port left in TIME_WAIT by the last UI is free, a listener is not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            why = err.strerror or err
            raise PtbenchError(f"--port {port} on {host}: {why}; choose another --port") from None


def _server_url(tracking_uri: str, suite_name: str | None) -> int:
    """A tracking server has its own UI: point at it (the suite's experiment where it has one)
    instead of starting a local UI on a remote store."""
    from ptbench.tracking.store import Tracker

    base, exp = ui_base(tracking_uri), None
    if suite_name is not None:
        exp = Tracker.open(tracking_uri, create=False).experiment_id(suite_name)
    url = experiment_url(base, exp) if exp else f"{base}/"
    print(f"the store is a tracking server with its own UI: {url}")
    return 0


def serve(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000, suite_name: str | None = None) -> int:
    if is_server(tracking_uri):
        return _server_url(tracking_uri, suite_name)
    from ptbench.tracking.store import Tracker

    # as leaderboard and history: a store that is not there is one line, not an empty one made
    # (a mistyped --project-dir served "No runs" from a new .ptbench/mlflow.db)
    Tracker.open(tracking_uri, create=False)
    _port_free(host, port)
    url, found = start_url(tracking_uri, host, port, suite_name)
    if suite_name is not None and not found:
        print(f"no runs of suite '{suite_name}' in this store yet: showing every experiment", flush=True)
    print(f"MLflow UI on {url} (Ctrl-C to stop)", flush=True)
    from ptbench.lifetime import die_with_parent, stop_group

    # its own process group, so stopping it reaches the server's helper processes too
    proc = subprocess.Popen(
        ui_command(tracking_uri, host, port), start_new_session=True, preexec_fn=die_with_parent
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (raised as an interrupt by the CLI)
        stop_group(proc)
        return 0
    finally:
        if proc.poll() is None:
            stop_group(proc)
