"""The one interface every backbone presents, whatever library built it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Preprocess:
    """Input handling that belongs to the weights: size, channels, normalisation."""

    input_size: int
    in_chans: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or float images ``[B, C, H, W]`` → normalised float at the model's size."""
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = nn.functional.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        if x.shape[1] == 1 and self.in_chans == 3:
            x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        # channels-last, like the conv weights (see build_backbone): 1.3-1.9x faster on the CPU too
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def with_readout(blocks: list[nn.Module], *readout: nn.Module) -> list[nn.Module]:
    """``blocks`` with the small modules that read the last one out (a final norm, BERT's
    pooler, ELMo's scalar mix) joined to it: as blocks of their own, "train the last block"
    (partial_finetune, gradual_unfreeze's first step, llrd's top rate) trained only them —
    GPT-2's 256-parameter final norm, ELMo's three mixing weights."""
    return [*blocks[:-1], nn.ModuleList([blocks[-1], *readout])] if readout else blocks


@dataclass
class WeightsInfo:
    source: str = "none"
    ref: str = ""
    sha256: str = ""
    dropped: list[str] = field(default_factory=list)
    # the dropped classifier-head tensors, until build_backbone turns them into ``source_head``
    head: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    # why a classifier the weights carry cannot be the source head, where one can say
    head_note: str = ""


class Backbone(nn.Module):
    """Wraps a feature extractor: ``forward(batch) -> [B, num_features]``.

    Input handling has two stages, both belonging to the weights: ``encode`` turns a raw split
    (uint8 images, a list of strings, waveforms) into a tensor once (tokenize, log-mel …), and
    ``preprocess`` runs per batch (resize, normalise). Either may be ``None``.
    """

    def __init__(
        self,
        net: nn.Module,
        num_features: int,
        blocks: list[nn.Module],
        preprocess=None,
        modality: str = "image",
        encoder=None,
    ):
        super().__init__()
        self.net = net
        self.num_features = num_features
        self._blocks = blocks
        # Weights a checkpoint carries that the features never read (BERT's pooler under mean
        # pooling) belong to no block: frozen here, so no strategy trains, decays or counts them.
        read = {id(p) for p in self.read_parameters()}
        for p in net.parameters():
            if id(p) not in read:
                p.requires_grad_(False)
        self.preprocess = preprocess
        self.encoder = encoder
        self.modality = modality
        self.weights = WeightsInfo()
        self.weights_module = net  # whose state_dict a 'file' checkpoint holds
        self.lora_targets: tuple[str, ...] = ()  # module names LoRA adapts (from the registry)
        self.fingerprint = ""  # code + built state (build_backbone sets it; see fingerprint.py)
        # the classifier the weights were trained with, where they came with one (LEEP and NCE
        # read it; weights.SourceHead): plain tensors, never part of the module or an adapted model
        self.source_head = None
        # how features are read out where a param chooses it without changing the state (BERT's
        # pooler vs masked mean, GoogLeNet's input rescaling): part of preprocess_info, so
        # feature caches never mix the two
        self.readout: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def encode(self, raw: Any) -> torch.Tensor:
        return self.encoder(raw) if self.encoder is not None else raw

    def preprocess_info(self) -> dict[str, Any]:
        """Everything about input handling, for MLflow and for feature-cache keys."""
        info: dict[str, Any] = {"modality": self.modality}
        for stage in (self.encoder, self.preprocess):
            if stage is not None and hasattr(stage, "to_dict"):
                info.update(stage.to_dict())
        return info | self.readout

    def blocks(self) -> list[nn.Module]:
        """Modules in depth order (stem first, last stage last); together they hold every
        parameter the features read, and only those."""
        return self._blocks

    def read_parameters(self) -> list[nn.Parameter]:
        """The blocks' parameters, each once: the backbone's size as a candidate (rank, ``ptbench
        ls``, runs' ``total_params``), without weights the readout skips."""
        seen: dict[int, nn.Parameter] = {}
        for block in self._blocks:
            for p in block.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())
