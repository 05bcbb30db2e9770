"""``ptbench ui``: the MLflow UI on the suite's store, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import subprocess
import sys


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


def serve(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000) -> int:
    print(f"MLflow UI on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(ui_command(tracking_uri, host, port))
    except KeyboardInterrupt:
        return 0
