"""Per-batch augmentations, by modality, from maintained libraries where one fits:
torchvision.transforms.v2 RandAugment for images, torchaudio's SpecAugment masks for log-mel.
Waveform shift/noise and token dropout/swaps are a few tensor ops, written here.

In every modality ``prob`` is the chance that a given example is augmented (the rest of the
batch passes through untouched) and ``magnitude`` (RandAugment's 0..30 scale) how strongly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Augment = Callable[[torch.Tensor], torch.Tensor]


def build_augmenter(
    modality: str, example: torch.Tensor, cfg: dict, seed: int, pad_id: int = 0, special=()
) -> Augment | None:
    """An augmentation for batches shaped like ``example`` (the encoded model input); token ids
    in ``special`` ([CLS], [SEP]) are neither dropped nor swapped."""
    if not cfg:
        return None
    gen = torch.Generator().manual_seed(seed)
    mag, prob = int(cfg.get("magnitude", 9)), float(cfg.get("prob", 0.2))
    if modality == "image" and example.dtype == torch.uint8:
        fn = _images(mag)
    elif modality == "audio" and example.dim() == 3:  # log-mel [B, mels, frames]
        fn = _mels(mag)
    elif modality == "audio":  # waveform [B, T]
        fn = _waves(mag, gen)
    elif modality == "text":
        fn = _tokens(mag, gen, pad_id, tuple(special))
    else:
        return None
    return _some_examples(fn, prob, gen)


def _some_examples(fn: Augment, prob: float, gen: torch.Generator) -> Augment:
    """Apply ``fn`` to each example of a batch with probability ``prob``."""

    def apply(x: torch.Tensor) -> torch.Tensor:
        pick = (torch.rand(len(x), generator=gen) < prob).to(x.device)
        if not bool(pick.any()):
            return x
        if bool(pick.all()):
            return fn(x)
        out = x.clone()
        out[pick] = fn(x[pick])
        return out

    return apply


def _images(mag: int) -> Augment:
    from torchvision.transforms import v2

    ra = v2.RandAugment(num_ops=2, magnitude=mag)
    return lambda x: torch.stack([ra(img) for img in x])  # a fresh random policy per image


def _mels(mag: int) -> Augment:
    import torchaudio.transforms as T

    fmask = T.FrequencyMasking(freq_mask_param=max(1, mag), iid_masks=True)
    tmask = T.TimeMasking(time_mask_param=max(1, 2 * mag), iid_masks=True)

    def mels(x: torch.Tensor) -> torch.Tensor:
        fill = x.amin()
        return tmask(fmask(x - fill)) + fill  # masks fill with the floor, not with zero

    return mels


def _waves(mag: int, gen: torch.Generator) -> Augment:
    def waves(x: torch.Tensor) -> torch.Tensor:
        shift = torch.randint(-x.shape[-1] // 10, x.shape[-1] // 10 + 1, (len(x),), generator=gen)
        x = torch.stack([torch.roll(w, int(s)) for w, s in zip(x, shift, strict=True)])
        noise = torch.randn(x.shape, generator=gen).to(x.device) * x.std() * (mag / 100)
        return x + noise

    return waves


def _tokens(mag: int, gen: torch.Generator, pad_id: int, special: tuple[int, ...] = ()) -> Augment:
    """Token dropout and one adjacent swap over the words only: dropping or moving [CLS] left a
    pooler reading a word or padding (a third of augmented BERT examples at magnitude 12)."""
    rate = mag / 60  # 3..12 drops 5..20 % of an augmented example's tokens
    keep = torch.tensor(special, dtype=torch.long)

    def tokens(ids: torch.Tensor) -> torch.Tensor:
        ids = ids.clone()
        words = lambda: (ids != pad_id) & ~torch.isin(ids, keep.to(ids.device))  # noqa: E731
        drop = (torch.rand(ids.shape, generator=gen) < rate).to(ids.device) & words()
        ids[drop] = pad_id
        real = words()
        for row in range(len(ids)):  # and swap one random adjacent pair of the remaining tokens
            pos = torch.nonzero(real[row]).flatten()
            if len(pos) >= 2:
                j = int(torch.randint(0, len(pos) - 1, (1,), generator=gen))
                a, b = int(pos[j]), int(pos[j + 1])
                ids[row, [a, b]] = ids[row, [b, a]]
        return ids

    return tokens
