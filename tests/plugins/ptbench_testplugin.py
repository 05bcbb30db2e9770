"""A user plugin for tests: a backbone whose loss turns NaN, and a text-modality stub task list.

Loaded through PTBENCH_PLUGINS, exactly as a user's own registrations would be.
"""

from __future__ import annotations

import torch

from ptbench.backbones import BACKBONES
from ptbench.backbones.images import timm_backbone


class _NaN(torch.nn.Module):
    def forward(self, x):
        return x * float("nan")


@BACKBONES.register("nan_net", modality="image", weights=("none",), params={"input_size": ""})
def nan_net(spec):
    """test_efficientnet whose features are NaN: every trial on it must FAIL, not crash."""
    bb = timm_backbone(spec, "test_efficientnet", default_size=16)
    bb.net = torch.nn.Sequential(bb.net, _NaN())
    return bb


@BACKBONES.register("toy_text_encoder", modality="text", weights=("none",))
def toy_text_encoder(spec):
    """Only its modality matters: pairing it with an image task must be rejected at validate."""
    raise RuntimeError("never built in tests")
