"""Audio backbones over 16 kHz waveforms ``[B, T]``.

- ``wav2vec2`` / ``hubert``: torchaudio's models, small configurations for the CPU; hub weights
  from torchaudio's pipeline bundles (local torch-hub cache only; ``W2V_BUNDLES``).
- ``wavenet``: a WaveNet-style stack of gated, dilated causal convolutions (``models/wavenet.py``).
- ``mel_cnn``: a small CNN over log-mel features (``models/mel_cnn.py``).
- ``resemblyzer``: a 3-layer LSTM speaker encoder over 40-band mel at 16 kHz; its real weights
  ship in the PyPI package ``resemblyzer`` (installed with --no-deps; the module is rebuilt in
  ``models/speaker_lstm.py``).
Feature extraction (log-mel) is the encoder stage (``encoders.py``): computed once per split, not
per batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchaudio.models.wav2vec2.components import Transformer

from ptbench import optional
from ptbench.backbones import BACKBONES
from ptbench.backbones.base import Backbone, with_readout
from ptbench.backbones.encoders import MelEncoder, Waveform
from ptbench.backbones.models.mel_cnn import MelCNN
from ptbench.backbones.models.speaker_lstm import SpeakerLSTM
from ptbench.backbones.models.wavenet import WaveNetEncoder
from ptbench.backbones.weights import load_into, resolve, torch_hub_state
from ptbench.errors import PtbenchError
from ptbench.params import Param

TORCHAUDIO_MODELS = "https://download.pytorch.org/torchaudio/models"  # where bundles name their files
AUDIO_PARAMS = {"size": Param(str, "small (CPU) or full", choices=("small", "full"))}
TRANSFORMER_AUDIO_PARAMS = AUDIO_PARAMS | {
    "dropout": Param(float, "rate of every dropout layer inside the backbone", low=0, high=1)
}


# --- wav2vec2 / HuBERT -------------------------------------------------------------------------
# the torchaudio bundles each family reads: its own pre-trained encoders. Not the ASR bundles
# (fine-tuned for characters, their frame-wise CTC head no source head) nor WavLM (another
# architecture): these failed on every trial, or read other features than the suite named
W2V_BUNDLES = {
    "wav2vec2": (
        "WAV2VEC2_BASE",
        "WAV2VEC2_LARGE",
        "WAV2VEC2_LARGE_LV60K",
        "WAV2VEC2_XLSR53",
        "WAV2VEC2_XLSR_300M",
        "WAV2VEC2_XLSR_1B",
        "WAV2VEC2_XLSR_2B",
    ),
    "hubert": ("HUBERT_BASE", "HUBERT_LARGE", "HUBERT_XLARGE"),
}


class W2VEncoder(nn.Module):
    """Mean of the last layer's frames. ``normalize``: each clip scaled to zero mean and unit
    variance first, as the large bundles were trained (torchaudio's wrapper normalises a batch
    as a whole, so a clip's features would depend on its batch)."""

    def __init__(self, model: nn.Module, normalize: bool = False):
        super().__init__()
        self.model, self.normalize = model, normalize

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            wav = nn.functional.layer_norm(wav, wav.shape[-1:])
        feats, _ = self.model(wav)
        return feats.mean(1)


W2V_SMALL = {
    "extractor_mode": "group_norm",
    "extractor_conv_bias": False,
    "extractor_conv_layer_config": [(32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 3, 2), (32, 2, 2)],
    "encoder_embed_dim": 64,
    "encoder_projection_dropout": 0.0,
    "encoder_pos_conv_kernel": 16,
    "encoder_pos_conv_groups": 4,
    "encoder_num_layers": 2,
    "encoder_num_heads": 2,
    "encoder_attention_dropout": 0.0,
    "encoder_ff_interm_features": 128,
    "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.0,
    "encoder_layer_norm_first": False,
    "encoder_layer_drop": 0.0,
    "aux_num_out": None,
}


def _w2v_small():
    from torchaudio.models import wav2vec2_model

    return wav2vec2_model(**W2V_SMALL)


def _bundle_model(bundle_name: str):
    """A torchaudio pipeline bundle's model from the local torch-hub cache, never a hang; its
    file read safely (bundle.get_model() unpickles it with weights_only=False), and unwrapped:
    get_model() wraps the bundles that normalise the waveform (W2VEncoder does it)."""
    import torchaudio

    bundle = getattr(torchaudio.pipelines, bundle_name)
    url = bundle._path if bundle._path.startswith("https") else f"{TORCHAUDIO_MODELS}/{bundle._path}"
    state, path = torch_hub_state(bundle_name, url)
    model = torchaudio.models.wav2vec2_model(**bundle._params)
    load_into(model, state, str(path))
    return model.eval()


class TrainedLayerDrop(Transformer):
    """torchaudio's transformer, whose LayerDrop skips a layer only while that layer trains:
    torchaudio's skips any layer while the transformer trains, frozen ones too, so under partial
    fine-tuning the frozen features changed from step to step."""

    def forward(self, x, attention_mask=None, position_bias=None):
        x = self._preprocess(x)
        for layer in self.layers:
            if not (layer.training and torch.rand(1).item() <= self.layer_drop):
                x, position_bias = layer(x, attention_mask, position_bias=position_bias)
        return x if self.layer_norm_first else self.layer_norm(x)


def _w2v_blocks(model: nn.Module) -> list[nn.Module]:
    """In the order they run: the transformer's norm follows the positional convolution where
    torchaudio applies it first (``layer_norm_first``: the base and hub bundles, and ours), else
    it reads out the last layer. Listed last either way, it was the "last block" that
    ``train_blocks: 1`` trained: 128 parameters ahead of every layer."""
    t = model.encoder.transformer
    t.__class__ = TrainedLayerDrop
    # the dropout after the positional convolution belongs to it: frozen, it reads as at evaluation
    pos = [t.pos_conv_embed, t.layer_norm, t.dropout] if t.layer_norm_first else [t.pos_conv_embed, t.dropout]
    blocks = [model.feature_extractor, model.encoder.feature_projection, nn.ModuleList(pos), *t.layers]
    return blocks if t.layer_norm_first else with_readout(blocks, t.layer_norm)


def _w2v_backbone(spec: dict[str, Any], full_factory: str, bundle: str) -> Backbone:
    import torchaudio
    import torchaudio.models as M

    allowed = W2V_BUNDLES[spec["name"]]
    if spec.get("weights") == "hub" and (spec.get("id") or bundle) not in allowed:
        raise PtbenchError(
            f"backbone '{spec['name']}' has no hub weights '{spec['id']}' (available: {', '.join(allowed)})"
        )
    full = spec.get("params", {}).get("size", "small") == "full"
    model, info = resolve(
        spec,
        build=lambda: getattr(M, full_factory)() if full else _w2v_small(),
        hub=_bundle_model,
        hub_default=bundle,
    )
    dim = model.encoder.transformer.layers[0].attention.k_proj.in_features
    normalize = info.source == "hub" and getattr(torchaudio.pipelines, info.ref)._normalize_waveform
    net = W2VEncoder(model, normalize)
    bb = Backbone(net, dim, _w2v_blocks(model), modality="audio", encoder=Waveform())
    if normalize:  # the default (none) adds nothing: earlier caches and records stay valid
        bb.readout = {"normalize_waveform": True}
    bb.weights = info
    bb.weights_module = model
    return bb


@BACKBONES.register(
    "wav2vec2",
    modality="audio",
    hub_ids=W2V_BUNDLES["wav2vec2"],
    family="wav2vec 2.0",
    params=TRANSFORMER_AUDIO_PARAMS,
    lora_targets=("q_proj", "v_proj"),
    weights=("none", "hub", "file"),
)
def wav2vec2(spec: dict[str, Any]) -> Backbone:
    """wav2vec 2.0 (small: 2 layers × 64; full: base); hub: torchaudio WAV2VEC2_BASE or ``id``."""
    return _w2v_backbone(spec, "wav2vec2_base", "WAV2VEC2_BASE")


@BACKBONES.register(
    "hubert",
    modality="audio",
    hub_ids=W2V_BUNDLES["hubert"],
    family="HuBERT",
    params=TRANSFORMER_AUDIO_PARAMS,
    lora_targets=("q_proj", "v_proj"),
    weights=("none", "hub", "file"),
)
def hubert(spec: dict[str, Any]) -> Backbone:
    """HuBERT (small: same small transformer as wav2vec2; full: base); hub: HUBERT_BASE or ``id``."""
    return _w2v_backbone(spec, "hubert_base", "HUBERT_BASE")


# --- WaveNet-style -----------------------------------------------------------------------------
@BACKBONES.register(
    "wavenet", modality="audio", family="WaveNet", params=AUDIO_PARAMS, weights=("none", "file")
)
def wavenet(spec: dict[str, Any]) -> Backbone:
    """WaveNet-style encoder: gated dilated causal convs over the waveform (small: 32 ch, 1×8)."""
    full = spec.get("params", {}).get("size", "small") == "full"
    net, info = resolve(
        spec,
        build=lambda: WaveNetEncoder(
            128 if full else 32, 3 if full else 1, 10 if full else 8, 4 if full else 16
        ),
    )
    bb = Backbone(
        net,
        2 * net.front.out_channels,
        [net.front, *net.blocks, net.out],
        modality="audio",
        encoder=Waveform(),
    )
    bb.weights = info
    return bb


# --- log-mel CNN -------------------------------------------------------------------------------
@BACKBONES.register(
    "mel_cnn", modality="audio", family="CNN (log-mel)", params=AUDIO_PARAMS, weights=("none", "file")
)
def mel_cnn(spec: dict[str, Any]) -> Backbone:
    """A small CNN over 40-band log-mel features."""
    full = spec.get("params", {}).get("size", "small") == "full"
    net, info = resolve(spec, build=lambda: MelCNN([64, 128, 256, 512] if full else [16, 32, 64, 128]))
    bb = Backbone(
        net,
        net.stages[-1][0].out_channels,
        list(net.stages),
        modality="audio",
        encoder=MelEncoder(40, log=True),
    )
    bb.weights = info
    return bb


# --- Resemblyzer LSTM --------------------------------------------------------------------------
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
    net, info = resolve(
        spec,
        build=SpeakerLSTM,
        package=_resemblyzer_file,
        # the GE2E loss's similarity scale/bias belong to pre-training, not to the encoder
        foreign=lambda key: key.split(".")[0] not in ("lstm", "linear"),
    )
    bb = Backbone(
        net,
        256,
        [net.lstm, net.linear],
        modality="audio",
        encoder=MelEncoder(40, log=False, librosa_scale=True),
    )
    bb.weights = info
    return bb
