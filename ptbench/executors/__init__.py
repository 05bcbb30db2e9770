"""Where trials run. Local processes by default; the same job functions run on Ray or Slurm."""

from ptbench.executors.local import LocalExecutor, resolve_devices

__all__ = ["LocalExecutor", "resolve_devices"]
