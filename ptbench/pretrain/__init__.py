"""``ptbench pretrain``: make pretrained weights offline, so every modality has a pretrained-vs-
random comparison and *which pre-training* becomes something a suite can compare."""

from ptbench.registry import Registry

OBJECTIVES = Registry(
    "objective",
    modules=("ptbench.pretrain.objectives",),
    # the backbone modalities it pre-trains (suite checks, pretrain); ``causal``: only for
    # backbones whose state at a position sees no later token
    meta_keys=("modalities", "causal", "budget", "per_token"),
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


def recipe_problems(
    backbone: str,
    objective: str,
    task: str,
    backbone_params: dict,
    task_params: dict,
    given: set[str],
    lr: float = 1e-3,
) -> list[tuple[str, str]]:
    """(field, why) for each thing a pre-training recipe gets wrong beyond its objective: a task
    param the task does not take or a value it refuses (a typo trained on the defaults), a
    budget field its objective ignores (``steps`` under ``supervised`` re-made the same weights
    under another name), a learning rate that is not above 0, a pooler a token objective never
    trains. ``given``: the fields the user set. Shared by suite validation and ``ptbench
    pretrain``, which name the fields their own way."""
    import math

    from ptbench.params import params_problems
    from ptbench.tasks import TASKS

    known = TASKS.get(task).meta.get("params", {})
    out = [(f"task_params.{k}", why) for k, why in params_problems(task_params, known, "task", task)]
    meta = OBJECTIVES.get(objective).meta
    budget = meta.get("budget", "steps")  # the budget field it reads: steps, or epochs
    for ignored in {"steps", "epochs"} - {budget}:
        if ignored in given:
            out.append((ignored, f"objective '{objective}' trains for a number of {budget}, not {ignored}"))
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        out.append(("lr", f"must be a finite number above 0, got {lr}"))
    if meta.get("per_token") and backbone_params.get("pooling") == "pooler":  # the pooler stays as built
        out.append(
            (
                "params.pooling",
                f"objective '{objective}' trains per-token states, never {backbone}'s pooler: features "
                "read through it would read untrained weights (pre-train with pooling: mean)",
            )
        )
    return out


__all__ = ["OBJECTIVES", "objective_problem", "recipe_problems"]
