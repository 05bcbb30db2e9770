"""Per-batch augmentations, by modality, from maintained libraries where one fits:
torchvision.transforms.v2 RandAugment for images, torchaudio's SpecAugment masks for log-mel.
Waveform shift/noise and token dropout/swaps are a few tensor ops, written here."""

from __future__ import annotations

from collections.abc import Callable

import torch


def build_augmenter(
    modality: str, example: torch.Tensor, cfg: dict, seed: int, pad_id: int = 0
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """An augmentation for batches shaped like ``example`` (the encoded model input)."""
    if not cfg:
        return None
    gen = torch.Generator().manual_seed(seed)
    mag, prob = int(cfg.get("magnitude", 9)), float(cfg.get("prob", 0.2))
    if modality == "image" and example.dtype == torch.uint8:
        from torchvision.transforms import v2

        ra = v2.RandAugment(num_ops=2, magnitude=mag)

        def images(x: torch.Tensor) -> torch.Tensor:
            return torch.stack([ra(img) for img in x])  # a fresh random policy per image

        return images
    if modality == "audio" and example.dim() == 3:  # log-mel [B, mels, frames]
        import torchaudio.transforms as T

        fmask = T.FrequencyMasking(freq_mask_param=max(1, mag), iid_masks=True)
        tmask = T.TimeMasking(time_mask_param=max(1, 2 * mag), iid_masks=True)

        def mels(x: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            fill = x.amin()
            return tmask(fmask(x - fill)) + fill  # masks fill with the floor, not with zero

        return mels
    if modality == "audio":  # waveform [B, T]

        def waves(x: torch.Tensor) -> torch.Tensor:
            shift = torch.randint(-x.shape[-1] // 10, x.shape[-1] // 10 + 1, (len(x),), generator=gen)
            x = torch.stack([torch.roll(w, int(s)) for w, s in zip(x, shift, strict=True)])
            noise = torch.randn(x.shape, generator=gen) * x.std() * (mag / 100)
            return x + noise

        return waves
    if modality == "text":

        def tokens(ids: torch.Tensor) -> torch.Tensor:
            ids = ids.clone()
            real = ids != pad_id
            drop = (torch.rand(ids.shape, generator=gen) < prob * 0.5) & real
            ids[drop] = pad_id
            # swap a random adjacent pair of real tokens in a fraction of the examples
            for row in torch.nonzero(torch.rand(len(ids), generator=gen) < prob).flatten():
                n = int(real[row].sum())
                if n > 2:
                    j = int(torch.randint(0, n - 1, (1,), generator=gen))
                    ids[row, [j, j + 1]] = ids[row, [j + 1, j]]
            return ids

        return tokens
    return None
