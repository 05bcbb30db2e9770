"""Formula-driven images in the spirit of FractalDB (Kataoka et al., 2020): each class is a
random iterated function system (IFS), each example a rendering of it with jittered parameters
and a random flip. Pre-training on them needs no real image at all.

No maintained package renders FractalDB offline, so the chaos game is written here (vectorised
over all examples at once with numpy).
"""

from __future__ import annotations

import numpy as np

from ptbench.params import Param
from ptbench.tasks import TASKS
from ptbench.tasks.base import SPLIT_PARAMS, TaskData, build_task

PARAMS = SPLIT_PARAMS | {
    "classes": Param(int, "number of IFS classes (default 50)", low=2),
    "per_class": Param(int, "renderings per class (default 40)", low=2),
    "size": Param(int, "image side in pixels (default 32)", low=4),
    "seed": Param(int, "seed of the IFS systems", low=0),
}


def _systems(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` contractive IFS, each 2–4 affine maps as rows [a b c d e f]."""
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 5))
        maps = rng.uniform(-1, 1, (k, 6))
        for m in maps:
            a = m[:4].reshape(2, 2)
            m[:4] *= 0.8 / max(np.linalg.norm(a, 2), 0.8)  # spectral norm ≤ 0.8
        out.append(maps)
    return out


def render(
    systems: list[np.ndarray], per_class: int, size: int, rng: np.random.Generator, points: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    n = len(systems) * per_class
    maps = np.stack([s[np.arange(4) % len(s)] for s in systems])  # pad each IFS to 4 maps
    nmaps = np.array([len(s) for s in systems])
    cls = np.repeat(np.arange(len(systems)), per_class)
    params = maps[cls] * (1 + 0.1 * rng.standard_normal((n, 4, 6)))  # per-example jitter
    xy = np.zeros((n, 2))
    pts = np.empty((points, n, 2))
    for t in range(points + 20):
        j = (rng.random(n) * nmaps[cls]).astype(int)
        p = params[np.arange(n), j]
        xy = np.stack(
            [
                p[:, 0] * xy[:, 0] + p[:, 1] * xy[:, 1] + p[:, 4],
                p[:, 2] * xy[:, 0] + p[:, 3] * xy[:, 1] + p[:, 5],
            ],
            1,
        )
        if t >= 20:
            pts[t - 20] = xy
    lo, hi = pts.min(0), pts.max(0)
    uv = ((pts - lo) / np.maximum(hi - lo, 1e-6) * (size - 1)).round().astype(int)
    img = np.zeros((n, size, size), np.uint8)
    idx = np.broadcast_to(np.arange(n), (points, n))
    img[idx, uv[..., 1], uv[..., 0]] = 255
    flip = rng.random(n) < 0.5
    img[flip] = img[flip, :, ::-1]
    return img[:, None], cls.astype(np.int64)


@TASKS.register(
    "fractals",
    modality="image",
    classes="`classes` (default 50)",
    params=PARAMS,
    source="generated: random iterated function systems (FractalDB-style)",
    sizes="classes × per_class (default 50 × 40), 32×32",
)
def fractals(params: dict) -> TaskData:
    """Which IFS drew this fractal: formula-driven pre-training data, no real images."""
    rng = np.random.default_rng(int(params.get("seed", 0)))
    k, per = int(params.get("classes", 50)), int(params.get("per_class", 40))
    x, y = render(_systems(rng, k), per, int(params.get("size", 32)), rng)
    p = {"val_size": k * 2, "test_size": k * 2} | {key: v for key, v in params.items() if key in SPLIT_PARAMS}
    return build_task("fractals", "image", [f"ifs{i}" for i in range(k)], x, y, p)
