"""Random-init controls must control something: with ``weights: none`` every registered backbone
gives features that vary with real inputs of its modality, not one vector for every example.

(Resemblyzer's LSTM under PyTorch's default init forgot each clip over its trailing silence and
gave the same embedding for every clip, so its "random init" probe sat at chance.)
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ptbench import optional
from ptbench.backbones import BACKBONES
from ptbench.backbones.build import build_backbone
from ptbench.params import Param

SENTENCES = [
    "The film was a delight from the first scene to the last.",
    "Interest rates rose again this quarter, worrying small lenders.",
    "Add two cups of flour and stir until the batter is smooth.",
    "The striker scored twice before half time.",
    "I would not recommend this hotel to anyone.",
    "Rain is expected across the north on Tuesday.",
    "She plays the cello in a string quartet.",
    "The new phone's battery barely lasts a day.",
]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven"]


def ptbench_backbones() -> list[str]:
    """Every backbone ptbench registers (a test plugin's deliberately broken nets excluded)."""
    return [e.name for e in BACKBONES if e.fn.__module__.startswith("ptbench.")]


def small_params(name: str) -> dict:
    """Small sizes read from the typed params, so a new backbone needs no entry here."""
    declared = BACKBONES.get(name).meta.get("params", {})
    out: dict = {}
    size = declared.get("size")
    if isinstance(size, Param) and size.choices and "small" in size.choices:
        out["size"] = "small"
    if "input_size" in declared:
        low = getattr(declared["input_size"], "low", None) or 0
        out["input_size"] = int(max(32, low))
    if "max_len" in declared:
        out["max_len"] = 16
    if "buckets" in declared:
        out["buckets"] = 512
    return out


def _spoken_words() -> np.ndarray | None:
    """A few real spoken words (espeak-ng, optional), as the spoken_digits task makes its clips."""
    from ptbench.tasks.audio import read_clip

    exe = optional.which("espeak-ng")
    if exe is None:
        return None
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, word in enumerate(WORDS):
            path = Path(tmp) / f"{i}.wav"
            voice = ("en-us", "en-gb", "en-gb-scotland", "en-us+f3")[i % 4]
            subprocess.run([exe, "-v", voice, word, "-w", str(path)], check=True, capture_output=True)
            clips.append(read_clip(path))
    return np.stack(clips)


def _tones() -> np.ndarray:
    """Fallback without espeak-ng: voiced-like harmonic tones at different pitches and lengths,
    centred in 1 s of silence like the task's clips (no real speech ships without it)."""
    from ptbench.tasks.audio import fit_clip

    rng = np.random.default_rng(0)
    clips = []
    for i, f0 in enumerate((110, 150, 200, 260, 330, 420, 520, 640)):
        t = np.arange(int(16000 * (0.35 + 0.05 * i))) / 16000
        wav = sum(np.sin(2 * np.pi * k * f0 * (1 + 0.2 * t) * t) / k for k in range(1, 6))
        wav = wav * np.hanning(len(t)) * 0.3 + 0.003 * rng.standard_normal(len(t))
        clips.append(fit_clip(wav.astype(np.float32), 16000))
    return np.stack(clips)


def audio_clips() -> torch.Tensor:
    """Spoken words where espeak-ng is installed, else the tones: 1 s clips at 16 kHz."""
    words = _spoken_words()
    return torch.from_numpy(words if words is not None else _tones())


@pytest.fixture(scope="module")
def raw_inputs() -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    pick = [int(np.flatnonzero(digits.target == d)[0]) for d in range(10)]
    images = torch.from_numpy((digits.images[pick] * 255 / 16).astype(np.uint8)).unsqueeze(1)
    return {"image": images, "text": SENTENCES, "audio": audio_clips()}


def relative_spread(feats: torch.Tensor) -> float:
    """Mean over dimensions of the std across inputs, relative to the features' mean magnitude."""
    return (feats.std(0).mean() / (feats.abs().mean() + 1e-12)).item()


@pytest.mark.parametrize("name", ptbench_backbones())
def test_random_init_features_depend_on_the_input(name, raw_inputs):
    entry = BACKBONES.get(name)
    torch.manual_seed(0)
    bb = build_backbone({"name": name, "weights": "none", "params": small_params(name)}, None).eval()
    x = bb.encode(raw_inputs[entry.meta["modality"]])
    with torch.no_grad():
        feats = bb(bb.preprocess(x) if bb.preprocess is not None else x).float()
    assert torch.isfinite(feats).all()
    spread = relative_spread(feats)
    assert spread > 1e-3, f"{name}: random-init features barely vary across inputs ({spread:.2g})"
