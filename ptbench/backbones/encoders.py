"""Encoder stages: a raw split (a list of strings, waveforms) → the model's input tensor, computed
once per split. Each travels with its backbone's weights and describes itself (``to_dict``) for
MLflow and the feature-cache key."""

from __future__ import annotations

import re
import zlib
from typing import Any

import torch

from ptbench.tasks.base import RATE


class HFTokenizerEncoder:
    """A Hugging Face tokenizer as the encoder stage: list of strings → padded id tensor."""

    def __init__(self, tokenizer, max_len: int, ref: str):
        self.tok, self.max_len, self.ref = tokenizer, max_len, ref
        self.vocab_size = len(tokenizer)
        self.mask_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else 1
        # what marks padding: the tokenizer's own pad (GPT-2's is its end-of-text token; its id 0
        # is "!", which a fixed 0 masked out of every text that has one)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # [CLS], [SEP] …: where a pooler reads, and what closes a text; augmentation keeps them
        unk = tokenizer.unk_token_id  # a word the vocabulary lacks: still a word
        self.special_ids = tuple(sorted(set(tokenizer.all_special_ids) - {self.pad_id, unk}))

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = self.tok(
            list(texts), padding="max_length", truncation=True, max_length=self.max_len, return_tensors="pt"
        )
        ids = out["input_ids"]
        ids[out["attention_mask"] == 0] = self.pad_id
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
        self.pad_id = 0

    def __call__(self, texts: list[str]) -> torch.Tensor:
        ids = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for i, text in enumerate(texts):
            words = self.WORD.findall(text.lower())[: self.max_len]
            for j, w in enumerate(words):
                ids[i, j] = 1 + zlib.crc32(w.encode()) % (self.buckets - 1)
        return ids

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": f"hashing-words-{self.buckets}", "max_len": self.max_len}


class MelEncoder:
    """Waveforms → (log-)mel spectrograms ``[N, n_mels, frames]`` (torchaudio.transforms)."""

    def __init__(
        self,
        n_mels: int = 40,
        log: bool = True,
        n_fft: int = 400,
        hop: int = 160,
        librosa_scale: bool = False,
    ):
        import torchaudio.transforms as T

        scale = {"norm": "slaney", "mel_scale": "slaney"} if librosa_scale else {}
        self.mel = T.MelSpectrogram(RATE, n_fft=n_fft, hop_length=hop, n_mels=n_mels, **scale)
        self.cfg = {"sample_rate": RATE, "n_mels": n_mels, "n_fft": n_fft, "hop": hop, "log": log}
        self.log = log

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:  # differentiable: attacks go through it
        out = torch.cat([self.mel(wav[i : i + 256].float()) for i in range(0, len(wav), 256)])
        return torch.log(out + 1e-6) if self.log else out

    def to_dict(self) -> dict[str, Any]:
        return dict(self.cfg)


class Waveform:
    """Encoder stage of waveform models: the 16 kHz samples as they are."""

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        return wav.float()

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": RATE, "input": "waveform"}
