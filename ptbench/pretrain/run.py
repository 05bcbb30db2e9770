"""Run a pre-training, record it in MLflow, and register its weights under the project dir.

Weights land in ``<project_dir>/weights/<name>/`` (``weights.safetensors`` + ``meta.json``) and
are used in a suite as ``{name: …, weights: run, id: <name>}``. Asking again with the same
settings reuses them instead of training again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ptbench.backbones.build import WEIGHTS_FILE, build_backbone
from ptbench.errors import PtbenchError
from ptbench.files import NAME_RULE, atomic_path, is_folder_name, write_text_atomic
from ptbench.hashing import stable_hash
from ptbench.tasks import load_task, task_modality


@dataclass(frozen=True)
class PretrainSpec:
    backbone: str
    objective: str
    task: str
    backbone_params: dict[str, Any] = field(default_factory=dict)
    task_params: dict[str, Any] = field(default_factory=dict)
    steps: int = 200  # mlm / clm / contrastive
    epochs: int = 3  # supervised
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0

    @property
    def key(self) -> str:
        return stable_hash(asdict(self), 16)

    @property
    def default_name(self) -> str:
        return f"{self.backbone}-{self.objective}-{self.task}-{self.key[:8]}"


@dataclass
class PretrainResult:
    name: str
    path: Path
    meta: dict[str, Any]
    reused: bool


def pretrain(
    spec: PretrainSpec, project_dir: str | Path, tracking_uri: str | None = None, name: str | None = None
) -> PretrainResult:
    """Make the weights ``spec`` describes under ``<project_dir>/weights/<name>``, or reuse them."""
    objective = _checked_objective(spec)
    name = name or spec.default_name
    if not is_folder_name(name):
        raise PtbenchError(f"weights name '{name}' is not {NAME_RULE}")
    out = Path(project_dir).resolve() / "weights" / name
    reused = _reuse(spec, name, out)
    if reused is not None:
        return reused
    from filelock import FileLock

    # two makers of one name at once (two drivers' recipes, two `ptbench pretrain`) both trained,
    # and the later overwrote the weights the earlier's trials had already read: one makes them,
    # the other waits and reuses them (or is refused, if its settings differ)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / f".{name}.lock")):
        return _reuse(spec, name, out) or _make(spec, objective, project_dir, tracking_uri, name, out)


def _make(spec: PretrainSpec, objective, project_dir, tracking_uri, name: str, out: Path) -> PretrainResult:
    from ptbench.tracking import Tracker, default_tracking_uri

    tracker = Tracker(tracking_uri or default_tracking_uri(project_dir))
    tracker.check()
    exp = tracker.experiment("ptbench-pretrain", Path(project_dir) / "artifacts")
    run_id = tracker.start_run(exp, name, {"ptbench.kind": "pretrain", "ptbench.pretrain_key": spec.key})
    tracker.log_params(
        run_id, {k: json.dumps(v) if isinstance(v, dict) else v for k, v in asdict(spec).items()}
    )
    bb, data, curve, seconds = _train(spec, objective, tracker, run_id)
    meta = _save(spec, name, out, bb, data, curve, seconds, run_id)
    tracker.log_text(run_id, json.dumps(meta, indent=2), "meta.json")
    tracker.set_tags(run_id, {"ptbench.weights_sha256": meta["sha256"], "ptbench.weights_name": name})
    tracker.end(run_id, "FINISHED")
    return PretrainResult(name, out / WEIGHTS_FILE, meta, reused=False)


def spec_problems(spec: PretrainSpec, given: set[str]) -> list[tuple[str, str]]:
    """(field, why) for a recipe given on the command line: unknown names first (nothing else
    can be checked without them), then the backbone's params and ``recipe_problems``."""
    from ptbench.backbones import BACKBONES
    from ptbench.params import params_problems
    from ptbench.pretrain import OBJECTIVES, recipe_problems
    from ptbench.tasks import TASKS

    for what, registry, name in (
        ("backbone", BACKBONES, spec.backbone),
        ("objective", OBJECTIVES, spec.objective),
        ("task", TASKS, spec.task),
    ):
        if name not in registry:
            return [(what, registry.unknown(name))]
    known = BACKBONES.get(spec.backbone).meta.get("params", {})
    found = params_problems(spec.backbone_params, known, "backbone", spec.backbone)
    out = [(f"params.{k}", why) for k, why in found]
    return out + recipe_problems(
        spec.backbone, spec.objective, spec.task, spec.backbone_params, spec.task_params, given, spec.lr
    )


def _checked_objective(spec: PretrainSpec):
    """The spec's objective entry, once the objective, backbone and task fit one modality."""
    from ptbench.backbones import BACKBONES
    from ptbench.pretrain import OBJECTIVES, objective_problem

    objective, modality = OBJECTIVES.get(spec.objective), BACKBONES.get(spec.backbone).meta["modality"]
    problem = objective_problem(spec.objective, spec.backbone)
    if problem:
        raise PtbenchError(problem)
    source_modality = task_modality(spec.task, spec.task_params)
    if source_modality != modality:
        raise PtbenchError(
            f"task '{spec.task}' is {source_modality}, backbone '{spec.backbone}' is {modality}"
        )
    return objective


def _reuse(spec: PretrainSpec, name: str, out: Path) -> PretrainResult | None:
    """The weights already made under ``name`` with the same settings; an error if ``name`` was
    made with other settings (never overwritten: suites may have used them)."""
    meta_file = out / "meta.json"
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    if meta.get("key") != spec.key:
        raise PtbenchError(
            f"pretrained weights '{name}' already exist with other settings "
            f"({meta_file}); choose another --name"
        )
    if not (out / WEIGHTS_FILE).is_file():
        return None
    if meta.get("split_hash"):  # the same settings may now read other data (path, root, …)
        now = load_task({"name": spec.task, "params": spec.task_params}).split_hash
        if meta["split_hash"] != now:
            raise PtbenchError(
                f"pretrained weights '{name}' were made from other data (task '{spec.task}' split "
                f"hash {meta['split_hash'][:12]}, now {now[:12]}: its files changed); make them from "
                "the data as it is under another name (--name, or id in a suite): runs recorded "
                "with these keep their name"
            )
    return PretrainResult(name, out / WEIGHTS_FILE, meta, reused=True)


FREE_PARAMS = ("dropout", "drop_path_rate")  # regularize a fine-tune; neither shapes nor feeds the weights


def named_weights_problems(where: str, backbone: str, params: dict, meta: dict | None, ref: str) -> list[str]:
    """Weights named by ``id`` load into the suite's backbone as the suite builds it: another
    family (HuBERT's weights as wav2vec2) or other params (weights trained at 16 px read at
    32, a 1-layer cut read as the whole model) loaded silently or failed every trial. The
    params that build the model or feed it must be the ones the weights were made with."""
    if meta is None:
        return [
            f"{where}.id: weights '{ref}' have no meta.json (an interrupted pre-training?): make them again"
        ]
    made = meta.get("spec", {})
    if made.get("backbone") != backbone:
        return [f"{where}.name: weights '{ref}' were pre-trained for backbone '{made.get('backbone')}'"]
    want = {k: v for k, v in made.get("backbone_params", {}).items() if k not in FREE_PARAMS}
    have = {k: v for k, v in params.items() if k not in FREE_PARAMS}
    if want == have:
        return []
    differ = sorted(k for k in {*want, *have} if want.get(k, "∅") != have.get(k, "∅"))

    def shown(p: dict) -> str:
        return "{" + ", ".join(f"{k}: {p[k]}" for k in differ if k in p) + "}"

    return [
        f"{where}.params: weights '{ref}' were made with {shown(want)}, the suite gives {shown(have)}: "
        "give the suite exactly the params they were made with"
    ]


def _train(spec: PretrainSpec, objective, tracker, run_id: str):
    """Build a randomly initialised backbone and train it with the objective, logging the loss
    (and perplexity for language models); a failure marks the MLflow run FAILED and re-raises."""
    import torch

    torch.manual_seed(spec.seed)
    bb = build_backbone({"name": spec.backbone, "weights": "none", "params": spec.backbone_params})
    data = load_task({"name": spec.task, "params": spec.task_params})
    cfg = {
        "steps": spec.steps,
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "lr": spec.lr,
        "seed": spec.seed,
    }
    start = time.perf_counter()
    lm = spec.objective in ("mlm", "clm")  # language models also report perplexity

    def log(step: int, loss: float) -> None:
        tracker.log_metrics(
            run_id, {"loss": loss, **({"perplexity": math.exp(min(loss, 50))} if lm else {})}, step
        )

    try:
        curve = objective.fn(bb, data, cfg, log)
    except Exception as err:
        tracker.set_tags(run_id, {"ptbench.error": f"{type(err).__name__}: {err}"[:500]})
        tracker.end(run_id, "FAILED")
        raise
    return bb, data, curve, time.perf_counter() - start


def _save(spec: PretrainSpec, name: str, out: Path, bb, data, curve, seconds: float, run_id: str) -> dict:
    """Write the weights, then ``meta.json`` (what made them, their hash): each whole or not at all,
    so a crash never leaves weights that look finished."""
    from safetensors.torch import save_file

    from ptbench.backbones.weights import SOURCE_HEAD, file_sha256

    state = {k: v.detach().contiguous() for k, v in bb.weights_module.state_dict().items()}
    if bb.source_head is not None:  # a supervised objective's classifier (dropped when loaded)
        state[SOURCE_HEAD + "weight"] = bb.source_head.weight.contiguous()
        state[SOURCE_HEAD + "bias"] = bb.source_head.bias.contiguous()
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    meta = {
        "name": name,
        "key": spec.key,
        "spec": asdict(spec),
        "objective": spec.objective,
        "source_task": spec.task,
        "split_hash": data.split_hash,
        "loss_curve": curve,
        "final_loss": curve[-1] if curve else None,
        "seconds": seconds,
        "sha256": file_sha256(out / WEIGHTS_FILE),
        "preprocess": bb.preprocess_info(),
        "mlflow_run_id": run_id,
    }
    write_text_atomic(out / "meta.json", json.dumps(meta, indent=2))
    return meta
