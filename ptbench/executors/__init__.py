"""Where jobs run: ``local`` worker processes (one device each), ``ray`` tasks on a cluster, or
``inline`` in the driver's own process.

Both follow ``base.Executor``: ``submit(fn, *args)`` → a future, ``capacity``, ``shutdown``.
Jobs take their device and thread budget as arguments and read nothing of the executor."""

from ptbench.executors.base import Executor
from ptbench.executors.local import LocalExecutor, check_devices, resolve_devices

__all__ = ["Executor", "LocalExecutor", "check_executor", "make_executor", "resolve_devices"]


def check_executor(execution) -> None:
    """What would make the executor fail, found before any pre-training or data check."""
    if isinstance(execution.devices, list):
        check_devices(execution.devices)
    if execution.executor == "ray":
        from ptbench.executors.ray import check_address

        check_address(execution.address)


def make_executor(execution, workers: int) -> Executor:
    """The suite's executor (``execution`` is the suite's section, with command-line overrides)."""
    if execution.executor == "ray":
        from ptbench.executors.ray import RayExecutor

        return RayExecutor(execution.address, workers, execution.gpus_per_trial, execution.cpus_per_trial)
    if execution.executor == "inline":
        from ptbench.executors.inline import InlineExecutor

        return InlineExecutor(resolve_devices(execution.devices, 1)[0])
    return LocalExecutor(workers, resolve_devices(execution.devices, workers))
