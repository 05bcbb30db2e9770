"""Audio backbones over 16 kHz waveforms ``[B, T]``.

- ``wav2vec2`` / ``hubert``: torchaudio's models, small configurations for the CPU; hub weights
  from torchaudio's pipeline bundles (local torch-hub cache only).
- ``wavenet``: a WaveNet-style stack of gated, dilated causal convolutions (our own: torchaudio
  ships WaveRNN, not a WaveNet encoder).
- ``mel_cnn``: a small CNN over log-mel features.
- ``resemblyzer``: a 3-layer LSTM speaker encoder over 40-band mel at 16 kHz; its real weights
  ship in the PyPI package ``resemblyzer`` (installed with --no-deps; the module is rebuilt here).
Feature extraction (log-mel) is the encoder stage: computed once per split, not per batch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ptbench import optional
from ptbench.backbones import BACKBONES
from ptbench.backbones.base import Backbone, WeightsInfo
from ptbench.backbones.weights import file_sha256, load_into, read_checkpoint
from ptbench.errors import PtbenchError
from ptbench.params import Param
from ptbench.tasks.base import RATE

AUDIO_PARAMS = {"size": Param(str, "small (CPU) or full", choices=("small", "full"))}
TRANSFORMER_AUDIO_PARAMS = AUDIO_PARAMS | {
    "dropout": Param(float, "rate of every dropout layer inside the backbone", low=0, high=1)
}


class MelEncoder:
    """Waveforms → (log-)mel spectrograms ``[N, n_mels, frames]`` (torchaudio.transforms)."""

    def __init__(
        self,
        n_mels: int = 40,
        log: bool = True,
        n_fft: int = 400,
        hop: int = 160,
        librosa_scale: bool = False,
    ):
        import torchaudio.transforms as T

        scale = {"norm": "slaney", "mel_scale": "slaney"} if librosa_scale else {}
        self.mel = T.MelSpectrogram(RATE, n_fft=n_fft, hop_length=hop, n_mels=n_mels, **scale)
        self.cfg = {"sample_rate": RATE, "n_mels": n_mels, "n_fft": n_fft, "hop": hop, "log": log}
        self.log = log

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:  # differentiable: attacks go through it
        out = torch.cat([self.mel(wav[i : i + 256].float()) for i in range(0, len(wav), 256)])
        return torch.log(out + 1e-6) if self.log else out

    def to_dict(self) -> dict[str, Any]:
        return dict(self.cfg)


class Waveform:
    """Encoder stage of waveform models: the 16 kHz samples as they are."""

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        return wav.float()

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": RATE, "input": "waveform"}


def _with_file(net: nn.Module, spec: dict[str, Any]) -> WeightsInfo:
    info = WeightsInfo(source=spec.get("weights", "none"))
    if info.source == "file":
        path = spec["path"]
        info.dropped = load_into(net, read_checkpoint(path), str(path))
        info.ref, info.sha256 = str(path), file_sha256(path)
    return info


# --- wav2vec2 / HuBERT -------------------------------------------------------------------------
class W2VEncoder(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        feats, _ = self.model(wav)
        return feats.mean(1)


def _w2v_small():
    from torchaudio.models import wav2vec2_model

    return wav2vec2_model(
        extractor_mode="group_norm",
        extractor_conv_bias=False,
        extractor_conv_layer_config=[(32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 3, 2), (32, 2, 2)],
        encoder_embed_dim=64,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16,
        encoder_pos_conv_groups=4,
        encoder_num_layers=2,
        encoder_num_heads=2,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=128,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )


def _bundle_model(bundle_name: str):
    """A torchaudio pipeline bundle's model from the local torch-hub cache, never a hang."""
    import torchaudio

    bundle = getattr(torchaudio.pipelines, bundle_name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(bundle._path).name
    if not cached.is_file() and os.environ.get("PTBENCH_ALLOW_DOWNLOAD") != "1":
        raise PtbenchError(
            f"hub weights '{bundle_name}' are not in the local torch-hub cache "
            f"({cached}) and downloads are off (PTBENCH_ALLOW_DOWNLOAD=1)"
        )
    return bundle.get_model()


def _w2v_backbone(spec: dict[str, Any], full_factory: str, bundle: str) -> Backbone:
    import torchaudio.models as M

    full = spec.get("params", {}).get("size", "small") == "full"
    if spec.get("weights") == "hub":
        model = _bundle_model(spec.get("id") or bundle)
        info = WeightsInfo("hub", spec.get("id") or bundle)
    else:
        model = getattr(M, full_factory)() if full else _w2v_small()
        info = _with_file(model, spec)
    dim = model.encoder.transformer.layers[0].attention.k_proj.in_features
    blocks = [
        model.feature_extractor,
        model.encoder.feature_projection,
        model.encoder.transformer.pos_conv_embed,
        *model.encoder.transformer.layers,
    ]
    rest = [m for m in (getattr(model.encoder.transformer, "layer_norm", None),) if m is not None]
    bb = Backbone(W2VEncoder(model), dim, [*blocks, *rest], modality="audio", encoder=Waveform())
    bb.weights = info
    bb.weights_module = model
    return bb


@BACKBONES.register(
    "wav2vec2",
    modality="audio",
    family="wav2vec 2.0",
    params=TRANSFORMER_AUDIO_PARAMS,
    lora_targets=("q_proj", "v_proj"),
    weights=("none", "hub", "file"),
)
def wav2vec2(spec: dict[str, Any]) -> Backbone:
    """wav2vec 2.0 (small: 2 layers × 64; full: base); hub: torchaudio WAV2VEC2_BASE."""
    return _w2v_backbone(spec, "wav2vec2_base", "WAV2VEC2_BASE")


@BACKBONES.register(
    "hubert",
    modality="audio",
    family="HuBERT",
    params=TRANSFORMER_AUDIO_PARAMS,
    lora_targets=("q_proj", "v_proj"),
    weights=("none", "hub", "file"),
)
def hubert(spec: dict[str, Any]) -> Backbone:
    """HuBERT (small: same small transformer as wav2vec2; full: base); hub: HUBERT_BASE."""
    return _w2v_backbone(spec, "hubert_base", "HUBERT_BASE")


# --- WaveNet-style -----------------------------------------------------------------------------
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


@BACKBONES.register(
    "wavenet", modality="audio", family="WaveNet", params=AUDIO_PARAMS, weights=("none", "file")
)
def wavenet(spec: dict[str, Any]) -> Backbone:
    """WaveNet-style encoder: gated dilated causal convs over the waveform (small: 32 ch, 1×8)."""
    full = spec.get("params", {}).get("size", "small") == "full"
    net = WaveNetEncoder(128 if full else 32, 3 if full else 1, 10 if full else 8, 4 if full else 16)
    bb = Backbone(
        net,
        2 * net.front.out_channels,
        [net.front, *net.blocks, net.out],
        modality="audio",
        encoder=Waveform(),
    )
    bb.weights = _with_file(net, spec)
    return bb


# --- log-mel CNN -------------------------------------------------------------------------------
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


@BACKBONES.register(
    "mel_cnn", modality="audio", family="CNN (log-mel)", params=AUDIO_PARAMS, weights=("none", "file")
)
def mel_cnn(spec: dict[str, Any]) -> Backbone:
    """A small CNN over 40-band log-mel features."""
    full = spec.get("params", {}).get("size", "small") == "full"
    net = MelCNN([64, 128, 256, 512] if full else [16, 32, 64, 128])
    bb = Backbone(
        net,
        net.stages[-1][0].out_channels,
        list(net.stages),
        modality="audio",
        encoder=MelEncoder(40, log=True),
    )
    bb.weights = _with_file(net, spec)
    return bb


# --- Resemblyzer LSTM --------------------------------------------------------------------------
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


def _resemblyzer_file() -> Path:
    root = optional.package_dir("resemblyzer")  # found, never imported: it needs webrtcvad
    path = optional.file(root / "pretrained.pt") if root else None
    if path is None:
        raise PtbenchError("package weights for resemblyzer need 'pip install --no-deps resemblyzer==0.1.4'")
    return path


@BACKBONES.register(
    "resemblyzer",
    modality="audio",
    family="LSTM (mel)",
    params={},
    weights=("none", "package", "file"),
    package="resemblyzer",
)
def resemblyzer(spec: dict[str, Any]) -> Backbone:
    """3-layer LSTM speaker encoder over 40-band mel at 16 kHz; real weights ship in resemblyzer.

    ``weights: none`` is the same network and mel under tf.keras's default LSTM/Dense init (see
    ``SpeakerLSTM.reset_parameters``)."""
    net = SpeakerLSTM()
    if spec.get("weights") == "package":
        path = _resemblyzer_file()
        info = WeightsInfo("package", str(path), file_sha256(path))
        state = read_checkpoint(path)
        body = {k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")}
        # the GE2E loss's similarity scale/bias belong to pre-training, not to the encoder
        info.dropped = [k for k in state if k not in body] + load_into(net, body, str(path))
    else:
        info = _with_file(net, spec)
    bb = Backbone(
        net,
        256,
        [net.lstm, net.linear],
        modality="audio",
        encoder=MelEncoder(40, log=False, librosa_scale=True),
    )
    bb.weights = info
    return bb
