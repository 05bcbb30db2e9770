"""Tasks: datasets with fixed, hashed splits (train / val / test / shifted), a metric, a modality."""

from ptbench.registry import Registry

TASKS = Registry(
    "task",
    modules=(
        "ptbench.tasks.images",
        "ptbench.tasks.text",
        "ptbench.tasks.audio",
        "ptbench.tasks.fractals",
        "ptbench.tasks.user",
        "ptbench.tasks.local",
    ),
)

__all__ = ["TASKS"]
