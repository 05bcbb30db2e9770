"""Issue #3: forward+backward throughput of each family's small configuration on the CPU."""

from __future__ import annotations

import time

import pytest
import torch

from ptbench.backbones import BACKBONES
from ptbench.backbones.build import build_backbone

SMALL = {
    "efficientnet_lite0": {"input_size": 64},
    "test_efficientnet": {"input_size": 32},
    "resnet18": {"input_size": 64},
    "vgg11": {"size": "small", "input_size": 64},
    "inception_v3": {"input_size": 75},
    "xception": {"input_size": 71},
    "alexnet": {"input_size": 64},
    "googlenet": {"input_size": 64},
    "minilm_l6": {"max_len": 64},
    "bert": {"max_len": 64},
    "gpt2": {"max_len": 64},
    "elmo_bilstm": {"max_len": 64},
}
BATCH = 32


def _batch(bb):
    if bb.modality == "image":
        raw = torch.randint(0, 256, (BATCH, 1, 28, 28), dtype=torch.uint8)
    elif bb.modality == "text":
        raw = ["a quietly devastating film about the limits of loyalty and love"] * BATCH
    else:
        raw = torch.randn(BATCH, 16000) * 0.1
    x = bb.encode(raw)
    return bb.preprocess(x) if bb.preprocess is not None else x


@pytest.mark.parametrize("name", [e.name for e in BACKBONES])
def test_forward_backward_throughput(benchmark, name):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    bb = build_backbone({"name": name, "weights": "none", "params": SMALL.get(name, {})})  # as trials do
    bb.train()
    x = _batch(bb)

    def step():
        bb.zero_grad(set_to_none=True)
        bb(x).float().pow(2).mean().backward()

    step()  # warm-up
    t = time.perf_counter()
    benchmark.pedantic(step, rounds=3, iterations=1)
    benchmark.extra_info.update(
        {
            "modality": bb.modality,
            "batch": BATCH,
            "examples_per_s": BATCH / benchmark.stats.stats.median,
            "params_m": sum(p.numel() for p in bb.parameters()) / 1e6,
            "wall": time.perf_counter() - t,
        }
    )
