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
from ptbench.tasks.base import RATE, SHIFTED_SIZE, SPLIT_PARAMS, TaskData, build_task, data_dir
from ptbench.tasks.sampling import apportion

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
    sizes="960 clips (804 distinct: espeak-ng 1.51 voices some alike) + 80 flite clips, 1 s at 16 kHz",
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
    return build_task("spoken_digits", "audio", WORDS, x, y, p, shifted, given=_by_utterance(x, y, p))


def _by_utterance(x: np.ndarray, y: np.ndarray, params: dict) -> dict[str, np.ndarray]:
    """Train/val/test that never share a waveform. Each voice says each digit at both speeds
    (126 of 200 test clips had their other-speed twin in train), and espeak-ng 1.51 ignores the
    variant of some accents (en-gb+f1 is en-gb) and voices some accents alike: 34 of 200 test
    clips were byte copies of train clips. So an utterance's clips travel together with every
    utterance that shares a waveform with them, each waveform is kept once, and per digit the
    units are drawn in an order fixed by sha256(seed, waveform) until the stratified quota of
    test, then val, is met (a unit's clips beyond it are dropped, never moved to train)."""
    units = _units(x)
    n_val, n_test = int(params.get("val_size", 150)), int(params.get("test_size", 200))
    if min(n_val, n_test) < len(WORDS):
        raise PtbenchError(
            f"task 'spoken_digits': val_size={n_val} and test_size={n_test} must each be at least "
            f"the {len(WORDS)} classes"
        )
    seed = int(params.get("split_seed", 0))
    per_digit: dict[int, list[tuple[str, list[int]]]] = {}
    for key, idx in units:
        order = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
        per_digit.setdefault(int(y[idx[0]]), []).append((order, idx))
    counts = {d: sum(len(i) for _, i in us) for d, us in per_digit.items()}
    quota = {"test": _apportion(n_test, counts), "val": _apportion(n_val, counts)}
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for d, us in sorted(per_digit.items()):
        us.sort()
        for split in ("test", "val"):
            need = quota[split][d]
            while need > 0 and us:
                taken = us.pop(0)[1][:need]
                out[split] += taken
                need -= len(taken)
        if not us:
            raise PtbenchError(
                f"task 'spoken_digits': val_size={n_val} and test_size={n_test} leave no training "
                f"clips of '{WORDS[d]}' ({counts[d]} distinct clips of it; copies are dropped)"
            )
        out["train"] += [i for _, idx in us for i in idx]
    return {s: np.sort(np.array(i, np.int64)) for s, i in out.items()}


def _units(x: np.ndarray) -> list[tuple[str, list[int]]]:
    """(a waveform hash, clip indices): the split units. An utterance (voice, digit) holds its
    clips at every speed; utterances sharing any waveform are one unit; each waveform appears
    once, as its first clip in synthesis order (voice, speed, digit)."""
    n = len(SPEEDS)
    utter = np.arange(len(x)).reshape(-1, n, len(WORDS)).transpose(0, 2, 1).reshape(-1, n)
    digest = [hashlib.sha256(np.ascontiguousarray(c).tobytes()).hexdigest() for c in x]
    first: dict[str, int] = {}
    for i, h in enumerate(digest):
        first.setdefault(h, i)
    parent = list(range(len(utter)))

    def root(u: int) -> int:
        while parent[u] != u:
            u = parent[u]
        return u

    owner: dict[str, int] = {}
    for u, row in enumerate(utter):
        for i in row:
            a, b = root(u), root(owner.setdefault(digest[i], u))
            parent[max(a, b)] = min(a, b)
    members: dict[int, set[int]] = {}
    for u, row in enumerate(utter):
        members.setdefault(root(u), set()).update(first[digest[i]] for i in row)
    return [(digest[min(m)], sorted(m)) for m in members.values()]


def _apportion(n: int, counts: dict[int, int]) -> dict[int, int]:
    """``n`` split over classes in proportion to ``counts`` (largest remainders; ties by class)."""
    keys = sorted(counts)
    return dict(zip(keys, apportion(n, [counts[c] for c in keys]), strict=True))
