"""hf_disk from a suite: its modality comes from params.modality, its own splits take the
suite's sizes, and a whole run goes through the real CLI to finished final runs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY, ptbench, write_suite

from ptbench.errors import PtbenchError
from ptbench.tasks import TASKS

datasets = pytest.importorskip("datasets")
CLASSES = ["red", "green", "blue"]


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PTBENCH_DATA_DIR", str(tmp_path / "cache"))


def save_images(path, sizes=None, test_labels=None) -> str:
    """A tiny image dataset with its own splits, saved as a user would (save_to_disk)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    parts = {}
    for split, n in (sizes or {"train": 30, "validation": 9, "test": 9}).items():
        labels = [i % 3 for i in range(n)]
        images = []
        for c in labels:
            px = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
            px[..., c] += 180  # the class is the dominant channel
            images.append(Image.fromarray(px))
        if split == "test" and test_labels is not None:
            labels = test_labels
        parts[split] = datasets.Dataset.from_dict({"image": images, "label": labels}, features=feats)
    datasets.DatasetDict(parts).save_to_disk(str(path))
    return str(path)


def build(**params):
    return TASKS.get("hf_disk").fn(params)


def test_hf_disk_images_keep_their_splits_and_take_the_suite_sizes(tmp_path):
    path = save_images(tmp_path / "ds")
    d = build(path=path, modality="image", size=16)
    assert d.modality == "image" and d.classes == CLASSES
    assert (len(d.train), len(d.val), len(d.test)) == (30, 9, 9) and d.train.x.shape[1:] == (3, 16, 16)
    assert int(d.train.x[0].float().mean((1, 2)).argmax()) == int(d.train.y[0])  # pixels kept
    small = build(path=path, modality="image", size=16, channels=1, train_size=12, test_size=6)
    assert (len(small.train), len(small.val), len(small.test)) == (12, 9, 6)
    assert np.bincount(small.train.y.numpy()).tolist() == [4, 4, 4] and small.train.x.shape[1] == 1
    with pytest.raises(PtbenchError, match="needs params.modality"):
        build(path=path)
    with pytest.raises(PtbenchError, match="params.size applies to image data, not text"):
        build(path=path, modality="text", size=16)


def test_an_unlabelled_test_split_is_an_error_or_skipped_and_counted(tmp_path):
    """The hub marks an unlabelled test split with -1 (GLUE); never a crash in a worker."""
    path = save_images(tmp_path / "ds", test_labels=[-1] * 9)
    with pytest.raises(PtbenchError, match=r"\[test\] row 0: label -1 is not a class"):
        build(path=path, modality="image", size=8)
    d = build(path=path, modality="image", size=8, skip_bad=True, test_size=6)
    assert d.notes == {"skipped": 9} and len(d.test) == 6 and len(d.train) == 24  # test carved from train


def test_validate_takes_the_modality_from_params(tmp_path):
    from ptbench.suite import parse_suite

    path = save_images(tmp_path / "ds", {"train": 6})

    def problems(task_params: dict) -> str:
        suite = {
            "name": "hf",
            "axes": {
                "backbones": ["test_efficientnet"],
                "tasks": [{"name": "hf_disk", "params": task_params}],
            },
        }
        try:
            parse_suite(suite)
        except PtbenchError as err:
            return str(err)
        return ""

    assert problems({"path": path, "modality": "image", "channels": 1}) == ""
    assert "axes.tasks[0].params.modality: task 'hf_disk' needs it (one of image, text, audio)" in problems(
        {"path": path}
    )
    assert "image backbone 'test_efficientnet' cannot run the text task 'hf_disk'" in problems(
        {"path": path, "modality": "text"}
    )


@pytest.mark.slow
def test_hf_disk_suite_runs_end_to_end_through_the_cli(tmp_path):
    from ptbench.tracking import Tracker, default_tracking_uri

    path = save_images(tmp_path / "ds")
    task = {"name": "hf_disk", "params": {"path": path, "modality": "image", "size": 16, "train_size": 15}}
    suite = write_suite(
        tmp_path / "hf.yaml",
        name="hf",
        axes=TINY["axes"] | {"tasks": [task], "strategies": ["linear_probe"], "regularizers": ["none"]},
        search=TINY["search"] | {"trials": 1, "space": {"epochs": 1, "batch_size": 8}},
        seeds=[0],
    )
    ptbench(
        "run", str(suite), "--project-dir", str(tmp_path / "proj"), "--no-progress", cwd=tmp_path, check=True
    )
    recs = Tracker(default_tracking_uri(tmp_path / "proj")).runs_records("hf")
    finals = [r for r in recs if r.get("tags.ptbench.kind") == "final"]
    assert len(finals) == 1 and finals[0]["status"] == "FINISHED"
    assert finals[0]["params.task.name"] == "hf_disk" and 0 <= finals[0]["metrics.test_accuracy"] <= 1
