"""Regularizers: what is added to training, stackable; each sets its part of the Recipe."""

from ptbench.registry import Registry

REGULARIZERS = Registry(
    "regularizer",
    # space: default search space; limits: the values each of its params may take (Param);
    # modalities: the inputs it is for; raw_inputs: needs the model
    # inputs, not cached features; backbone_param: the backbone param it sets; continuous: it
    # blends inputs, so a fine-tune's token ids cannot take it (suite checks)
    meta_keys=("space", "limits", "modalities", "raw_inputs", "backbone_param", "continuous"),
    modules=(
        "ptbench.regularizers.penalties",
        "ptbench.regularizers.dropout",
        "ptbench.regularizers.inputs",
        "ptbench.regularizers.training",
    ),
)

__all__ = ["REGULARIZERS"]
