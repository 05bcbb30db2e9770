"""Loading transformers checkpoints — saved folders and hub ids — so that every weight the
features read came from the checkpoint, a damaged file is named, and a sequence classifier's
head is kept for LEEP/NCE where the features are what it reads. Apart from ``text.py``, which
builds the backbones: these are the checks on what is loaded into them.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ptbench.errors import PtbenchError, first_line


def keeping_head(load, pooling: str, kept: dict):
    """Where the features are what a ``…ForSequenceClassification`` reads — GPT-2's last real
    token, BERT's pooler output — such a checkpoint's linear classifier (``score``,
    ``classifier``) over them is the source model's own: keep it in ``kept["head"]`` for
    LEEP/NCE and return the base model. Over masked-mean features it is not: ``kept["note"]``
    says so (never a silent drop). Any other checkpoint goes to ``load`` unchanged."""

    def go(ref: str) -> nn.Module:
        from transformers import AutoConfig, AutoModelForSequenceClassification

        if Path(ref).is_dir():  # a saved folder (a local hub id too), checked before it is read
            _check_folder(ref)
        try:
            archs = AutoConfig.from_pretrained(ref).architectures or []
        except (ValueError, OSError) as err:  # e.g. a config.json without its model_type
            if not Path(ref).is_dir():
                raise  # a hub id: the hub guard tells a cache miss from anything else
            raise PtbenchError(f"{Path(ref) / 'config.json'}: {first_line(err)}") from None
        if not any(a.endswith("ForSequenceClassification") for a in archs):
            return load(ref)
        if pooling == "mean":
            kept["note"] = (
                f"the {archs[0]} classifier reads the pooler's [CLS], not masked-mean features: "
                "set params.pooling: pooler to read the backbone as it does"
            )
            return load(ref)
        whole, loading = AutoModelForSequenceClassification.from_pretrained(ref, output_loading_info=True)
        _check_missing(ref, loading["missing_keys"], pooling)
        for name in ("score", "classifier"):
            layer = getattr(whole, name, None)
            if isinstance(layer, nn.Linear):
                kept["head"].update({f"{name}.{k}": v for k, v in layer.state_dict().items()})
        return whole.base_model

    return go


def keep_layers(model: nn.Module, n: int, name: str) -> int:
    """Drop every transformer layer after the first ``n`` (in place; none where there are
    ``n``), so a depth-truncated checkpoint is one more candidate to rank or fine-tune; its
    state, hence its feature-cache key, differs from the whole model's."""
    stack = model.encoder.layer if hasattr(model, "encoder") else model.h
    depth = len(stack)
    if n > depth:
        raise PtbenchError(f"backbone '{name}': params.layers is {n}, but its weights have {depth} layers")
    del stack[n:]
    model.config.num_hidden_layers = n
    return depth


def cut_loaded(model: nn.Module, n: int, name: str, info) -> None:
    """Cut a loaded model to ``n`` layers; a classifier head it came with read the last layer's
    features, not layer n's, so it is no longer the source model's and is not kept."""
    depth = keep_layers(model, n, name)
    if depth > n and info.head:
        info.head = {}
        info.head_note = (
            f"the classifier reads layer {depth}; cut to {n} layers, it would not give the "
            "source model's predictions"
        )


def _check_missing(ref: str, missing: list[str], pooling: str) -> None:
    """Every weight the features read came from the checkpoint: transformers only warns of
    missing ones (warnings ptbench silences) and starts them random — a BERT saved from a
    masked-LM head has no pooler, and ``pooling: pooler`` read a random one, a different one per
    seed, recorded as pretrained. Saved folders and hub ids alike."""
    read = [k for k in missing if pooling == "pooler" or not k.startswith("pooler.")]
    if read:
        where = "the folder" if Path(ref).is_dir() else "its checkpoint"
        raise PtbenchError(
            f"{ref}: {len(read)} weight(s) the model reads are not in {where} "
            f"({', '.join(read[:3])}{', …' if len(read) > 3 else ''}): they would start random"
        )


def _check_folder(path: str) -> None:
    """What transformers would fail on without naming the file: a folder that is no saved
    model (a raw "Unrecognized model"), a damaged safetensors file (a SafetensorError)."""
    from safetensors import safe_open

    if not (Path(path) / "config.json").is_file():
        raise PtbenchError(f"{path}: no config.json: not a folder transformers' save_pretrained wrote")
    for file in sorted(Path(path).glob("*.safetensors")):
        try:
            with safe_open(str(file), "pt"):  # the header, and that it covers the whole file
                pass
        except Exception as err:
            raise PtbenchError(f"{file} cannot be read: {first_line(err)}") from None


def load_dir(cls, path: str, pooling: str) -> nn.Module:
    """A saved model, all of whose weights the features read came from the folder."""
    try:
        model, info = cls.from_pretrained(path, output_loading_info=True)
    except (RuntimeError, ValueError, OSError) as err:  # shapes of another architecture
        raise PtbenchError(f"{path}: cannot be loaded as {cls.__name__}: {first_line(err)}") from None
    _check_missing(path, info["missing_keys"], pooling)
    return model


def load_hub(ref: str, pooling: str) -> nn.Module:
    """A hub model, checked as a saved folder is; load errors go to the hub guard, which tells
    an offline cache miss from anything else."""
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(ref, output_loading_info=True)
    _check_missing(ref, info["missing_keys"], pooling)
    return model
