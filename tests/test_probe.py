"""Issue #10: ptbench's linear probe reaches what scikit-learn's standard probe reaches on the same
features, whatever their scale; ``augment``'s prob is the chance that a given example is augmented,
in every modality."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY

from ptbench.backbones.build import build_backbone
from ptbench.evaluate.metrics import classification_metrics
from ptbench.regularizers import REGULARIZERS
from ptbench.regularizers.augment import build_augmenter
from ptbench.strategies import STRATEGIES
from ptbench.suite import parse_suite
from ptbench.suite.grid import expand
from ptbench.tasks.base import Split
from ptbench.train.features import FeatureCache
from ptbench.train.recipe import Recipe
from ptbench.train.trainer import fit, predict
from ptbench.trial import load_task

BB = {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}}
TASK = {"name": "digits", "params": {"train_size": 1000, "val_size": 397, "test_size": 400}}
SCALES = {
    "x1e-3": lambda f: f * 1e-3,
    "x1e+2": lambda f: f * 1e2,
    "unit-norm": lambda f: f / f.norm(dim=1)[:, None],
}


def _midpoint(spec):
    """A searched key at the middle of its default range (log-middle for log ranges)."""
    if not isinstance(spec, dict):
        return spec
    if spec["type"] == "categorical":
        return spec["choices"][0]
    low, high = spec["low"], spec["high"]
    mid = (low * high) ** 0.5 if spec.get("log") else (low + high) / 2
    return round(mid) if spec["type"] == "int" else mid


def probe_params() -> dict:
    """The params a linear-probe trial gets from its cell's default search space (no overrides)."""
    d = copy.deepcopy(TINY)
    d["axes"] |= {
        "backbones": [BB],
        "tasks": [TASK],
        "strategies": ["linear_probe"],
        "regularizers": ["none"],
    }
    d["search"] = {"trials": 1}
    (cell,) = expand(parse_suite(d))
    return {k: _midpoint(v) for k, v in cell.space.items()}


@pytest.fixture(scope="module")
def probe_data():
    """Features of a tiny random-init EfficientNet on real digits (std ~1e-3), encoded the way a
    probe trial encodes them."""
    data = load_task(TASK)
    torch.manual_seed(0)
    bb = build_backbone(BB)
    ad = STRATEGIES.get("linear_probe").fn(bb, 10, Recipe(), {}, FeatureCache(None, "probe-test"))
    feats = {s: ad.encode(getattr(data, s).x) for s in ("train", "val", "test")}
    return bb, data, feats


def ptbench_probe(bb, feats: dict, data, params: dict):
    """One search trial of the probe: strategy + trainer, at the default space's values."""
    torch.manual_seed(0)
    recipe = Recipe.from_params(params)
    ad = STRATEGIES.get("linear_probe").fn(bb, 10, recipe, params, FeatureCache(None, "unused"))
    fit(
        ad.model,
        ad.param_groups,
        Split(feats["train"], data.train.y),
        Split(feats["val"], data.val.y),
        recipe,
        num_classes=10,
        transform=ad.transform,
    )
    return ad, predict(ad.model, feats["test"], ad.transform, "cpu")


def sklearn_probe(feats: dict, data) -> torch.Tensor:
    """The usual probe: a scaler, then a logistic regression fitted to convergence. (Plain
    LogisticRegression is itself scale-bound here: its default L2 leaves it at 0.10 on the
    1e-3-scaled features, 0.88 on the 1e+2-scaled ones.)"""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    with threadpool_limits(1):  # BLAS threads on a shared 2-core box cost 20x here
        model.fit(feats["train"].double().numpy(), data.train.y.numpy())
        return torch.from_numpy(model.decision_function(feats["test"].double().numpy())).float()


@pytest.mark.parametrize("scale", list(SCALES))
def test_probe_reaches_scikit_learns_logistic_regression_at_any_feature_scale(probe_data, scale):
    bb, data, feats = probe_data
    feats = {k: SCALES[scale](v) for k, v in feats.items()}
    _, logits = ptbench_probe(bb, feats, data, probe_params())
    ours = classification_metrics(logits, data.test.y, 10)
    standard = classification_metrics(sklearn_probe(feats, data), data.test.y, 10)
    print(
        f"\n{scale}: ptbench acc {ours['accuracy']:.3f} ece {ours['ece']:.3f} | "
        f"StandardScaler+LogisticRegression acc {standard['accuracy']:.3f} ece {standard['ece']:.3f}"
    )
    assert abs(ours["accuracy"] - standard["accuracy"]) <= 0.02
    assert ours["ece"] <= standard["ece"] + 0.03  # and as well calibrated


def test_probe_standardizes_with_train_statistics_on_every_path(probe_data):
    """Statistics come from the train split only, and the raw-input path that corruptions and
    attacks take (backbone → standardize → head) gives the cached path's logits."""
    bb, data, feats = probe_data
    ad, logits = ptbench_probe(bb, feats, data, probe_params())
    z = ad.model[0](feats["train"])  # the head's standardization layer
    assert torch.allclose(z.mean(0), torch.zeros(1), atol=1e-4)
    assert torch.allclose(z.std(0), torch.ones(1), atol=1e-2)
    assert not torch.allclose(ad.model[0](feats["val"]).mean(0), torch.zeros(1), atol=1e-2)
    ad.backbone, ad.features = bb, True  # as run_trial sets them
    assert torch.allclose(ad.predict_raw(data.test.x), logits, atol=1e-4)


def _augment(modality: str, x: torch.Tensor, prob: float, pad_id: int = 0) -> torch.Tensor:
    """The augmenter a trial builds from the ``augment`` regularizer's sampled params."""
    recipe = Recipe()
    REGULARIZERS.get("augment").fn(recipe, {"aug_magnitude": 9, "aug_prob": prob})
    aug = build_augmenter(modality, x[:1], recipe.augment, seed=0, pad_id=pad_id)
    torch.manual_seed(0)  # RandAugment and the SpecAugment masks draw from torch's global RNG
    return aug(x)


def _inputs(modality: str) -> torch.Tensor:
    if modality == "image":
        return load_task({"name": "digits", "params": {"train_size": 64}}).train.x[:64]
    t = torch.arange(16000) / 16000
    wav = torch.stack([torch.sin(2 * torch.pi * (200 + 40 * i) * t) for i in range(64)])
    if modality == "audio-waveform":
        return wav
    if modality == "audio-logmel":
        return build_backbone({"name": "mel_cnn"}).encode(wav)
    sentences = (
        "the quick brown fox jumps over the lazy dog",
        "a small cat sleeps in the warm afternoon sun while the dog barks",
        "rain fell on the quiet town all night long",
        "she read the letter twice before she answered it",
    )
    texts = [sentences[i % 4] for i in range(64)]
    return build_backbone({"name": "elmo_bilstm", "params": {"max_len": 20}}).encode(texts)


@pytest.mark.parametrize("modality", ["image", "audio-waveform", "audio-logmel", "text"])
def test_augment_prob_is_the_chance_an_example_is_augmented(modality):
    x = _inputs(modality)
    kind = modality.split("-")[0]

    def changed(prob: float) -> float:
        out = _augment(kind, x, prob)
        assert out.shape == x.shape and out.dtype == x.dtype
        return (out != x).flatten(1).any(1).float().mean().item()

    assert changed(0.0) == 0.0  # inputs pass through untouched
    assert changed(1.0) >= 0.8  # every one (a RandAugment policy can leave an 8×8 digit as it was)
    assert 0.2 <= changed(0.4) <= 0.6  # about that share of the batch, not all of it


def test_text_augmentation_never_drops_or_moves_cls_and_sep():
    """Token dropout and swaps treated [CLS] and [SEP] as words: a pooler then read a word or
    padding at position 0 in about a third of augmented examples (magnitude 12)."""
    bb = build_backbone({"name": "minilm_l6", "params": {"max_len": 16}})
    texts = ["the quick brown fox jumps over the lazy dog", "rain fell on the quiet town"] * 32
    ids = bb.encode(texts)
    cls, sep = bb.encoder.tok.cls_token_id, bb.encoder.tok.sep_token_id
    aug = build_augmenter(
        "text", ids[:1], {"magnitude": 12, "prob": 1.0}, 0, bb.encoder.pad_id, bb.encoder.special_ids
    )
    out = aug(ids)
    assert not torch.equal(out, ids)  # it did augment
    assert (out[:, 0] == cls).all() and ((out == sep).sum(1) == 1).all()
    assert torch.equal(out == sep, ids == sep)  # [SEP] where it was


def test_a_two_word_text_still_gets_its_swap():
    """Counting [CLS] and [SEP] no more, a two-word text has two words to swap."""
    bb = build_backbone({"name": "minilm_l6", "params": {"max_len": 8}})
    ids = bb.encode(["hello world"] * 4)
    aug = build_augmenter(
        "text", ids[:1], {"magnitude": 3, "prob": 1.0}, 0, bb.encoder.pad_id, bb.encoder.special_ids
    )
    words = ids[0, 1:3].tolist()
    out = aug(ids)
    assert any(row[1:3].tolist() == words[::-1] for row in out)
