"""Cached frozen-backbone features are keyed on the backbone's code and built state: a fix to a
backbone's code or initialisation recomputes its features instead of serving the old ones."""

from __future__ import annotations

import importlib.util

import torch
from test_random_init_features import audio_clips, relative_spread

from ptbench.backbones.build import build_backbone
from ptbench.backbones.fingerprint import code_fingerprint
from ptbench.backbones.models.speaker_lstm import SpeakerLSTM
from ptbench.train.features import FeatureCache


def _build(name: str, params: dict | None = None, seed: int = 0):
    torch.manual_seed(seed)
    return build_backbone({"name": name, "weights": "none", "params": params or {}}, None).eval()


def _cache(tmp_path, bb, name: str, seed: int = 0) -> FeatureCache:
    """A disk cache keyed as run_trial keys it: name | source | hash-or-ref | seed."""
    w = bb.weights
    return FeatureCache(tmp_path / "features", f"{name}|{w.source}|{w.sha256 or w.ref}|seed={seed}")


def _pytorch_default_init(self) -> None:
    """The init SpeakerLSTM had before the fix (PyTorch's default), which collapsed it."""
    self.lstm.reset_parameters()
    self.linear.reset_parameters()


def test_a_changed_init_misses_the_cache_instead_of_serving_old_features(tmp_path, monkeypatch):
    monkeypatch.setattr(SpeakerLSTM, "reset_parameters", _pytorch_default_init)
    old_bb = _build("resemblyzer")
    x = old_bb.encode(audio_clips()[:6])  # the mel, as a trial hands it to the cache
    old = _cache(tmp_path, old_bb, "resemblyzer").features(old_bb, x)
    monkeypatch.undo()  # the code as it is now

    new_bb = _build("resemblyzer")
    assert new_bb.fingerprint != old_bb.fingerprint  # same name, weights source and seed
    cache = _cache(tmp_path, new_bb, "resemblyzer")
    new = cache.features(new_bb, x)
    assert (cache.hits, cache.misses) == (0, 1)
    assert relative_spread(new) > 1e-3 > relative_spread(old)  # the collapsed features stay behind

    same = _build("resemblyzer")  # same code, init and seed: the cache still serves
    again = _cache(tmp_path, same, "resemblyzer")
    assert torch.equal(again.features(same, x), new)
    assert (again.hits, again.misses) == (1, 0)


def test_size_variants_do_not_share_cached_features(tmp_path):
    """Same name, source, seed and mel settings; different networks, so different keys."""
    small, full = _build("mel_cnn", {"size": "small"}), _build("mel_cnn", {"size": "full"})
    x = small.encode(audio_clips()[:2])
    assert _cache(tmp_path, small, "mel_cnn").key(small, x) != _cache(tmp_path, full, "mel_cnn").key(full, x)


def _import(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PLUGIN = """
from torch import nn

def make(spec):
    net = nn.Linear(4, 4)
    nn.init.{init}(net.weight)
    return net
"""


def test_an_edit_to_a_plugin_backbones_module_changes_its_code_fingerprint(tmp_path):
    path = tmp_path / "my_backbones.py"
    path.write_text(PLUGIN.format(init="orthogonal_"))
    before = code_fingerprint(_import(path).make)
    assert code_fingerprint(_import(path).make) == before  # stable while the code is

    path.write_text(PLUGIN.format(init="xavier_uniform_"))  # a changed init in the plugin
    assert code_fingerprint(_import(path).make) != before


def test_the_code_fingerprint_reads_the_backbone_models_subpackage():
    """Model definitions live in ptbench/backbones/models/: an edit there must change the key."""
    from ptbench.backbones import BACKBONES
    from ptbench.backbones.fingerprint import code_files

    names = {f.name for f in code_files(BACKBONES.get("resemblyzer").fn)}
    assert {"speaker_lstm.py", "wavenet.py", "elmo.py", "mel_cnn.py", "audio.py"} <= names
