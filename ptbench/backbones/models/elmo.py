"""ELMo-style encoder: stacked bidirectional LSTMs and a learned scalar mix of their layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


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
        """Each layer's states ``[B, L, 2·dim]``, zero past a text's last word. Packed, so the
        backward LSTM starts at that word: run over the padding, the same text's features
        depended on ``max_len`` (~7 %). A hole inside (token dropout) is still read, as a zero
        embedding."""
        steps = torch.arange(1, ids.size(1) + 1, device=ids.device)
        lengths = ((ids != 0) * steps).amax(1).clamp(min=1).cpu()  # to the last word; ≥ 1 for ""
        h, outs = self.embed(ids), []
        for lstm in self.lstms:
            # dropout on an LSTM's input only while that LSTM trains: a frozen one (eval, under
            # partial fine-tuning) reads its input as at evaluation, like every frozen block
            x = F.dropout(h, self.drop.p, training=self.drop.training and lstm.training)
            packed, _ = lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
            h, _ = pad_packed_sequence(packed, batch_first=True, total_length=ids.size(1))
            outs.append(h)
        return outs

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mix(self.layers(ids))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        m = (ids != 0).unsqueeze(-1).float()
        return (self.tokens(ids) * m).sum(1) / m.sum(1).clamp(min=1)
