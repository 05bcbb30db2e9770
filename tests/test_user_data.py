"""Users' own data in every format, regimes, decode caching, and bad input (files the tests make)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from ptbench.errors import PtbenchError
from ptbench.tasks import TASKS
from ptbench.tasks.base import apply_regime


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path / "cache"))


def build(name, **params):
    return TASKS.get(name).fn(params)


def make_images(root, classes=("cat", "dog", "eel"), per=12, split_dirs=None):
    rng = np.random.default_rng(0)
    for split in split_dirs or [None]:
        for ci, c in enumerate(classes):
            d = root / split / c if split else root / c
            d.mkdir(parents=True)
            for i in range(per):
                arr = np.full((10, 14, 3), 40 + 80 * ci, np.uint8) + rng.integers(
                    0, 20, (10, 14, 3), dtype=np.uint8
                )
                Image.fromarray(arr).save(d / f"{i}.png")
    return root


def test_image_folder_with_stratified_splits(tmp_path):
    root = make_images(tmp_path / "imgs")
    d = build("image_folder", path=str(root), size=16, val_size=6, test_size=6)
    assert d.classes == ["cat", "dog", "eel"] and d.modality == "image"
    assert d.train.x.shape == (24, 3, 16, 16) and d.train.x.dtype == torch.uint8
    assert torch.bincount(d.val.y).tolist() == [2, 2, 2]
    # the class is visible in the pixels: decoding kept the content
    assert d.train.x[d.train.y == 2].float().mean() > d.train.x[d.train.y == 0].float().mean() + 100


def test_image_folder_given_splits_and_decode_cache(tmp_path):
    root = make_images(tmp_path / "imgs", per=4, split_dirs=["train", "val", "test"])
    d = build("image_folder", path=str(root), size=8, channels=1)
    assert (len(d.train), len(d.val), len(d.test)) == (12, 12, 12)
    assert d.train.x.shape[1] == 1
    cached = list((tmp_path / "cache" / "decoded").glob("image-*.npz"))
    assert len(cached) == 1
    again = build("image_folder", path=str(root), size=8, channels=1)
    assert again.split_hash == d.split_hash
    # changing the data changes the hash
    Image.fromarray(np.zeros((10, 14, 3), np.uint8)).save(root / "train" / "cat" / "0.png")
    assert build("image_folder", path=str(root), size=8, channels=1).split_hash != d.split_hash


def test_split_folders_by_their_usual_names(tmp_path):
    """``training/`` + ``testing/`` were read as two classes (every label the image's split), and
    a ``valid/`` folder beside ``train/`` was ignored (val carved out of train instead)."""
    root = make_images(tmp_path / "a", per=4, split_dirs=["training", "testing"])
    d = build("image_folder", path=str(root), size=8, val_size=3)
    assert d.classes == ["cat", "dog", "eel"] and (len(d.train), len(d.val), len(d.test)) == (9, 3, 12)
    root = make_images(tmp_path / "b", per=4, split_dirs=["train", "valid", "test"])
    d = build("image_folder", path=str(root), size=8)
    assert d.classes == ["cat", "dog", "eel"] and (len(d.train), len(d.val), len(d.test)) == (12, 12, 12)
    root = make_images(tmp_path / "d", per=2, split_dirs=["train", "val", "validation"])
    with pytest.raises(PtbenchError, match="both val/ and validation/ look like the val split"):
        build("image_folder", path=str(root), size=8)
    # without a train folder, folders named like splits are classes (valid/ and invalid/ images)
    root = make_images(tmp_path / "e", classes=("invalid", "valid"), per=6)
    assert build("image_folder", path=str(root), size=8, val_size=2, test_size=2).classes == [
        "invalid",
        "valid",
    ]


def test_a_one_class_corpus_still_loads_for_pre_training(tmp_path):
    """mlm, clm and contrastive pre-training read no labels: one class is fine there (only a
    suite's classification task needs two)."""
    (tmp_path / "c.csv").write_text("text,label\n" + "".join(f"line {i},x\n" for i in range(40)))
    d = build("text_file", path=str(tmp_path / "c.csv"), val_size=5, test_size=5)
    assert d.classes == ["x"] and len(d.train) == 30


def test_corrupt_image_names_the_file_or_is_skipped_and_counted(tmp_path):
    root = make_images(tmp_path / "imgs")
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(PtbenchError, match=f"{bad}: cannot decode image"):
        build("image_folder", path=str(root), size=8)
    d = build("image_folder", path=str(root), size=8, skip_bad=True, val_size=6, test_size=6)
    assert d.notes == {"skipped": 1} and len(d.train) + len(d.val) + len(d.test) == 36


def test_skipped_files_are_left_out_before_the_splits_and_the_regime(tmp_path):
    """Bad files were dropped from splits already fixed: ``shots: 2`` gave a class fewer than 2
    training examples and val or test could lose a class. Now the splits are planned without them."""
    root = make_images(tmp_path / "imgs", classes=("cat", "dog"), per=10)
    for i in range(5):
        (root / "cat" / f"{i}.png").write_bytes(b"garbage")
    d = build("image_folder", path=str(root), size=8, skip_bad=True, shots=2, val_size=4, test_size=4)
    counts = [torch.bincount(s.y, minlength=2).tolist() for s in (d.train, d.val, d.test)]
    assert counts[0] == [2, 2] and d.notes["skipped"] >= 1
    assert counts[1:] == [[1, 3], [1, 3]]  # stratified over the 5 good cats and 10 dogs
    with pytest.raises(PtbenchError, match="shots=6: class 0 has only 3 training examples"):
        build("image_folder", path=str(root), size=8, skip_bad=True, shots=6, val_size=4, test_size=4)


def test_empty_class_and_missing_path(tmp_path):
    root = make_images(tmp_path / "imgs")
    (root / "fox").mkdir()
    with pytest.raises(PtbenchError, match="fox: class folder has no"):
        build("image_folder", path=str(root))
    with pytest.raises(PtbenchError, match="does not exist"):
        build("image_folder", path=str(tmp_path / "nope"))


def test_text_csv_and_jsonl_with_split_column(tmp_path):
    rows = [
        {
            "text": f"good {i}" if i % 2 else f"bad {i}",
            "label": "pos" if i % 2 else "neg",
            "split": ["train", "train", "val", "test"][i % 4],
        }
        for i in range(40)
    ]
    csv_path = tmp_path / "d.csv"
    csv_path.write_text(
        "text,label,split\n" + "".join(f"{r['text']},{r['label']},{r['split']}\n" for r in rows)
    )
    jl = tmp_path / "d.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for path in (csv_path, jl):
        d = build("text_file", path=str(path), split_column="split")
        assert d.classes == ["neg", "pos"] and (len(d.train), len(d.val), len(d.test)) == (20, 10, 10)
        assert d.train.x[0].startswith(("good", "bad"))


def test_no_copy_of_a_val_or_test_text_trains(tmp_path):
    """A CSV's train split holds copies of a test and a val text (a scraped corpus often does):
    they would turn those held-out examples into memorised ones. The held-out splits stay as
    given; each train copy is replaced by an unused train row of its class when a train_size
    leaves some, else dropped — and counted, for every run to log."""
    rows = [(f"text {i}", ["neg", "pos"][i % 2], "train") for i in range(30)]
    rows += [("text 4", "neg", "test"), ("text 7", "pos", "val")]  # copies of train rows 4 and 7
    rows += [(f"held {i}", ["neg", "pos"][i % 2], ["val", "test"][i % 2]) for i in range(10)]
    path = tmp_path / "d.csv"
    path.write_text("text,label,split\n" + "".join(f"{t},{c},{s}\n" for t, c, s in rows))
    whole = build("text_file", path=str(path), split_column="split")
    assert whole.notes["train_copies"] == 2 and len(whole.train) == 28
    assert "text 4" in whole.test.x and "text 7" in whole.val.x  # held-out splits as given
    assert not set(whole.train.x) & (set(whole.val.x) | set(whole.test.x))
    # split_seed 2 draws both copies into a train_size of 20: each is replaced by an unused row
    sub = build("text_file", path=str(path), split_column="split", train_size=20, split_seed=2)
    assert sub.notes["train_copies"] == 2 and len(sub.train) == 20
    assert not set(sub.train.x) & (set(sub.val.x) | set(sub.test.x))
    assert torch.bincount(sub.train.y).tolist() == [10, 10]
    only = tmp_path / "copies.csv"  # nothing left to train on: one line, not a trainer's crash
    only.write_text(
        "text,label,split\na,neg,train\nb,pos,train\na,neg,test\nb,pos,test\na,neg,val\nb,pos,val\n"
    )
    with pytest.raises(PtbenchError, match="every train example is a copy of a val or test input"):
        build("text_file", path=str(only), split_column="split")


def test_text_files_saved_with_a_bom_and_split_names_like_the_folders(tmp_path):
    """Excel's UTF-8 CSV starts with a BOM, which became part of the first header ('\\ufefftext'
    missing), and a split column saying validation or dev was refused though folders take them."""
    rows = [
        (
            f"good {i}" if i % 2 else f"bad {i}",
            "pos" if i % 2 else "neg",
            ["train", "Train", "validation", "dev", "test"][i % 5],
        )
        for i in range(40)
    ]
    csv_path = tmp_path / "d.csv"
    csv_path.write_text(
        "text,label,split\n" + "".join(f"{t},{lab},{s}\n" for t, lab, s in rows), encoding="utf-8-sig"
    )
    jl = tmp_path / "d.jsonl"
    jl.write_text(
        "".join(json.dumps({"text": t, "label": lab, "split": s}) + "\n" for t, lab, s in rows),
        encoding="utf-8-sig",
    )
    for path in (csv_path, jl):
        d = build("text_file", path=str(path), split_column="split")
        assert d.classes == ["neg", "pos"] and (len(d.train), len(d.val), len(d.test)) == (16, 16, 8)
    odd = tmp_path / "odd.csv"
    odd.write_text("text,label,split\n" + "".join(f"{t},{lab},holdout\n" for t, lab, _ in rows))
    with pytest.raises(PtbenchError, match=f"{odd}:2: split 'holdout' is not train, val or test"):
        build("text_file", path=str(odd), split_column="split")


def test_text_bad_rows_name_file_and_line(tmp_path):
    tail = "".join(f"t{i},{'pos' if i % 2 else 'neg'}\n" for i in range(20))
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\nfine,pos\n,neg\n" + tail)
    with pytest.raises(PtbenchError, match=f"{empty}:3: needs non-empty 'text' and 'label'"):
        build("text_file", path=str(empty))
    odd = tmp_path / "odd.csv"
    odd.write_text("text,label\nfine,pos\nok,neg\nhm,maybe\n" + tail)
    with pytest.raises(PtbenchError, match=f"{odd}:4: label 'maybe' is not one of the declared"):
        build("text_file", path=str(odd), classes=["neg", "pos"])
    d = build("text_file", path=str(odd), classes=["neg", "pos"], skip_bad=True, val_size=4, test_size=4)
    assert d.notes == {"skipped": 1} and len(d.train) + len(d.val) + len(d.test) == 22
    j = tmp_path / "d.jsonl"
    j.write_text('{"text": "a", "label": "x"}\n{broken\n')
    with pytest.raises(PtbenchError, match=f"{j}:2: not valid JSON"):
        build("text_file", path=str(j))
    missing = tmp_path / "m.csv"
    missing.write_text("sentence,label\nhi,x\n")
    with pytest.raises(PtbenchError, match=f"{missing}:1: missing column"):
        build("text_file", path=str(missing))


def test_audio_folder_reads_resamples_and_pads(tmp_path):
    root = tmp_path / "clips"
    for ci, c in enumerate(["hi", "lo"]):
        (root / c).mkdir(parents=True)
        for i in range(10):
            sr = 8000 if i % 2 else 22050
            t = np.arange(int(sr * 0.5)) / sr
            # each clip its own: a copy of a val or test clip no longer trains (tasks/rows.py)
            wav = (0.5 + 0.01 * i) * np.sin(2 * np.pi * (800 if ci == 0 else 200) * t)
            sf.write(root / c / f"{i}.{'flac' if i % 3 == 0 else 'wav'}", wav.astype(np.float32), sr)
    d = build("audio_folder", path=str(root), val_size=4, test_size=4)
    assert d.modality == "audio" and d.train.x.shape == (12, 16000)
    assert d.train.x.abs().max() > 0.4 and d.train.x[:, :2000].abs().max() == 0  # centred padding
    (root / "hi" / "bad.wav").write_bytes(b"RIFF0000WAVE")
    with pytest.raises(PtbenchError, match="bad.wav: cannot decode audio"):
        build("audio_folder", path=str(root), val_size=4, test_size=4)


def test_regimes_few_shot_fraction_and_imbalance():
    y = np.repeat(np.arange(4), 50)
    train = np.arange(200)
    shots = apply_regime(y, train, {"shots": 5})
    assert np.bincount(y[shots]).tolist() == [5, 5, 5, 5]
    frac = apply_regime(y, train, {"label_fraction": 0.2})
    assert np.bincount(y[frac]).tolist() == [10, 10, 10, 10]
    lt = apply_regime(y, train, {"imbalance": 0.1})
    counts = np.bincount(y[lt]).tolist()
    assert counts[0] == 50 and counts[-1] == 5 and counts == sorted(counts, reverse=True)
    with pytest.raises(PtbenchError, match="shots=60: class 0 has only 50"):
        apply_regime(y, train, {"shots": 60})
    d = build("digits", shots=3)
    assert torch.bincount(d.train.y).tolist() == [3] * 10
    assert build("digits", shots=3).split_hash == d.split_hash != build("digits").split_hash


def test_missing_path_is_a_validate_error(tmp_path):
    from ptbench.suite import parse_suite

    with pytest.raises(PtbenchError) as err:
        parse_suite(
            {
                "name": "u",
                "axes": {
                    "backbones": ["test_efficientnet"],
                    "tasks": [{"name": "image_folder", "params": {"path": str(tmp_path / "nowhere")}}],
                },
            }
        )
    assert str(err.value) == f"axes.tasks[0].params.path: {tmp_path / 'nowhere'} does not exist"


def test_splits_are_saved_once_and_read_back(tmp_path):
    d = build("digits", val_size=100, test_size=200)
    saved = list((tmp_path / "cache" / "splits").glob("digits-*.json"))
    assert len(saved) == 1
    idx = json.loads(saved[0].read_text())
    assert len(idx["val"]) == 100 and len(idx["test"]) == 200
    assert build("digits", val_size=100, test_size=200).split_hash == d.split_hash


def test_check_data_finds_a_truncated_jpg_before_any_trial(tmp_path):
    """One line naming the file, no traceback; a good folder is no problem and fills the caches."""
    from ptbench.tasks import check_data

    root = make_images(tmp_path / "imgs", per=6)
    good = {"name": "image_folder", "params": {"path": str(root), "size": 8}}
    assert check_data([good, dict(good)]) == []
    assert len(list((tmp_path / "cache" / "decoded").glob("image-*.npz"))) == 1  # workers start warm
    bad = root / "dog" / "truncated.jpg"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(bad, quality=95)
    bad.write_bytes(bad.read_bytes()[:300])
    problems = check_data([good, good])
    assert len(problems) == 1
    assert problems[0].startswith(f"task 'image_folder': {bad}: cannot decode image")
    assert "\n" not in problems[0]


def test_check_data_names_file_and_line_of_a_csv_row_without_a_label(tmp_path):
    from ptbench.tasks import check_data

    path = tmp_path / "d.csv"
    rows = [f"text {i},{'pos' if i % 2 else 'neg'}" for i in range(20)]
    rows[6] = "text 6,"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    fine = tmp_path / "fine.csv"
    fine.write_text("text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(20)))
    specs = [{"name": "text_file", "params": {"path": str(p)}} for p in (path, fine)]
    assert check_data(specs) == [f"task 'text_file': {path}:8: needs non-empty 'text' and 'label'"]


def test_check_data_says_in_one_line_when_the_classes_cannot_be_split(tmp_path):
    """A class with one example, or a train_size below the number of classes, raised sklearn's
    ValueError past check_data: a traceback instead of a line naming the task and the param."""
    from ptbench.tasks import check_data

    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{'xyz'[i % 3]}\n" for i in range(30)) + "lone,w\n")
    lone = {"name": "text_file", "params": {"path": str(path)}}
    path2 = tmp_path / "three.csv"
    path2.write_text("text,label\n" + "".join(f"t{i},{'xyz'[i % 3]}\n" for i in range(30)))
    small = {
        "name": "text_file",
        "params": {"path": str(path2), "train_size": 2, "val_size": 3, "test_size": 3},
    }
    assert check_data([lone, small]) == [
        "task 'text_file': test_size: a stratified split of the whole data needs 2 examples of each class; "
        "class index 0 has 1",
        "task 'text_file': train_size=2 is below the 3 classes",
    ]


def test_sizes_near_all_of_a_split_are_drawn_per_class(tmp_path):
    """Keeping all but one or two rows of a split left sklearn fewer rows than classes to set
    aside, and it refused: val_size 149 of a given 151-row val split failed."""
    path = tmp_path / "d.csv"
    split = ["train"] * 30 + ["val"] * 12
    path.write_text("text,label,split\n" + "".join(f"t{i},{'xyz'[i % 3]},{s}\n" for i, s in enumerate(split)))
    d = build("text_file", path=str(path), split_column="split", val_size=11, test_size=4, train_size=25)
    assert (len(d.train), len(d.val), len(d.test)) == (25, 11, 4)
    assert sorted(torch.bincount(d.val.y).tolist()) == [3, 4, 4]
    assert (
        build(
            "text_file", path=str(path), split_column="split", val_size=11, test_size=4, train_size=25
        ).split_hash
        == d.split_hash
    )


def test_run_over_bad_data_stops_before_any_trial_with_one_line(tmp_path):
    """Through the real CLI: exit 2, one line naming the file, no traceback, no trial started."""
    import copy

    from conftest import TINY, ptbench, write_suite

    root = make_images(tmp_path / "imgs", per=6)
    bad = root / "dog" / "truncated.jpg"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(bad, quality=95)
    bad.write_bytes(bad.read_bytes()[:300])
    suite = copy.deepcopy(TINY)
    suite["axes"]["tasks"] = [{"name": "image_folder", "params": {"path": str(root), "size": 8}}]
    suite["axes"]["strategies"], suite["axes"]["regularizers"] = ["linear_probe"], ["none"]
    path = write_suite(tmp_path / "bad.yaml", suite)
    proc = ptbench("run", str(path), "--project-dir", str(tmp_path / "p"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "cannot decode image" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "trial" not in proc.stdout.split("\n", 1)[1]  # only the plan was printed: no job ran


@pytest.mark.parametrize(
    "make, params, message",
    [
        (
            lambda d: (d / "t.csv").write_text("text,label\n"),
            {"path": "t.csv"},
            "task 'text_file': no examples",
        ),
        (
            lambda d: (d / "t.csv").write_text("text,label\n" + "".join(f"text {i},a\n" for i in range(40))),
            {"path": "t.csv", "val_size": 5, "test_size": 5},
            "task 'text_file': one class (a); classification needs two or more",
        ),
        (
            lambda d: (d / "t.csv").write_bytes(b"text,label\ncaf\xe9,a\n"),
            {"path": "t.csv"},
            "t.csv:2: not UTF-8 (byte 0xe9)",
        ),
        (lambda d: (d / "t.csv").mkdir(), {"path": "t.csv"}, "t.csv is not a CSV or JSONL file"),
        (lambda d: None, {}, "task 'text_file': params.path is required"),
    ],
    ids=["header-only", "one-class", "latin-1", "a-folder", "no-path"],
)
def test_own_text_that_cannot_be_read_is_one_line_naming_the_file(
    tmp_path, monkeypatch, make, params, message
):
    """Each was a traceback (sklearn's, a UnicodeDecodeError, an IsADirectoryError), or said
    ``task 'text_file': task 'text_file' …``."""
    from ptbench.tasks import check_data

    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    (problem,) = check_data([{"name": "text_file", "params": params}])
    assert message in problem and problem.count("task 'text_file'") == 1
    (tmp_path / "img.png").write_bytes(b"")
    (problem,) = check_data([{"name": "image_folder", "params": {"path": "img.png"}}])
    assert problem == "task 'image_folder': path img.png is not a folder"
