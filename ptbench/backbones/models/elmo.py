"""ELMo-style encoder: stacked bidirectional LSTMs and a learned scalar mix of their layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ScalarMix(nn.Module):
    """ELMo's learned softmax-weighted sum of layer outputs, times a scale γ."""

    def __init__(self, n: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        w = self.w.softmax(0)
        return self.gamma * sum(wi * h for wi, h in zip(w, layers, strict=True))


class BiLSTMEncoder(nn.Module):
    """ELMo-style: word embeddings → stacked bidirectional LSTMs → scalar mix → masked mean.

    Built here because no maintained library ships an ELMo encoder for current PyTorch
    (AllenNLP is archived); the bidirectional language-model head lives in ``ptbench pretrain``.
    """

    def __init__(self, vocab: int, dim: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstms = nn.ModuleList(
            nn.LSTM(dim if i == 0 else 2 * dim, dim, batch_first=True, bidirectional=True)
            for i in range(layers)
        )
        self.mix = ScalarMix(layers)
        self.drop = nn.Dropout(0.0)  # between layers, as in ELMo; set by the backbone_dropout regularizer

    def layers(self, ids: torch.Tensor) -> list[torch.Tensor]:
        h, outs = self.embed(ids), []
        for lstm in self.lstms:
            # dropout on an LSTM's input only while that LSTM trains: a frozen one (eval, under
            # partial fine-tuning) reads its input as at evaluation, like every frozen block
            h, _ = lstm(F.dropout(h, self.drop.p, training=self.drop.training and lstm.training))
            outs.append(h)
        return outs

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mix(self.layers(ids))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        m = (ids != 0).unsqueeze(-1).float()
        return (self.tokens(ids) * m).sum(1) / m.sum(1).clamp(min=1)
