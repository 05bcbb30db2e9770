"""Ray executor: the same jobs as Ray Core tasks, on a local Ray instance or a cluster.

Ray places each job (``cpus_per_trial``, ``gpus_per_trial`` — a fraction lets several small
trials share one large GPU) and ptbench stays the only search and the only trial record: Ray's
own task retries are off (``max_retries=0``), so a job lost with its node comes back to the run
loop as a raised future and is retried there (at most twice) with the same parameters.

Without an address a local Ray instance is started for this run and stopped after it;
``auto`` joins the cluster this machine belongs to (``ray start``); ``ray://host:10001``
connects through Ray Client. Workers must have ptbench installed (same version as the driver);
``PTBENCH_*`` and ``MLFLOW_*`` variables and ``PYTHONPATH`` are forwarded to them, in Ray's
runtime environment (credentials included: the README says who can see them).
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future
from typing import Any

from ptbench.errors import PtbenchError

INSTALL = 'executor "ray" needs Ray: pip install "ptbench[ray]"'


def _ray():
    try:
        import ray
    except ImportError:
        raise PtbenchError(INSTALL) from None
    return ray


def _run_placed(fn, args: tuple, threads: int) -> Any:
    """Inside a Ray worker: the GPU Ray assigned (CUDA_VISIBLE_DEVICES is set), else the CPU."""
    import ray
    import torch

    device = "cuda:0" if ray.get_gpu_ids() else "cpu"
    torch.set_num_threads(threads)
    return fn(*args, device=device, threads=threads)


def _forwarded_env() -> dict[str, str]:
    keep = ("PTBENCH_", "PYTHONPATH", "MLFLOW_")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def check_address(address: str | None, timeout_s: float = 5.0) -> None:
    """Ray importable, and a ``host:port`` or ``ray://host:port`` address answering, checked
    before a run's pre-training or data checks: ``ray.init`` on a dead address retried for
    minutes and ignored SIGTERM. ``auto`` and a local instance are Ray's own to find."""
    import socket

    _ray()
    if address in (None, "", "local", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not host or not port.isdigit():
        raise PtbenchError(f"execution.address '{address}': expected auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise PtbenchError(
            f"execution.address '{address}': nothing answers there ({err.strerror or err}); "
            "is the cluster up (ray start --head)?"
        ) from None


class RayExecutor:
    def __init__(self, address: str | None, workers: int, gpus_per_trial: float, cpus_per_trial: float):
        ray = _ray()
        self.started_here = not ray.is_initialized() and address in (None, "", "local")
        self.initialized_here = not ray.is_initialized()  # shutdown leaves a caller's session alone
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": _forwarded_env()}, "log_to_driver": False}
            if self.started_here:
                kwargs |= {"include_dashboard": False, "num_cpus": max(int(workers * cpus_per_trial), 1)}
            else:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except Exception as err:  # no cluster at that address, version mismatch …
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise PtbenchError(f"execution.address '{address}': cannot join Ray: {first}") from None
        self.capacity = workers
        self.threads = max(1, int(cpus_per_trial))
        self._task = ray.remote(_run_placed).options(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0, retry_exceptions=False
        )
        self._refs: dict[Future, Any] = {}

    def submit(self, fn, *args) -> Future:
        ref = self._task.remote(fn, args, self.threads)
        fut = ref.future()
        self._refs[fut] = ref
        fut.add_done_callback(lambda f: self._refs.pop(f, None))
        return fut

    def shutdown(self, cancel: bool = False) -> None:
        ray = _ray()
        if cancel:
            for ref in list(self._refs.values()):
                with contextlib.suppress(Exception):  # already finished or its worker is gone
                    ray.cancel(ref, force=True)
        if self.initialized_here and ray.is_initialized():
            ray.shutdown()  # a local instance stops with it; a cluster keeps running
