"""Build a backbone from its suite spec, resolving ptbench-made ('run') weights to their file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptbench.backbones import BACKBONES
from ptbench.backbones.base import Backbone, Preprocess
from ptbench.errors import PtbenchError
from ptbench.files import NAME_RULE, is_folder_name

WEIGHTS_FILE = "weights.safetensors"


def run_weights_path(weights_dir: str | Path | None, ref: str) -> Path:
    if not is_folder_name(ref):  # read from outside the weights folder, and named as ours
        raise PtbenchError(f"weights name '{ref}' is not {NAME_RULE}")
    path = Path(weights_dir or ".ptbench/weights") / ref / WEIGHTS_FILE
    if not path.is_file():
        raise PtbenchError(
            f"no pretrained weights '{ref}' in {path.parent.parent} "
            f"(make them with 'ptbench pretrain … --name {ref}')"
        )
    return path


def build_backbone(spec: dict[str, Any], weights_dir: str | Path | None = None) -> Backbone:
    entry = BACKBONES.get(spec["name"])
    if spec.get("weights") == "run":
        path = run_weights_path(weights_dir, spec["id"])
        bb = entry.fn({**spec, "weights": "file", "path": str(path)})
        bb.weights.source, bb.weights.ref = "run", spec["id"]
    else:
        bb = entry.fn(spec)
    bb.lora_targets = tuple(entry.meta.get("lora_targets", ()))
    if bb.source_head is None and bb.weights.head:
        from ptbench.backbones.weights import source_head

        bb.source_head = source_head(bb.weights.head, bb.num_features)
    bb.weights.head = {}  # the tensors are in source_head now, or of no use
    if isinstance(bb.preprocess, Preprocess):
        # Image nets run channels-last on every device: measured 1.3-1.9x faster forward and
        # 1.1-1.9x faster training on 2 CPU cores (README, "Backbones"). Only 4-D weights change.
        import torch

        bb.to(memory_format=torch.channels_last)
    if "dropout" in spec.get("params", {}):
        set_dropout(bb, float(spec["params"]["dropout"]))
    from ptbench.backbones.fingerprint import fingerprint

    bb.fingerprint = fingerprint(entry.fn, bb)  # code + built state: part of every feature-cache key
    return bb


def set_dropout(bb: Backbone, p: float) -> int:
    """Set every dropout layer inside the backbone (attention, hidden, between LSTM layers), and
    the attention dropout kept as a plain number (torchaudio's wav2vec2 and HuBERT), which no
    ``nn.Dropout`` holds: left alone, it stayed at the bundle's 0.1 whatever was searched."""
    from torch import nn

    layers = [m for m in bb.net.modules() if isinstance(m, nn.Dropout)]
    rates = [
        m for m in bb.net.modules() if type(m).__name__ == "SelfAttention" and isinstance(m.dropout, float)
    ]
    if not layers and not rates:
        raise PtbenchError("this backbone has no dropout layers to set")
    for m in layers:
        m.p = p
    for m in rates:
        m.dropout = p
    return len(layers) + len(rates)
