"""Corruptions at five severities, per modality; deterministic for a given seed.

Images follow the ImageNet-C families (Hendrycks & Dietterich, 2019), implemented on uint8
tensors ``[N, C, H, W]`` with torch / torchvision ops; text on lists of strings; audio on 16 kHz
waveforms ``[N, T]`` with torchaudio. Each severity level moves inputs further from the clean
ones (tested). ``ptbench ls corruptions`` prints what the five levels mean.
"""

from __future__ import annotations

import math
import re

import torch
from torch.nn import functional as F

from ptbench.registry import Registry
from ptbench.tasks.base import RATE

CORRUPTIONS = Registry("corruption", meta_keys=("modality", "meaning", "levels"))  # levels: severity 1..5


def _f(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _image(name: str, levels: list, meaning: str):
    return CORRUPTIONS.register(name, modality="image", levels=levels, meaning=meaning)


@_image("gaussian_noise", [0.04, 0.08, 0.12, 0.18, 0.26], "noise std (fraction of range)")
def gaussian_noise(x, s, g):
    return _u8(_f(x) + s * torch.randn(x.shape, generator=g))


@_image("shot_noise", [60, 25, 12, 5, 3], "photons per unit intensity (fewer = noisier)")
def shot_noise(x, s, g):
    return _u8(torch.poisson(_f(x) * s, generator=g) / s)


@_image("impulse_noise", [0.03, 0.06, 0.09, 0.17, 0.27], "fraction of salt-and-pepper pixels")
def impulse_noise(x, s, g):
    u = torch.rand(x.shape, generator=g)
    out = x.clone()
    out[u < s / 2] = 0
    out[(u >= s / 2) & (u < s)] = 255
    return out


def _conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = (k / k.sum()).to(torch.float32)[None, None].expand(c, 1, *k.shape)
    return _u8(
        F.conv2d(F.pad(_f(x), [k.shape[-1] // 2] * 2 + [k.shape[-2] // 2] * 2, mode="replicate"), k, groups=c)
    )


_PX = " (px; scaled with widths above 32 px, never below)"  # the blurs' sizes


@_image("defocus_blur", [1, 1.5, 2, 3, 4], f"disk radius{_PX}")
def defocus_blur(x, s, g):
    r = s * max(32, x.shape[-1]) / 32
    n = int(math.ceil(r)) * 2 + 1
    yy, xx = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    return _conv(x, ((xx**2 + yy**2) <= r * r).float())


@_image("motion_blur", [2, 3, 4, 6, 8], f"streak half-length: spans 2·s+1 px{_PX}, an angle per image")
def motion_blur(x, s, g):
    """One streak angle per image, as ImageNet-C draws them: one angle for the whole set made
    the family's score one orientation's (a near-vertical streak spares a '1', wrecks a '7')."""
    from torchvision.transforms.v2 import functional as TF

    n = max(1, int(round(s * max(32, x.shape[-1]) / 32))) * 2 + 1
    line = torch.zeros(1, n, n)
    line[0, n // 2, :] = 1
    angles = torch.rand(len(x), generator=g) * 180
    kernels = [TF.rotate(line, float(a))[0] + 1e-6 for a in angles]
    return torch.cat([_conv(img[None], k) for img, k in zip(x, kernels, strict=True)])


@_image("gaussian_blur", [0.5, 0.75, 1.0, 1.5, 2.0], f"sigma{_PX}")
def gaussian_blur(x, s, g):
    from torchvision.transforms.v2 import functional as TF

    sigma = s * max(32, x.shape[-1]) / 32
    # at most 2·(side − 1) + 1 wide: torchvision pads by reflection, which needs pad < side
    k = min(int(2 * math.ceil(3 * sigma) + 1), 2 * (min(x.shape[-2:]) - 1) + 1)
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


@_image("contrast", [0.75, 0.5, 0.4, 0.3, 0.15], "contrast factor toward the mean")
def contrast(x, s, g):
    f = _f(x)
    m = f.mean((1, 2, 3), keepdim=True)
    return _u8((f - m) * s + m)


@_image("brightness", [0.1, 0.2, 0.3, 0.4, 0.5], "added brightness")
def brightness(x, s, g):
    return _u8(_f(x) + s)


@_image("saturate", [0.5, 0.2, 2.5, 5.0, 20.0], "saturation factor (colour images only)")
def saturate(x, s, g):
    from torchvision.transforms.v2 import functional as TF

    return TF.adjust_saturation(x, s) if x.shape[1] == 3 else x.clone()


@_image("jpeg", [80, 65, 50, 30, 15], "JPEG quality")
def jpeg(x, s, g):
    from torchvision.transforms.v2 import functional as TF

    return TF.jpeg(x, quality=s)


@_image("pixelate", [0.85, 0.6, 0.4, 0.28, 0.2], "downscale factor before nearest upscaling")
def pixelate(x, s, g):
    h = x.shape[-1]
    small = F.interpolate(_f(x), size=max(2, int(h * s)), mode="area")
    return _u8(F.interpolate(small, size=h, mode="nearest"))


@_image("elastic", [0.5, 1.0, 1.5, 2.0, 2.5], "displacement (px at 32 px) of a smooth field")
def elastic(x, s, g):
    n, _, h, w = x.shape
    field = torch.randn(n, 2, max(2, h // 8), max(2, w // 8), generator=g)
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    field = field * (s / 32) * 2
    # pixel centres (align_corners=False): linspace(-1, 1) read pixel i at i·w/(w−1) − ½, so a
    # zero field already shrank and blurred the image (12 % at 8 px)
    yy, xx = torch.meshgrid(
        torch.linspace(-1 + 1 / h, 1 - 1 / h, h), torch.linspace(-1 + 1 / w, 1 - 1 / w, w), indexing="ij"
    )
    grid = torch.stack([xx, yy], -1)[None] + field.permute(0, 2, 3, 1)
    return _u8(F.grid_sample(_f(x), grid, mode="bilinear", padding_mode="border", align_corners=False))


@_image("haze", [0.15, 0.25, 0.35, 0.45, 0.6], "blend weight of a smooth bright fog field")
def haze(x, s, g):
    n, c, h, w = x.shape
    fog = F.interpolate(
        torch.rand(n, 1, 4, 4, generator=g), size=(h, w), mode="bicubic", align_corners=False
    ).clamp(0, 1)
    return _u8(_f(x) * (1 - s) + s * (0.6 + 0.4 * fog))


# --- text -----------------------------------------------------------------------------------
def _text(name: str, levels: list, meaning: str):
    return CORRUPTIONS.register(name, modality="text", levels=levels, meaning=meaning)


def _rand(g: torch.Generator) -> float:
    return float(torch.rand((), generator=g))


@_text("char_typos", [0.02, 0.05, 0.1, 0.15, 0.25], "fraction of characters typo'd")
def char_typos(texts, s, g):
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for t in texts:
        chars = list(t)
        for i in range(len(chars)):
            if chars[i].isalpha() and _rand(g) < s:
                op = int(_rand(g) * 3)
                ch = letters[int(_rand(g) * 26)]
                chars[i] = ch if op == 0 else (chars[i] + ch if op == 1 else "")
        out.append("".join(chars))
    return out


@_text("word_dropout", [0.05, 0.1, 0.2, 0.3, 0.45], "fraction of words removed")
def word_dropout(texts, s, g):
    return [" ".join(w for w in t.split() if _rand(g) >= s) for t in texts]


@_text("word_swaps", [0.05, 0.1, 0.2, 0.3, 0.45], "fraction of adjacent word pairs swapped")
def word_swaps(texts, s, g):
    out = []
    for t in texts:
        w = t.split()
        for i in range(len(w) - 1):
            if _rand(g) < s:
                w[i], w[i + 1] = w[i + 1], w[i]
        out.append(" ".join(w))
    return out


@_text(
    "casing",
    [0.1, 0.25, 0.5, 0.75, 1.0],
    "fraction of words with random casing (an uncased tokenizer reads them as clean)",
)
def casing(texts, s, g):
    def flip(word: str) -> str:
        return "".join(c.upper() if _rand(g) < 0.5 else c.lower() for c in word)

    return [re.sub(r"\S+", lambda m: flip(m.group()) if _rand(g) < s else m.group(), t) for t in texts]


# --- audio ----------------------------------------------------------------------------------
def _audio(name: str, levels: list, meaning: str):
    return CORRUPTIONS.register(name, modality="audio", levels=levels, meaning=meaning)


@_audio("noise_snr", [20, 15, 10, 5, 0], "white noise at this SNR (dB)")
def noise_snr(x, s, g):
    p = x.pow(2).mean(1, keepdim=True).clamp(min=1e-10)
    return x + torch.randn(x.shape, generator=g) * torch.sqrt(p / 10 ** (s / 10))


@_audio("time_shift", [0.05, 0.1, 0.2, 0.3, 0.4], "circular shift (fraction of the clip)")
def time_shift(x, s, g):
    k = int(s * x.shape[1])
    return torch.stack([torch.roll(w, k if _rand(g) < 0.5 else -k) for w in x])


@_audio("gain", [-3, 6, -9, 12, -18], "gain in dB (clipped at ±1)")
def gain(x, s, g):
    return (x * 10 ** (s / 20)).clamp(-1, 1)


@_audio("speed", [1.05, 1.1, 1.15, 1.25, 1.35], "speed factor (pitch moves with it)")
def speed(x, s, g):
    import torchaudio.functional as AF

    y = AF.resample(x, int(RATE * s), RATE)
    out = torch.zeros_like(x)
    out[:, : min(y.shape[1], x.shape[1])] = y[:, : x.shape[1]]
    return out


@_audio("reverb", [0.1, 0.2, 0.35, 0.5, 0.8], "RT60 of a synthetic room (s)")
def reverb(x, s, g):
    import torchaudio.functional as AF

    n = int(RATE * s)
    t = torch.arange(n) / RATE
    # one room per clip, drawn at the longest level's length so that a higher severity extends
    # each clip's same room (the draws depend on the seed only, as for every corruption)
    longest = int(RATE * max(CORRUPTIONS.get("reverb").meta["levels"]))
    ir = torch.randn(len(x), longest, generator=g)[:, :n] * torch.exp(-6.9 * t / s)
    ir[:, 0] = 1.0
    y = AF.fftconvolve(x, ir)[:, : x.shape[1]]
    return y * (x.abs().amax(1, keepdim=True) / y.abs().amax(1, keepdim=True).clamp(min=1e-8))


@_audio("band_limit", [4000, 3000, 2000, 1200, 700], "low-pass cut-off (Hz)")
def band_limit(x, s, g):
    import torchaudio.functional as AF

    y = x
    for _ in range(2):  # 4th order
        y = AF.lowpass_biquad(y, RATE, s)
    return y


def corrupt(name: str, x, severity: int, seed: int):
    """Apply corruption ``name`` at ``severity`` (1–5): the same inputs and seed give the same
    output, always."""
    entry = CORRUPTIONS.get(name)
    # the random draws depend on the seed only: a higher severity scales the same pattern
    g = torch.Generator().manual_seed(seed * 1000 + sum(map(ord, name)))
    return entry.fn(x, entry.meta["levels"][severity - 1], g)


def names_for(modality: str) -> list[str]:
    return [e.name for e in CORRUPTIONS if e.meta["modality"] == modality]
