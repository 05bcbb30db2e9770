"""Spoken digits synthesised offline: espeak-ng voices for train/val/test, flite for the shift.

The clips are generated once (Debian's espeak-ng and flite), resampled to 16 kHz, cut or padded
to one second and cached as one .npz under ``$PTBENCH_DATA_DIR`` (default ~/.cache/ptbench).
A model trained on espeak voices meets a different synthesiser in the shifted set.
"""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ptbench import optional
from ptbench.errors import PtbenchError
from ptbench.files import atomic_path
from ptbench.params import Param
from ptbench.tasks import TASKS
from ptbench.tasks.base import RATE, SHIFTED_SIZE, SPLIT_PARAMS, TaskData, build_task, data_dir, plan_splits

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan"]
VARIANTS = ["", "+f1", "+f3", "+m3", "+m7", "+klatt", "+croak", "+whisper"]
SPEEDS = [140, 190]
FLITE_VOICES = ["kal16", "awb", "rms", "slt"]


def _missing() -> str | None:
    if optional.which("espeak-ng") is None:
        return "install the synthesiser with 'apt-get install espeak-ng flite'"
    return None


def fit_clip(wav: np.ndarray, sr: int, n: int = RATE) -> np.ndarray:
    """Mono, resampled to 16 kHz (torchaudio), centred and cropped or zero-padded to n samples."""
    import torch
    import torchaudio.functional as AF

    x = torch.from_numpy(np.asarray(wav, np.float32))
    if x.dim() == 2:
        x = x.mean(1)
    if sr != RATE:
        x = AF.resample(x, sr, RATE)
    x = x[:n].numpy()
    out = np.zeros(n, np.float32)
    start = (n - len(x)) // 2
    out[start : start + len(x)] = x
    return out


def read_clip(path: Path, n: int = RATE) -> np.ndarray:
    """An audio file read with soundfile (torchaudio.load needs torchcodec), as ``fit_clip``."""
    import soundfile as sf

    wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return fit_clip(wav, sr, n)


def _synth(cmds: list[tuple[list[str], int]], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    if cache.is_file():
        with np.load(cache) as z:
            return z["x"], z["y"]
    xs, ys = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (cmd, label) in enumerate(cmds):
            wav = Path(tmp) / f"{i}.wav"
            proc = subprocess.run([*cmd, str(wav)], capture_output=True, timeout=30)
            if proc.returncode != 0 or not wav.is_file():
                raise PtbenchError(
                    f"speech synthesis failed: {' '.join(cmd)}: "
                    f"{proc.stderr.decode(errors='replace').strip()[:200]}"
                )
            xs.append(read_clip(wav))
            ys.append(label)
    x, y = np.stack(xs), np.array(ys, np.int64)
    with atomic_path(cache) as tmp:
        np.savez(tmp, x=x, y=y)
    return x, y


def _espeak(accents: list[str], variants: list[str]) -> tuple[np.ndarray, np.ndarray]:
    cmds = [
        (["espeak-ng", "-v", f"{a}{v}", "-s", str(s), WORDS[d], "-w"], d)
        for a, v, s, d in itertools.product(accents, variants, SPEEDS, range(10))
    ]
    key = hashlib.sha256(repr(cmds).encode()).hexdigest()[:12]
    return _synth(cmds, data_dir() / f"spoken_digits-espeak-{key}.npz")


def _flite() -> tuple[np.ndarray, np.ndarray] | None:
    if optional.which("flite") is None:
        return None
    cmds = [
        (["flite", "-voice", v, "--setf", f"duration_stretch={st}", "-t", WORDS[d], "-o"], d)
        for v, st, d in itertools.product(FLITE_VOICES, (0.9, 1.2), range(10))
    ]
    key = hashlib.sha256(repr(cmds).encode()).hexdigest()[:12]
    return _synth(cmds, data_dir() / f"spoken_digits-flite-{key}.npz")


@TASKS.register(
    "spoken_digits",
    modality="audio",
    classes=10,
    available=_missing,
    source="espeak-ng (6 accents × 8 voice variants × 2 speeds); shifted: flite voices",
    sizes="960 clips + 80 flite clips, 1 s at 16 kHz",
    params=SPLIT_PARAMS
    | {
        "shifted_size": SHIFTED_SIZE,
        "accents": Param(list, "espeak-ng accents, e.g. [en-us, en-gb]"),
        "variants": Param(list, "espeak-ng voice variants, e.g. ['', +f3]"),
    },
)
def spoken_digits(params: dict) -> TaskData:
    """Spoken digits zero…nine; shifted domain: a synthesiser never heard in training."""
    missing = _missing()
    if missing:
        raise PtbenchError(f"task 'spoken_digits': {missing}")
    x, y = _espeak(list(params.get("accents", ACCENTS)), list(params.get("variants", VARIANTS)))
    shifted = {}
    fl = _flite()
    if fl is not None:
        shifted["flite"] = fl
    p = {"val_size": 150, "test_size": 200} | params
    return build_task("spoken_digits", "audio", WORDS, x, y, p, shifted, given=_by_utterance(y, p))


def _by_utterance(y: np.ndarray, params: dict) -> dict[str, np.ndarray]:
    """Train/val/test that never split an utterance: each voice says each digit at both
    speeds, and a clip's other-speed twin in train made its test clip nearly a train clip (126
    of 200 test clips had one). The stratified split is drawn over utterances (accent, voice,
    digit), with half of each size (rounded up: an odd size then drops one twin), and each
    takes its clips at every speed along."""
    n = len(SPEEDS)
    clips = np.arange(len(y)).reshape(-1, n, len(WORDS))  # product order: voice, speed, digit
    units = clips.transpose(0, 2, 1).reshape(-1, n)  # one row per utterance: its clips
    sizes = ("train_size", "val_size", "test_size")
    half = {k: -(-int(v) // n) for k, v in params.items() if k in sizes}
    # sizes and the seed only: the training regime (shots, label_fraction, imbalance) is the
    # clip split's to apply, once — applied here too, label_fraction f kept f² of the labels
    split = {k: v for k, v in params.items() if k == "split_seed"} | half
    parts = plan_splits("spoken_digits-utterances", y[units[:, 0]], split, None, (75, 100))
    return {s: np.sort(units[u].ravel()) for s, u in zip(("train", "val", "test"), parts, strict=True)}
