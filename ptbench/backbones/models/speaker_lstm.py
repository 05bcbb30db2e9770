"""Resemblyzer's speaker encoder, rebuilt (the package needs webrtcvad; only its weights file is
read)."""

from __future__ import annotations

import torch
from torch import nn


class SpeakerLSTM(nn.Module):
    """Resemblyzer's VoiceEncoder layout: LSTM(40→256, 3 layers) → Linear(256→256) → ReLU → L2.

    Its random init (``weights: none``) is Keras's standard one for these layers, not PyTorch's
    U(±1/16) on every tensor: under the latter the forget gates sit near 0.5, the last state
    forgets a clip over its trailing silence, and every clip gave the same embedding (spread
    across clips ~1e-7), so the random-init control controlled nothing.
    """

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """tf.keras defaults: Glorot-uniform input kernels, orthogonal recurrent kernels, zero
        biases with the forget gate's at 1 (Jozefowicz et al., 2015); Glorot-uniform, zero-bias
        Linear. PyTorch's gate order is input, forget, cell, output."""
        hidden = self.lstm.hidden_size
        for name, p in self.lstm.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(p)
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(p)
            else:
                nn.init.zeros_(p)
                if name.startswith("bias_ih"):
                    p[hidden : 2 * hidden] = 1.0
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mel.transpose(1, 2))
        e = torch.relu(self.linear(hidden[-1]))
        return e / e.norm(dim=1, keepdim=True).clamp(min=1e-5)
