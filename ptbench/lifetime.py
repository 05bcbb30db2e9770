"""Processes ptbench starts never outlive it.

``die_with_parent`` runs in a child (a worker, the MLflow server) and asks the Linux kernel for
SIGKILL the moment its parent exits — however it exits, SIGKILL included, where no clean-up
code of the parent's can run. Elsewhere it does nothing; the parent's own clean-up (on SIGINT
and SIGTERM) still stops its children there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def stop_group(proc, grace_s: float = 10.0) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it started:
    SIGTERM to its process group, SIGKILL to what is left after ``grace_s``."""
    import subprocess

    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
            if sig == signal.SIGTERM:  # the leader is gone; its helpers may not be
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            return
