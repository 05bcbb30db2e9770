"""The suite's ``execution`` section, checked before anything starts: a device name torch cannot
read failed every trial ("Invalid device string"), an empty list crashed the run (a modulo by
zero), and a Ray address under the local or inline executor was silently ignored.

Whether a CUDA device is on *this* machine is the run's check (``executors.check_devices``):
a suite is often validated where it will not run.
"""

from __future__ import annotations

from ptbench.errors import PtbenchError
from ptbench.schema import Execution


def execution_problems(execution: Execution) -> list[str]:
    """One line per problem of the suite file's ``execution``, naming its field."""
    problems = []
    if execution.address and execution.executor != "ray":
        problems.append(
            f"execution.address: only executor ray reads an address, and execution.executor is "
            f"{execution.executor} (set executor: ray, or remove the address)"
        )
    if not isinstance(execution.devices, list):
        return problems
    if not execution.devices:
        return [*problems, "execution.devices: an empty list names no device (use auto, cpu or [cuda:0, …])"]
    import torch  # only here: `ptbench --help` imports no torch

    for i, name in enumerate(execution.devices):
        try:
            torch.device(name)
        except (RuntimeError, ValueError):
            problems.append(
                f"execution.devices[{i}]: '{name}' is not a device torch knows (cpu, cuda, cuda:N, mps, …)"
            )
    return problems


def with_overrides(execution: Execution, executor: str | None, address: str | None) -> Execution:
    """The suite's ``execution`` with ``--executor``/``--address``. An ``--address`` the
    executor would not read is refused, naming where each came from; a suite's own Ray address
    gives way to ``--executor local|inline`` (running a Ray suite here once needs no edit)."""
    where = "--executor" if executor else "execution.executor"
    if executor not in (None, "ray") and not address:
        return execution.model_copy(update={"executor": executor, "address": None})
    executor = executor or execution.executor
    if executor != "ray" and (address or execution.address):
        named = f"--address {address}" if address else f"execution.address {execution.address}"
        raise PtbenchError(
            f"{named} with {where} {executor}: only executor ray reads an address "
            "(use --executor ray, or drop the address)"
        )
    update = {k: v for k, v in (("executor", executor), ("address", address)) if v}
    return execution.model_copy(update=update)
