"""Every size and regime parameter takes effect whatever the split source, or is refused clearly.

Split sources: one pool split stratified by ptbench, given split folders, a given split column,
and given train/test with val carved. Before, with given splits, train_size/val_size/test_size
were silently ignored (SST-2: train_size 2,000 trained on all 60,000 rows).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ptbench.errors import PtbenchError
from ptbench.tasks import TASKS

CLASSES = ("a", "b", "c")
GIVEN = {"train": 20, "val": 8, "test": 8}  # per class
SOURCES = ("pool", "folders", "column", "column_train_test")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path / "cache"))


def make_source(root, source: str) -> dict:
    """Tiny data of one split source; returns the task spec that reads it."""
    if source == "folders":
        rng = np.random.default_rng(0)
        for split, per in GIVEN.items():
            for ci, c in enumerate(CLASSES):
                (root / "imgs" / split / c).mkdir(parents=True)
                for i in range(per):
                    px = np.full((8, 8, 3), 60 * ci, np.uint8) + rng.integers(
                        0, 30, (8, 8, 3), dtype=np.uint8
                    )
                    Image.fromarray(px).save(root / "imgs" / split / c / f"{i}.png")
        return {"name": "image_folder", "params": {"path": str(root / "imgs"), "size": 8}}
    splits = {"pool": {"": 36}, "column": GIVEN, "column_train_test": {"train": 28, "test": 8}}[source]
    lines = ["text,label,split"]
    for split, per in splits.items():
        lines += [f"{c} {split} {i},{c},{split}" for c in CLASSES for i in range(per)]
    (root / "d.csv").write_text("\n".join(lines) + "\n")
    # the pool's val and test: 3 per class, so that what is left for train stays balanced too
    extra = {"val_size": 9, "test_size": 9} if source == "pool" else {"split_column": "split"}
    params = {"path": str(root / "d.csv")} | extra
    return {"name": "text_file", "params": params}


def build(spec: dict, **params):
    return TASKS.get(spec["name"]).fn(spec["params"] | params)


def counts(split) -> list[int]:
    return torch.bincount(split.y, minlength=len(CLASSES)).tolist()


def lt_profile(n_max: int, r: float) -> list[int]:
    """CIFAR-LT's exponential class sizes, as apply_regime documents them."""
    return [max(1, round(n_max * r ** (i / (len(CLASSES) - 1)))) for i in range(len(CLASSES))]


# param → (value, split it changes, expected per-class counts given the baseline's train counts)
CASES = {
    "train_size": (12, "train", lambda base: [4, 4, 4]),
    "val_size": (6, "val", lambda base: [2, 2, 2]),
    "test_size": (6, "test", lambda base: [2, 2, 2]),
    "shots": (3, "train", lambda base: [3, 3, 3]),
    "label_fraction": (0.5, "train", lambda base: [round(0.5 * n) for n in base]),
    "imbalance": (0.25, "train", lambda base: lt_profile(min(base), 0.25)),
}


@pytest.mark.parametrize("param", list(CASES))
@pytest.mark.parametrize("source", SOURCES)
def test_size_and_regime_params_take_effect_for_every_split_source(tmp_path, source, param):
    spec = make_source(tmp_path, source)
    value, split, expected = CASES[param]
    base = build(spec)
    d = build(spec, **{param: value})
    assert counts(getattr(d, split)) == expected(counts(base.train)), (source, param)
    if split == "train":  # val and test are left as they were
        assert (counts(d.val), counts(d.test)) == (counts(base.val), counts(base.test))
    assert build(spec, **{param: value}).split_hash == d.split_hash  # reproducible
    reseeded = build(spec, **{param: value}, split_seed=1)  # … from split_seed
    assert counts(getattr(reseeded, split)) == counts(getattr(d, split))
    assert reseeded.split_hash != d.split_hash


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "param,value,message",
    [
        ("train_size", 999, "train_size=999 but"),
        ("test_size", 999, "test_size=999"),
        ("shots", 99, "shots=99: class 0 has only"),
    ],
)
def test_a_size_the_data_cannot_give_is_an_error_naming_the_param(tmp_path, source, param, value, message):
    spec = make_source(tmp_path, source)
    with pytest.raises(PtbenchError, match=message):
        build(spec, **{param: value})


def test_only_the_kept_rows_are_decoded(tmp_path):
    """A train subsample of given folders decodes the subsample, not every file on disk."""
    spec = make_source(tmp_path, "folders")
    d = build(spec, train_size=6, val_size=3, test_size=3)
    assert (len(d.train), len(d.val), len(d.test)) == (6, 3, 3)
    (cache,) = (tmp_path / "cache" / "decoded").glob("image-*.npz")
    with np.load(cache) as z:
        assert len(z["x"]) == 12  # of 108 files


def test_validate_refuses_task_params_of_the_wrong_type_or_range(tmp_path):
    from ptbench.suite import parse_suite

    spec = make_source(tmp_path, "column")
    bad = {"train_size": "abc", "label_fraction": 0, "skip_bad": "yes", "imbalance": 1.5}
    with pytest.raises(PtbenchError) as err:
        parse_suite(
            {
                "name": "typed",
                "axes": {
                    "backbones": ["bert"],
                    "tasks": [{"name": "text_file", "params": spec["params"] | bad}],
                },
            }
        )
    lines = str(err.value).splitlines()
    for key in bad:
        assert any(line.startswith(f"axes.tasks[0].params.{key}") for line in lines), (key, lines)


def test_every_task_declares_typed_params():
    from ptbench.params import Param

    for entry in TASKS:
        if entry.fn.__module__.startswith("ptbench."):
            params = entry.meta["params"]
            untyped = [k for k, p in params.items() if not isinstance(p, Param)]
            assert not untyped, (entry.name, untyped)
    declared = TASKS.get("text_file").meta["params"]
    assert declared["train_size"].problem("abc") == "expected int, got str 'abc'"
    assert declared["label_fraction"].problem(0) == "0 must be above 0"
    assert declared["label_fraction"].problem(1) is None
    assert declared["skip_bad"].problem("yes") == "expected bool, got str 'yes'"
    assert TASKS.get("image_folder").meta["params"]["channels"].problem(2) == "2 is not one of 1, 3"
    assert "(0, 1]" in declared["imbalance"].describe()


def test_unreadable_rows_are_replaced_in_place_not_planned_around():
    """Planning again without each batch of bad rows drew mostly other rows: at 1 % bad files,
    ten times the decoding. A bad row is replaced by an unused one of its class, so the decoded
    rows are the plan plus one substitute per bad row met, and every size and class count holds."""
    from ptbench.tasks.rows import build_from_rows

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 670)
    broken = set(rng.choice(len(y), len(y) // 100, replace=False).tolist())  # 1 %
    decoded: list[int] = []

    def load(rows):
        decoded.extend(rows.tolist())
        ok = [i for i, r in enumerate(rows) if r not in broken]
        x = np.zeros((len(ok), 1, 2, 2), np.uint8)
        x[:, 0, 0, 0], x[:, 0, 0, 1] = rows[ok] % 256, rows[ok] // 256  # each row its own input
        return x, ok, len(rows) - len(ok)

    params = {"train_size": 2000, "val_size": 500, "test_size": 1000, "skip_bad": True}
    d = build_from_rows("many", "image", [str(c) for c in range(10)], y, params, load)
    assert (len(d.train), len(d.val), len(d.test)) == (2000, 500, 1000)
    assert [torch.bincount(s.y).tolist() for s in (d.val, d.test)] == [[50] * 10, [100] * 10]
    met = len(set(decoded) & broken)
    assert len(decoded) == len(set(decoded)) == 3500 + met and d.notes["skipped"] == met


def test_a_val_carved_from_given_train_data_keeps_every_class():
    """A val (or test) carved out of a given train split with fewer rows than classes was drawn
    from the first classes only; a whole pool refused it, and now so does a given split."""
    y = np.repeat(np.arange(10), 20)
    from ptbench.tasks.base import plan_splits

    given = {"train": np.arange(150), "test": np.arange(150, 200)}
    with pytest.raises(PtbenchError, match="val_size=3 is below the"):
        plan_splits("t", y, {"val_size": 3}, given)


def test_a_folder_image_that_is_also_a_test_image_does_not_train(tmp_path):
    """Only tasks read whole (build_task) dropped train copies of val/test inputs: an image
    folder holding one photo twice, once in train and once in test, trained on a test image."""
    spec = make_source(tmp_path, "folders")
    imgs = tmp_path / "imgs"
    (imgs / "test" / "a" / "0.png").write_bytes((imgs / "train" / "a" / "3.png").read_bytes())
    d = build(spec)
    held = {bytes(x.numpy().tobytes()) for s in (d.val, d.test) for x in s.x}
    assert not [x for x in d.train.x if bytes(x.numpy().tobytes()) in held]
    # every given train row is planned: no spare left, so the copy is dropped
    assert d.notes["train_copies"] == 1 and len(d.train) == 3 * GIVEN["train"] - 1


def test_sixteen_bit_and_rotated_photos_decode_as_they_look(tmp_path):
    """PIL's convert clips 16-bit images at 255: a microscopy PNG (0, 1000, 2000, …) decoded all
    white but its darkest pixels. A phone photo's EXIF orientation was ignored: decoded sideways."""
    from PIL import Image

    from ptbench.tasks.own_data import pil_array

    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode.startswith("I")
        out = pil_array(im, "L", 8)[0]
    assert len(np.unique(out)) == 64 and out.max() == 255 and out.min() == 0  # a ramp, not white
    wide = np.zeros((4, 8), np.uint8)
    wide[:, 4:] = 255  # left black, right white
    photo = Image.fromarray(wide)
    exif = photo.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    photo.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    with Image.open(tmp_path / "phone.jpg") as im:
        upright = pil_array(im, "L", 8)[0]
    assert upright[:3].mean() < 60 and upright[-3:].mean() > 200  # black on top once rotated
