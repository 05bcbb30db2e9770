"""A backbone's fingerprint: what its features depend on beyond the weights' name and file hash.

Feature caches were keyed on ``name|source|sha256-or-ref`` (+ the seed for random init), so after
a fix to a backbone's code or initialisation the old features kept being served — Resemblyzer's
collapsed random-init embeddings among them. The fingerprint adds:

- the code: every module of ``ptbench.backbones`` (``models/`` too) plus the factory's own module
  (a plugin's), and the versions of the libraries that build and run the nets. Coarse on purpose: a change to
  any backbone code recomputes every backbone's features once, never serves stale ones;
- the state: a digest of the built state_dict (random init or loaded weights), so a changed init
  or size, or hub weights replaced under the same name, change the key.
"""

from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

LIBRARIES = ("torch", "torchvision", "torchaudio", "timm", "transformers")
SAMPLES = 4096  # elements hashed per tensor: spread over the whole tensor, all of a small one


@lru_cache(maxsize=1)
def library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for lib in LIBRARIES:
        try:
            out.append(f"{lib}={version(lib)}")
        except PackageNotFoundError:
            out.append(f"{lib}=-")
    return ",".join(out)


ROOT = Path(__file__).parent


def _source(fn: Any) -> str | None:
    try:
        return inspect.getsourcefile(fn)
    except TypeError:  # a built-in or C-defined factory: no source to read
        return None


def code_files(fn: Any) -> list[Path]:
    """The backbone package's source files, subpackages included, and the factory's module."""
    files = sorted(ROOT.rglob("*.py"))
    own = _source(fn)
    if own and Path(own).resolve() not in {f.resolve() for f in files}:
        files.append(Path(own))
    return files


def code_fingerprint(fn: Any) -> str:
    """Hash of :func:`code_files`, read from disk on every call (~60 kB: a fraction of a
    millisecond), so an edit is never missed."""
    files = code_files(fn)
    h = hashlib.sha256(library_versions().encode())
    for f in files:
        h.update((f.relative_to(ROOT).as_posix() if f.is_relative_to(ROOT) else f.name).encode())
        h.update(f.read_bytes())
    if _source(fn) is None:
        h.update(getattr(getattr(fn, "__code__", None), "co_code", repr(fn).encode()))
    return h.hexdigest()[:16]


def _tensor_sample(t: torch.Tensor) -> bytes:
    flat = t.detach().reshape(-1)
    step = max(1, flat.numel() // SAMPLES)
    return flat[::step][:SAMPLES].contiguous().cpu().view(torch.uint8).numpy().tobytes()


def state_digest(module: nn.Module) -> str:
    """Names, shapes, dtypes and up to ``SAMPLES`` evenly spaced values of every tensor in the
    state_dict: any re-initialisation moves every value, so a strided sample sees it."""
    h, seen = hashlib.sha256(), set()
    for name, t in module.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        shared = (t.untyped_storage().data_ptr(), t.storage_offset(), t.shape) if not t.is_meta else None
        if t.is_meta or not t.numel() or shared in seen:  # a module registered twice: hashed once
            continue
        seen.add(shared)
        h.update(_tensor_sample(t))
    return h.hexdigest()[:16]


def fingerprint(fn: Any, backbone: nn.Module) -> str:
    return f"code={code_fingerprint(fn)}|state={state_digest(backbone)}"
