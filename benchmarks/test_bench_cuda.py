"""The same targets on a CUDA GPU (skipped without one): a whole linear-probe search against one
forward pass, trial time per strategy, and fine-tune throughput of ptbench's trainer (bf16
autocast, channels-last) against a plain fp32 PyTorch loop.

Runs on the job body (``run_trial``) rather than through ``ptbench run``, so that it needs
nothing beyond torch and the model libraries on the GPU machine."""

from __future__ import annotations

import time

import pytest
import torch
from conftest import interleaved, trainer_throughput

from ptbench.backbones.build import build_backbone
from ptbench.train.features import FeatureCache, extract
from ptbench.trial import TrialConfig, load_task, run_trial

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DIGITS = {"name": "digits", "params": {"train_size": 1000, "val_size": 300, "test_size": 300}}


def _lite(size: int) -> dict:
    return {"name": "efficientnet_lite0", "weights": "none", "params": {"input_size": size}}


def _sync_time(fn) -> float:
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def test_cuda_linear_probe_search_against_the_forward_pass_floor(benchmark, tmp_path):
    """8 trials × 20 epochs of a linear probe on one extraction, against one warm forward pass
    over train + val; Lite0 at its native 224 px."""
    data = load_task(DIGITS)
    bb = build_backbone(_lite(224))
    seen = torch.cat([data.train.x, data.val.x])
    extract(bb, seen[:256], "cuda")  # warm-up: cuDNN picks its kernels
    floor = _sync_time(lambda: extract(bb, seen, "cuda"))
    FeatureCache._memory.clear()
    times: list[float] = []

    def search():
        for i in range(8):
            cfg = TrialConfig(
                _lite(224),
                DIGITS,
                {"name": "linear_probe"},
                [],
                {"lr": 10 ** (-3 + i / 4), "epochs": 20, "batch_size": 256},
                device="cuda",
                cache_dir=str(tmp_path),
            )
            times.append(_sync_time(lambda cfg=cfg: run_trial(cfg)))

    benchmark.pedantic(search, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {
            "floor_s": floor,
            "search_s": sum(times),
            "ratio": sum(times) / floor,
            "first_trial_s": times[0],
            "cached_trial_s_median": sorted(times[1:])[3],
        }
    )


@pytest.mark.parametrize(
    "strategy", ["linear_probe", "full_finetune", "partial_finetune", "gradual_unfreeze", "llrd", "bitfit"]
)
def test_cuda_trial_time_per_strategy(benchmark, strategy, tmp_path):
    task = {"name": "digits", "params": {"train_size": 500, "val_size": 200, "test_size": 200}}
    cfg = TrialConfig(
        _lite(64),
        task,
        {"name": strategy},
        [],
        {"lr": 3e-3, "epochs": 3, "batch_size": 50},
        device="cuda",
        cache_dir=str(tmp_path),
    )
    run_trial(cfg)  # warm: CUDA context, cuDNN kernels, features cached for the probe
    out = benchmark.pedantic(lambda: run_trial(cfg), rounds=3, iterations=1)
    benchmark.extra_info.update({"trainable_params": out.info["trainable_params"]})


def test_cuda_finetune_throughput_against_plain_fp32(benchmark):
    """Examples/s of a full fine-tune (Lite0, 224 px, batch 64): ptbench's trainer against a
    plain fp32, channels-first loop over the same model and data."""
    from ptbench.strategies.base import Classifier, make_head

    data = load_task(DIGITS)
    x, y = data.train.x, data.train.y
    bs, epochs = 64, 2

    def model(channels_last: bool):
        torch.manual_seed(0)
        bb = build_backbone(_lite(224))
        if not channels_last:
            bb.to(memory_format=torch.contiguous_format)
        return Classifier(bb, make_head(bb, 10, 0.0)).cuda(), bb.preprocess

    def plain() -> float:
        m, pre = model(channels_last=False)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        m.train()

        def run():
            for _ in range(epochs):
                perm = torch.randperm(len(x))
                for i in range(0, len(x), bs):
                    idx = perm[i : i + bs]
                    xb = pre(x[idx].cuda()).contiguous()  # channels-first, fp32
                    loss = torch.nn.functional.cross_entropy(m(xb), y[idx].cuda())
                    opt.zero_grad()
                    loss.backward()
                    opt.step()

        return epochs * len(x) / _sync_time(run)

    def ours() -> float:
        return trainer_throughput(*model(channels_last=True), x, y, bs, epochs, device="cuda")

    base, mine = interleaved(plain, ours)
    benchmark.pedantic(ours, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {"plain_fp32_examples_per_s": base, "ptbench_examples_per_s": mine, "ratio": mine / base}
    )
