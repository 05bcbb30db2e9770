"""Public datasets read from local files, never downloaded: a torchvision root, Debian's
Fashion-MNIST, the IDX reader, Speech Commands with its split lists, and Hugging Face datasets
saved to disk (each split's own label names)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import soundfile as sf
from conftest import needs_task

from ptbench.errors import PtbenchError
from ptbench.tasks import TASKS


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path / "cache"))


def build(name, **params):
    return TASKS.get(name).fn(params)


def test_torchvision_dataset_from_a_local_root(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def idx(name, arr):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(n.to_bytes(4, "big") for n in arr.shape)
        (raw / name).write_bytes(header + arr.astype(np.uint8).tobytes())

    idx("train-images-idx3-ubyte", rng.integers(0, 255, (60, 28, 28)))
    idx("train-labels-idx1-ubyte", np.arange(60) % 10)
    idx("t10k-images-idx3-ubyte", rng.integers(0, 255, (20, 28, 28)))
    idx("t10k-labels-idx1-ubyte", np.arange(20) % 10)
    d = build("torchvision", dataset="FashionMNIST", root=str(tmp_path), val_size=10)
    assert (len(d.train), len(d.val), len(d.test)) == (50, 10, 20)
    assert d.train.x.shape[1:] == (1, 28, 28)
    with pytest.raises(PtbenchError, match="CIFAR10 not found under"):
        build("torchvision", dataset="CIFAR10", root=str(tmp_path))


@needs_task("fashion_mnist")
def test_fashion_mnist_from_debian():
    d = build("fashion_mnist", train_size=500, test_size=200)
    assert (len(d.train), len(d.val), len(d.test)) == (500, 1000, 200)
    assert d.classes[0] == "t-shirt" and d.train.x.shape[1:] == (1, 28, 28)


def test_gzip_idx_reader(tmp_path):
    from ptbench.tasks.standard import read_idx

    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x.gz"
    with gzip.open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in arr.shape) + arr.tobytes())
    assert np.array_equal(read_idx(p), arr)


def test_speech_commands_from_a_local_root_with_its_split_lists(tmp_path):
    base = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    rng = np.random.default_rng(0)
    for word in ("yes", "no", "_background_noise_"):
        (base / word).mkdir(parents=True)
        for i in range(10):
            wav = (0.1 * rng.standard_normal(12000)).astype(np.float32)
            sf.write(base / word / f"s{i}_nohash_0.wav", wav, 16000)
    (base / "validation_list.txt").write_text("yes/s0_nohash_0.wav\nno/s0_nohash_0.wav\n")
    (base / "testing_list.txt").write_text("yes/s1_nohash_0.wav\nno/s1_nohash_0.wav\nno/s2_nohash_0.wav\n")
    d = build("speech_commands", root=str(tmp_path))
    assert d.classes == ["no", "yes"] and d.train.x.shape[1:] == (16000,)
    assert (len(d.train), len(d.val), len(d.test)) == (15, 2, 3)
    with pytest.raises(PtbenchError, match="no folder for class"):
        build("speech_commands", root=str(tmp_path), classes=["maybe"])


def test_hugging_face_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    rows = {
        "text": [f"{'great' if i % 2 else 'awful'} film {i}" for i in range(40)],
        "label": [i % 2 for i in range(40)],
    }
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({k: v[:24] for k, v in rows.items()}, features=feats),
            "validation": datasets.Dataset.from_dict({k: v[24:32] for k, v in rows.items()}, features=feats),
            "test": datasets.Dataset.from_dict({k: v[32:] for k, v in rows.items()}, features=feats),
        }
    )
    dd.save_to_disk(str(tmp_path / "ds"))
    d = build("hf_disk", path=str(tmp_path / "ds"), modality="text")
    assert d.classes == ["neg", "pos"] and (len(d.train), len(d.val), len(d.test)) == (24, 8, 8)
    assert d.train.x[1].startswith("great") and int(d.train.y[1]) == 1
    with pytest.raises(PtbenchError, match="no column 'sentence'"):
        build("hf_disk", path=str(tmp_path / "ds"), modality="text", input_column="sentence")


def test_hugging_face_splits_with_their_own_label_order_keep_their_labels(tmp_path):
    """Each split of a saved DatasetDict stores its own ClassLabel names: a test split saved as
    [pos, neg] was read through train's [neg, pos], so every test label flipped."""
    datasets = pytest.importorskip("datasets")

    def part(order, n):
        feats = datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=order)}
        )
        words = [("great" if i % 2 else "awful") for i in range(n)]
        labels = [order.index("pos" if w == "great" else "neg") for w in words]
        return datasets.Dataset.from_dict(
            {"text": [f"{w} film {i}" for i, w in enumerate(words)], "label": labels}, features=feats
        )

    datasets.DatasetDict({"train": part(["neg", "pos"], 40), "test": part(["pos", "neg"], 20)}).save_to_disk(
        str(tmp_path / "ds")
    )
    d = build("hf_disk", path=str(tmp_path / "ds"), modality="text", val_size=10)
    assert d.classes == ["neg", "pos"]
    for split in (d.train, d.val, d.test):
        assert [d.classes[int(v)] for v in split.y] == [
            "pos" if t.startswith("great") else "neg" for t in split.x
        ]
    meh = part(["neg", "pos"], 20).cast_column("label", datasets.ClassLabel(names=["neg", "meh"]))
    datasets.DatasetDict({"train": part(["neg", "pos"], 40), "test": meh}).save_to_disk(
        str(tmp_path / "other")
    )
    with pytest.raises(PtbenchError, match=r"\[test\]: label names \['meh'\] are not in the train split's"):
        build("hf_disk", path=str(tmp_path / "other"), modality="text")


def test_hugging_face_splits_checked_each_and_named_once(tmp_path):
    """A test split without the label column was a KeyError traceback (only the first split was
    checked); 'validation' beside 'valid' silently dropped one of them."""
    datasets = pytest.importorskip("datasets")
    rows = {"text": [f"film {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}
    part = datasets.Dataset.from_dict(rows)
    datasets.DatasetDict({"train": part, "test": part.remove_columns("label")}).save_to_disk(
        str(tmp_path / "nolabel")
    )
    with pytest.raises(PtbenchError, match=r"\[test\]: no column 'label'"):
        build("hf_disk", path=str(tmp_path / "nolabel"), modality="text")
    two = datasets.DatasetDict({"train": part, "validation": part, "valid": part})
    two.save_to_disk(str(tmp_path / "two"))
    with pytest.raises(PtbenchError, match="splits 'validation' and 'valid' are both val: keep one"):
        build("hf_disk", path=str(tmp_path / "two"), modality="text")


def test_a_class_only_in_test_and_a_very_long_text_in_a_csv(tmp_path):
    """A label seen only in rows marked test became a class the model never saw (0 shots under a
    few-shot regime, without a word); a text cell over 131,072 characters was a csv traceback."""
    lines = ["text,label,split"]
    lines += [f"good {i},pos,train" for i in range(6)] + [f"bad {i},neg,train" for i in range(6)]
    lines += ["good t,pos,test", "bad t,neg,test", "meh t,neutral,test", "good v,pos,val", "bad v,neg,val"]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(PtbenchError, match="class 'neutral' is in val or test but has no train example"):
        build("text_file", path=str(tmp_path / "d.csv"), split_column="split")
    long = "w " * 80_000  # 160,000 characters in one field
    (tmp_path / "long.csv").write_text("text,label\n" + "".join(f"{long}{i},{i % 2}\n" for i in range(20)))
    d = build("text_file", path=str(tmp_path / "long.csv"), val_size=4, test_size=4)
    assert len(d.train) == 12 and len(d.train.x[0]) > 131_072
