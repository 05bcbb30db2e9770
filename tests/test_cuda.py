"""The CUDA paths: training in bf16 autocast and channels-last, final runs with robustness
evaluation, one GPU per worker. Skipped where no GPU is (CI); run on a GPU machine with
``pytest tests/test_cuda.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptbench.tasks import TASKS
from ptbench.tasks.base import build_task
from ptbench.trial import TrialConfig, load_task, run_trial

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DIGITS = {
    "name": "digits",
    "params": {"train_size": 600, "val_size": 200, "test_size": 300, "shifted_size": 200},
}
LITE = {"name": "efficientnet_lite0", "weights": "none", "params": {"input_size": 64}}
ROBUST = {
    "corruptions": ["gaussian_noise"],
    "severities": [1, 5],
    "size": 100,
    "eps": [2 / 255],
    "pgd_steps": 3,
    "adversarial_size": 50,
}
EVALUATE = ("test", "shifted", "corruptions", "adversarial")


@pytest.fixture(scope="module", autouse=True)
def tones():
    """An audio task of pure tones (three pitches) for the audio backbones: no speech
    synthesiser or audio decoder is needed on a GPU machine."""
    if "cuda_tones" in TASKS:
        return

    @TASKS.register("cuda_tones", modality="audio", classes=3, source="synthetic", sizes="300", params={})
    def cuda_tones(params):
        g = np.random.default_rng(0)
        t = np.arange(16000) / 16000
        y = np.repeat(np.arange(3), 100)
        x = np.stack([0.3 * np.sin(2 * np.pi * (220 * 2 ** (c / 2)) * t) for c in y])
        x = (x + 0.05 * g.standard_normal(x.shape)).astype(np.float32)
        return build_task("cuda_tones", "audio", ["a", "b", "c"], x, y, params)


def _finite(metrics: dict) -> None:
    bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
    assert not bad, bad


@pytest.mark.parametrize(
    "backbone, strategy, regs, params",
    [
        (LITE, "linear_probe", [], {}),
        (LITE, "full_finetune", [{"name": "cutmix"}], {"cutmix_alpha": 0.5}),
        (
            {"name": "vit_tiny", "weights": "none", "params": {"input_size": 32}},
            "lora",
            [{"name": "mixup"}],
            {"mixup_alpha": 0.4},
        ),
    ],
)
def test_image_final_runs_on_cuda_with_robustness(backbone, strategy, regs, params, tmp_path):
    out = run_trial(
        TrialConfig(
            backbone,
            DIGITS,
            {"name": strategy},
            regs,
            {"epochs": 5, "batch_size": 64, "lr": 3e-3, **params},
            device="cuda",
            evaluate=EVALUATE,
            robustness=ROBUST,
            cache_dir=str(tmp_path),
        )
    )
    m = out.metrics
    _finite(m)
    scores = [k for k in m if k.startswith(("corr_", "adv_")) and k.endswith("_accuracy")]
    assert {"corr_mean_accuracy", "shifted_mnist_subset_accuracy"} <= set(m)
    assert any(k.startswith("adv_pgd_") for k in scores)
    for key in [*scores, "test_accuracy", "shifted_mnist_subset_accuracy"]:
        assert 0.0 <= m[key] <= 1.0, key
    losses = [h["train_loss"] for h in out.history]
    assert losses[-1] < losses[0]  # it trains on the GPU (random init: accuracy comes slowly)
    if strategy == "linear_probe":
        assert m["test_accuracy"] > 0.15  # ten classes, 300 test digits: chance is 0.10 ± 0.02
    assert m["peak_mem_mb"] > 1.0  # CUDA's own peak, not the process's RSS


def test_probe_final_run_on_cuda_with_every_feature_from_the_disk_cache(tmp_path):
    """A worker that finds all features on disk never runs the frozen backbone to extract; it
    must still be on the GPU for the robustness evaluation, which runs it on raw inputs."""
    from ptbench import trial
    from ptbench.train.features import FeatureCache

    cfg = TrialConfig(
        LITE,
        DIGITS,
        {"name": "linear_probe"},
        [],
        {"epochs": 2, "batch_size": 64, "lr": 3e-3},
        device="cuda",
        evaluate=EVALUATE,
        robustness=ROBUST,
        cache_dir=str(tmp_path),
    )
    FeatureCache._memory.clear()  # as in a fresh worker process: nothing in memory
    trial._frozen_backbone.cache_clear()
    first = run_trial(cfg)  # extracts and writes every split's features to disk
    FeatureCache._memory.clear()  # a second fresh worker
    trial._frozen_backbone.cache_clear()
    again = run_trial(cfg)
    assert again.info["feature_cache_misses"] == 0 and again.info["feature_cache_hits"] >= 4
    _finite(again.metrics)
    assert again.metrics["corr_mean_accuracy"] == pytest.approx(first.metrics["corr_mean_accuracy"], abs=0.05)


def test_audio_and_text_final_runs_on_cuda(tmp_path):
    audio = run_trial(
        TrialConfig(
            {"name": "wavenet", "weights": "none"},
            {"name": "cuda_tones", "params": {"val_size": 60, "test_size": 60}},
            {"name": "full_finetune"},
            [{"name": "mixup"}],
            {"epochs": 8, "batch_size": 30, "lr": 3e-3, "mixup_alpha": 0.2},
            device="cuda",
            evaluate=("test", "corruptions", "adversarial"),
            robustness=ROBUST,
        )
    )
    _finite(audio.metrics)
    assert audio.metrics["test_accuracy"] > 0.5  # three pitches, 60 test clips: chance 0.33
    rows = [("good", "a fine moving film"), ("bad", "a dull tired film")] * 60
    csv = tmp_path / "reviews.csv"
    csv.write_text("label,text\n" + "".join(f"{y},{t} {i}\n" for i, (y, t) in enumerate(rows)))
    text = run_trial(
        TrialConfig(
            {"name": "elmo_bilstm", "weights": "none", "params": {"max_len": 16, "buckets": 512}},
            {"name": "text_file", "params": {"path": str(csv), "val_size": 20, "test_size": 40}},
            {"name": "full_finetune"},
            [],
            {"epochs": 8, "batch_size": 16, "lr": 3e-3},
            device="cuda",
            evaluate=("test", "corruptions"),
            robustness=ROBUST | {"corruptions": "all", "severities": [1]},
        )
    )
    _finite(text.metrics)
    assert text.metrics["test_accuracy"] > 0.8  # the two classes share no word but "a", "film"


def test_fit_on_cuda_runs_bf16_autocast_channels_last():
    from ptbench.backbones.build import build_backbone
    from ptbench.strategies.base import Classifier, make_head
    from ptbench.train.recipe import Recipe
    from ptbench.train.trainer import fit

    data = load_task(DIGITS)
    bb = build_backbone(LITE)
    model = Classifier(bb, make_head(bb, 10, 0.0))
    seen: dict = {}

    def hook(module, inputs, output):
        seen.update(
            dtype=output.dtype,
            device=output.device.type,
            channels_last=inputs[0].is_contiguous(memory_format=torch.channels_last),
        )

    bb.net.register_forward_hook(hook)
    res = fit(
        model,
        [{"params": list(model.parameters())}],
        data.train,
        data.val,
        Recipe(epochs=1, batch_size=64),
        num_classes=10,
        transform=bb.preprocess,
        device="cuda",
    )
    assert seen == {"dtype": torch.bfloat16, "device": "cuda", "channels_last": True}
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in model.parameters())
    conv = [p for p in bb.parameters() if p.ndim == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    assert math.isfinite(res.history[-1]["train_loss"])


def _where(device: str, threads: int) -> tuple[str, int]:
    """A job: told its device by the executor, it reports that and the device torch is set to."""
    return device, torch.cuda.current_device()


def test_every_worker_pins_a_gpu():
    from ptbench.executors.local import LocalExecutor, resolve_devices

    n = torch.cuda.device_count()
    devices = resolve_devices("auto", 2)
    assert devices == [f"cuda:{i % n}" for i in range(2)]
    ex = LocalExecutor(2, devices)
    try:
        got = [f.result(timeout=300) for f in [ex.submit(_where) for _ in range(4)]]
    finally:
        ex.shutdown()
    assert {d for d, _ in got} <= set(devices)
    assert all(d == f"cuda:{i}" for d, i in got)  # each worker's current device is its own


def test_a_jobs_peak_gpu_memory_leaves_out_what_the_worker_held_before_it():
    """Frozen backbones a worker caches for later jobs stay allocated: counted, a job's peak
    depended on which jobs the worker ran before it."""
    from ptbench.train.memory import JobMemory

    held = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")  # 256 MiB, held throughout
    m = JobMemory("cuda")
    job = torch.empty(16 * 2**20, dtype=torch.uint8, device="cuda")  # the job's own 16 MiB
    peak = m.peak_mb()
    del job, held
    assert 15 <= peak < 64


def test_an_lstm_backbone_is_attacked_on_cuda():
    """cuDNN computes an RNN's backward only in training mode, and an attack differentiates the
    input through the model in eval mode: Resemblyzer's adversarial evaluation raised on GPUs."""
    out = run_trial(
        TrialConfig(
            {"name": "resemblyzer", "weights": "none"},
            {"name": "cuda_tones", "params": {"val_size": 60, "test_size": 60}},
            {"name": "full_finetune"},
            [],
            {"epochs": 2, "batch_size": 30, "lr": 3e-3},
            device="cuda",
            evaluate=("test", "adversarial"),
            robustness=ROBUST,
        )
    )
    _finite(out.metrics)
    assert any(k.startswith("adv_") for k in out.metrics)
