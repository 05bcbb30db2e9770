"""A user plugin for tests: a backbone whose loss turns NaN, a backbone that stops at a gate, a
text-modality stub, and a corruption that kills its worker.

Loaded through PTBENCH_PLUGINS, exactly as a user's own registrations would be.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch

from ptbench.backbones import BACKBONES
from ptbench.backbones.images import timm_backbone
from ptbench.evaluate.corruptions import CORRUPTIONS

GATE_ENV = "PTBENCH_TEST_GATE"  # a folder: builds are counted there, and the gate is kept there
GATE_AT_ENV = "PTBENCH_TEST_GATE_AT"  # which build (1 = the first) stops at the gate


class _NaN(torch.nn.Module):
    def forward(self, x):
        return x * float("nan")


@BACKBONES.register("nan_net", modality="image", weights=("none",), params={"input_size": ""})
def nan_net(spec):
    """test_efficientnet whose features are NaN: every trial on it must FAIL, not crash."""
    bb = timm_backbone(spec, "test_efficientnet", default_size=16)
    bb.net = torch.nn.Sequential(bb.net, _NaN())
    return bb


def _count_build(gate: Path) -> int:
    """Number of this build, counted with O_EXCL files so two workers never take the same one."""
    n = 1
    while True:
        try:
            os.close(os.open(gate / f"build-{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return n
        except FileExistsError:
            n += 1


def _wait_at_gate(gate: Path) -> None:
    """Say "reached", then hold this job until the test writes "release" (or kills us)."""
    (gate / "reached.tmp").write_text(str(os.getpid()))
    (gate / "reached.tmp").replace(gate / "reached")  # atomic: the test never reads half a file
    while not (gate / "release").exists():
        time.sleep(0.05)  # a wait for a state (a file), not for a number of seconds


@BACKBONES.register("gated_net", modality="image", weights=("none",), params={"input_size": ""})
def gated_net(spec):
    """test_efficientnet whose N-th build (``$PTBENCH_TEST_GATE_AT``) stops at a gate.

    A job builds its backbone after it has opened its Optuna trial and MLflow run, so a test can
    kill the run at a known point — one trial in flight, the ones before it finished — however
    fast or slow the machine is. Without ``$PTBENCH_TEST_GATE`` it is plain test_efficientnet.
    """
    gate = os.environ.get(GATE_ENV)
    if gate and _count_build(Path(gate)) == int(os.environ.get(GATE_AT_ENV, "1")):
        _wait_at_gate(Path(gate))
    return timm_backbone(spec, "test_efficientnet", default_size=16)


@BACKBONES.register("toy_text_encoder", modality="text", weights=("none",))
def toy_text_encoder(spec):
    """Only its modality matters: pairing it with an image task must be rejected at validate."""
    raise RuntimeError("never built in tests")


@CORRUPTIONS.register("kills_worker", modality="image", levels=[1, 2, 3, 4, 5], meaning="SIGKILL")
def kills_worker(x, s, g):
    """What the out-of-memory killer does to an evaluation too big for its worker, every time;
    only where a test asks for it (``$PTBENCH_TEST_KILLS_WORKER``): elsewhere it changes nothing,
    so "all" skips it and a test process that loaded the plugin is never killed."""
    if os.environ.get("PTBENCH_TEST_KILLS_WORKER"):
        os.kill(os.getpid(), signal.SIGKILL)
    return x.clone()
