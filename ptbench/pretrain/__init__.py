"""``ptbench pretrain``: make pretrained weights offline, so every modality has a pretrained-vs-
random comparison and *which pre-training* becomes something a suite can compare."""

from ptbench.registry import Registry

OBJECTIVES = Registry(
    "objective",
    modules=("ptbench.pretrain.objectives",),
    # the backbone modalities it pre-trains (suite checks, pretrain); ``causal``: only for
    # backbones whose state at a position sees no later token
    meta_keys=("modalities", "causal"),
)


def objective_problem(objective: str, backbone: str) -> str | None:
    """Why ``objective`` cannot pre-train ``backbone`` (one line), or None. Shared by suite
    validation and ``ptbench pretrain``."""
    from ptbench.backbones import BACKBONES

    entry, meta = BACKBONES.get(backbone), OBJECTIVES.get(objective).meta
    modality = entry.meta["modality"]
    if modality not in meta["modalities"]:
        return (
            f"objective '{objective}' does not apply to the {modality} backbone '{backbone}' "
            f"(it needs {', '.join(meta['modalities'])})"
        )
    if meta.get("causal") and not entry.meta.get("causal"):
        # a bidirectional state at position t has read token t+1: "predicting" it is copying
        return (
            f"objective '{objective}' predicts each next token and needs a causal backbone "
            f"(GPT family); '{backbone}' reads both directions — use mlm"
        )
    return None


__all__ = ["OBJECTIVES", "objective_problem"]
