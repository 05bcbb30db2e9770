"""WaveNet-style encoder: gated, dilated causal convolutions over the waveform (torchaudio ships
WaveRNN, not a WaveNet encoder)."""

from __future__ import annotations

import torch
from torch import nn


class GatedResidual(nn.Module):
    """WaveNet's block: dilated causal conv → tanh ⊙ sigmoid gate → residual and skip outputs."""

    def __init__(self, ch: int, dilation: int):
        super().__init__()
        self.pad = dilation  # kernel 2: causal padding of (k-1)·d on the left
        self.conv = nn.Conv1d(ch, 2 * ch, 2, dilation=dilation)
        self.res = nn.Conv1d(ch, ch, 1)
        self.skip = nn.Conv1d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(nn.functional.pad(x, (self.pad, 0)))
        a, b = h.chunk(2, 1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return x + self.res(z), self.skip(z)


class WaveNetEncoder(nn.Module):
    def __init__(self, ch: int, stacks: int, layers: int, stride: int):
        super().__init__()
        self.front = nn.Conv1d(1, ch, stride, stride=stride)  # learnable down-sampling
        self.blocks = nn.ModuleList(GatedResidual(ch, 2**i) for _ in range(stacks) for i in range(layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(ch, ch, 1), nn.ReLU())

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.front(wav.unsqueeze(1))
        skips = 0
        for block in self.blocks:
            x, s = block(x)
            skips = skips + s
        h = self.out(skips)
        return torch.cat([h.mean(-1), h.amax(-1)], 1)
