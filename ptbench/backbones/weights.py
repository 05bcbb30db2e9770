"""Weight sources: none, package, hub, file. No pickle from a checkpoint is ever executed."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ptbench.errors import PtbenchError, first_line

HEAD_PREFIXES = ("classifier.", "fc.", "head.", "_fc.", "last_linear.", "head.fc.")


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


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """safetensors, or .pt/.pth through ``torch.load(weights_only=True)``; clear errors."""
    path = Path(path)
    if not path.is_file():
        raise PtbenchError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated, or a pickle that is not plain tensors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PtbenchError(f"weights file {path} cannot be read safely: {first[:200]}") from None
    for key in ("state_dict", "model_state", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PtbenchError(f"weights file {path} holds no state dict of tensors")
    return dict(state)


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
    dropped: list[str] = []
    if by_order:
        body = [k for k in src if not k.startswith(HEAD_PREFIXES)]
        dropped = [k for k in src if k.startswith(HEAD_PREFIXES)]
        if len(body) != len(tgt_keys):
            raise PtbenchError(f"{ref}: {len(body)} body tensors, model expects {len(tgt_keys)}")
        mapped = {}
        for sk, tk in zip(body, tgt_keys, strict=True):
            if src[sk].shape != target[tk].shape:
                raise PtbenchError(
                    f"{ref}: tensor '{sk}' {tuple(src[sk].shape)} does not fit "
                    f"'{tk}' {tuple(target[tk].shape)}"
                )
            mapped[tk] = src[sk]
        src = mapped
    else:
        for k in list(src):
            misfit = k not in target or src[k].shape != target[k].shape
            if misfit and k.startswith(HEAD_PREFIXES):
                dropped.append(k)
                del src[k]
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
    except Exception as err:
        raise PtbenchError(
            f"hub weights '{ref}' are not in the local cache and downloads are off "
            f"(set PTBENCH_ALLOW_DOWNLOAD=1 where a network is reachable): {first_line(err, 160)}"
        ) from None
    finally:
        constants.HF_HUB_OFFLINE = old_const
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
