"""The suite's ``execution`` section, checked before anything starts: a device name torch cannot
read failed every trial ("Invalid device string"), and an empty list crashed the run (a modulo by
zero).

Whether a CUDA device is on *this* machine is the run's check (``executors.check_devices``):
a suite is often validated where it will not run.
"""

from __future__ import annotations

from ptbench.schema import Execution


def execution_problems(execution: Execution) -> list[str]:
    """One line per problem of the suite file's ``execution``, naming its field."""
    problems: list[str] = []
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
