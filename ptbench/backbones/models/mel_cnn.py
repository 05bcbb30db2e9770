"""A small CNN over log-mel spectrograms."""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))


class MelCNN(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        chans = [1, *widths]
        self.stages = nn.ModuleList(_conv_block(a, b) for a, b in zip(chans, chans[1:], strict=False))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.unsqueeze(1)
        for stage in self.stages:
            x = stage(x)
        return x.mean((-2, -1))
