"""Where trials run: local worker processes, one device each (the only executor today).

Jobs take their device and thread budget as arguments and read nothing of the executor, so
another executor would need only ``submit(fn, *args)`` and ``shutdown``; none other exists yet."""

from ptbench.executors.local import LocalExecutor, resolve_devices

__all__ = ["LocalExecutor", "resolve_devices"]
