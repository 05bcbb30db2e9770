"""``ptbench pretrain``: each objective trains, weights register as a 'run' source, and the same
settings are reused instead of trained again."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import needs_task, ptbench, write_suite

from ptbench.backbones.build import build_backbone
from ptbench.errors import PtbenchError, SuiteError
from ptbench.pretrain.run import PretrainSpec, pretrain
from ptbench.tasks import TASKS
from ptbench.tracking import Tracker, default_tracking_uri


def test_supervised_pretrain_is_recorded_and_reused(tmp_path):
    spec = PretrainSpec(
        "test_efficientnet",
        "supervised",
        "digits",
        {"input_size": 16},
        {"train_size": 200, "val_size": 50, "test_size": 50},
        epochs=1,
    )
    first = pretrain(spec, tmp_path)
    assert not first.reused and first.path.is_file()
    meta = json.loads((first.path.parent / "meta.json").read_text())
    assert meta["objective"] == "supervised" and meta["source_task"] == "digits"
    assert len(meta["loss_curve"]) == 1 and len(meta["sha256"]) == 64
    second = pretrain(spec, tmp_path)
    assert second.reused and second.meta["sha256"] == meta["sha256"]
    runs = Tracker(default_tracking_uri(tmp_path)).runs_records("ptbench-pretrain")
    assert len(runs) == 1 and runs[0]["status"] == "FINISHED"
    assert runs[0]["tags.ptbench.weights_sha256"] == meta["sha256"]
    # the weights load back as a 'run' source, and they are not a random init
    bb = build_backbone(
        {"name": "test_efficientnet", "weights": "run", "id": first.name, "params": {"input_size": 16}},
        tmp_path / "weights",
    )
    assert bb.weights.source == "run" and bb.weights.ref == first.name
    torch.manual_seed(0)
    rnd = build_backbone({"name": "test_efficientnet", "params": {"input_size": 16}})
    assert not torch.equal(bb.net.conv_stem.weight, rnd.net.conv_stem.weight)
    # the supervised classifier travels with the weights (LEEP and NCE read it), outside the net
    assert bb.source_head.classes == 10 and rnd.source_head is None
    assert not any(k.startswith("source_head") for k in bb.state_dict())
    with pytest.raises(PtbenchError, match="already exist with other settings"):
        pretrain(
            PretrainSpec("test_efficientnet", "supervised", "digits", epochs=2), tmp_path, name=first.name
        )


def test_the_source_classifier_predicts_the_source_task(tmp_path):
    """What LEEP and NCE read is the pretrained model's own prediction: the saved head over the
    reloaded backbone's features classifies the source task far above chance (10 classes)."""
    task = {"train_size": 300, "val_size": 50, "test_size": 50}
    spec = PretrainSpec("test_efficientnet", "supervised", "digits", {"input_size": 16}, task, epochs=6)
    made = pretrain(spec, tmp_path)
    bb = build_backbone(
        {"name": "test_efficientnet", "weights": "run", "id": made.name, "params": {"input_size": 16}},
        tmp_path / "weights",
    ).eval()
    data = TASKS.get("digits").fn(task)
    with torch.no_grad():
        probs = bb.source_head.probs(bb(bb.preprocess(bb.encode(data.train.x))))
    assert probs.shape == (300, 10) and torch.allclose(probs.sum(1), torch.ones(300))
    assert (probs.argmax(1) == data.train.y).float().mean() > 0.5


@pytest.mark.parametrize(
    "backbone,objective,task",
    [
        pytest.param("elmo_bilstm", "mlm", "fortunes_topics", marks=needs_task("fortunes_topics")),
        pytest.param("bert", "mlm", "fortunes_topics", marks=needs_task("fortunes_topics")),
        pytest.param("gpt2", "clm", "fortunes_topics", marks=needs_task("fortunes_topics")),
        ("test_efficientnet", "contrastive", "digits"),
    ],
)
def test_self_supervised_objectives_lower_their_loss(tmp_path, backbone, objective, task):
    params = {"input_size": 16} if backbone == "test_efficientnet" else {"max_len": 16}
    if backbone == "elmo_bilstm":
        params["buckets"] = 2048
    spec = PretrainSpec(backbone, objective, task, params, {}, steps=30, batch_size=32, lr=3e-3)
    res = pretrain(spec, tmp_path)
    curve = res.meta["loss_curve"]
    assert len(curve) == 30 and all(map(lambda v: v == v, curve))
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5  # it learns something


def test_objective_must_fit_the_modality(tmp_path):
    with pytest.raises(PtbenchError, match="objective 'mlm' does not apply to the image backbone"):
        pretrain(PretrainSpec("test_efficientnet", "mlm", "digits"), tmp_path)


def test_next_token_prediction_needs_a_causal_backbone(tmp_path):
    """BERT's or ELMo's state at a position has read the next token: clm on them would teach
    copying and log a perplexity near 1. Refused, by ``ptbench pretrain`` and by validation."""
    from ptbench.suite import parse_suite

    for backbone in ("bert", "elmo_bilstm", "minilm_l6"):
        with pytest.raises(PtbenchError, match=f"needs a causal backbone .*'{backbone}' reads both"):
            pretrain(PretrainSpec(backbone, "clm", "digits"), tmp_path)
    suite = {
        "name": "clm_bert",
        "axes": {
            "backbones": [
                {"name": "bert", "weights": "run", "pretrain": {"objective": "clm", "task": "digits"}}
            ],
            "tasks": ["digits"],
            "strategies": ["linear_probe"],
            "regularizers": ["none"],
        },
    }
    with pytest.raises(SuiteError, match=r"pretrain\.objective: objective 'clm' predicts each next token"):
        parse_suite(suite)


def test_a_recipe_whose_data_holds_the_suites_test_examples_is_refused(tmp_path):
    """The suite's own task under another split_seed puts its test examples into the
    pre-training's train split: refused before any weights are made or reused. The same split
    params (the suite's train split, seen by fine-tuning anyway) are fine."""
    from ptbench.errors import SuiteError
    from ptbench.preflight import prepare_weights
    from ptbench.pretrain.leakage import check_recipes
    from ptbench.suite import parse_suite

    task = {"name": "digits", "params": {"train_size": 200, "val_size": 100, "test_size": 100}}
    other_split = {**task["params"], "split_seed": 1}
    recipe = {"objective": "supervised", "task": "digits", "task_params": other_split, "epochs": 1}
    suite = parse_suite(
        {
            "name": "leaky",
            "axes": {
                "backbones": [{"name": "test_efficientnet", "weights": "run", "pretrain": recipe}],
                "tasks": [task],
                "strategies": ["linear_probe"],
                "regularizers": ["none"],
            },
        }
    )
    with pytest.raises(
        SuiteError, match=r"backbones\[0\]\.pretrain: its source task 'digits' trains on \d+ of"
    ):
        prepare_weights(suite, tmp_path, default_tracking_uri(tmp_path))
    assert not (tmp_path / "weights").exists()
    assert check_recipes([("r", task)], [task]) == []


def test_a_recipe_on_the_pool_a_tasks_shifted_set_is_resized_from_is_refused():
    """mnist_subset's shifted set is scikit-learn's digits resized, and digits' is the MNIST
    subset resized: other bytes, the same examples. A recipe on one trains on the other's
    shifted set — the README's own example — which the byte comparison let through."""
    from ptbench.pretrain.leakage import check_recipes

    sizes = {"train_size": 300, "val_size": 100, "test_size": 100, "shifted_size": 200}
    digits, mnist = {"name": "digits", "params": sizes}, {"name": "mnist_subset", "params": sizes}
    (line,) = check_recipes([("r", digits)], [mnist])
    assert "trains on" in line and "'mnist_subset's test or shifted examples" in line
    assert int(line.split("trains on ")[1].split()[0]) > 0
    assert len(check_recipes([("r", mnist)], [digits])) == 1
    assert check_recipes([("r", digits)], [mnist], shifted=False) == []  # evaluation: [test]


def test_weights_made_from_files_that_changed_are_not_reused(tmp_path):
    """The same recipe over the user's folder reuses its weights only while the folder holds
    the data they were made from (its split hash, in meta.json)."""
    import numpy as np
    from PIL import Image

    import ptbench.tasks

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(12):
            px = rng.integers(0, 255, (16, 16), dtype=np.uint8)
            Image.fromarray(px, "L").save(tmp_path / "data" / label / f"{i}.png")
    task = {"path": str(tmp_path / "data"), "size": 16, "channels": 1, "val_size": 4, "test_size": 4}
    spec = PretrainSpec("test_efficientnet", "supervised", "image_folder", {"input_size": 16}, task, epochs=1)
    pretrain(spec, tmp_path)
    assert pretrain(spec, tmp_path).reused  # the same files: reused
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(tmp_path / "data" / "a" / "0.png")
    ptbench.tasks._task_data.cache_clear()  # as a new process would read the folder
    with pytest.raises(PtbenchError, match="were made from other data .*its files changed"):
        pretrain(spec, tmp_path)


def test_fractal_task_is_deterministic():
    a = TASKS.get("fractals").fn({"classes": 5, "per_class": 10, "size": 16})
    b = TASKS.get("fractals").fn({"classes": 5, "per_class": 10, "size": 16})
    assert a.num_classes == 5 and a.train.x.shape[1:] == (1, 16, 16)
    assert a.split_hash == b.split_hash and a.train.x.float().mean() > 5


def test_suite_with_inline_pretraining_runs_and_reuses(tmp_path):
    data = {
        "name": "inline",
        "seeds": [0],
        "axes": {
            "backbones": [
                {"name": "test_efficientnet", "params": {"input_size": 16}},
                {
                    "name": "test_efficientnet",
                    "weights": "run",
                    "params": {"input_size": 16},
                    "pretrain": {
                        "objective": "supervised",
                        "task": "fractals",
                        "epochs": 1,
                        "task_params": {"classes": 10, "per_class": 20, "size": 16},
                    },
                },
            ],
            "tasks": [{"name": "digits", "params": {"train_size": 200, "val_size": 50, "test_size": 50}}],
        },
        "search": {"trials": 1, "space": {"epochs": 2, "lr": 0.01}},
        "evaluation": ["test"],
    }
    suite = write_suite(tmp_path / "inline.yaml", data)
    # ranking first makes the suite's weights (the run reuses them); LEEP reads their classifier
    ranked = ptbench("rank", str(suite), "--project-dir", str(tmp_path / "p"), cwd=tmp_path, check=True)
    assert "pretrained weights test_efficientnet-supervised-fractals-" in ranked.stdout
    assert ": made in" in ranked.stdout
    (row,) = [r for r in ranked.stdout.splitlines() if "@run:supervised/fractals" in r]
    assert row.count("n/a") == 0  # leep and nce scored from the fractal classifier
    (control,) = [r for r in ranked.stdout.splitlines() if "@none |" in r]
    assert control.count("n/a") == 2  # no classifier: leep and nce n/a
    args = ("run", str(suite), "--project-dir", str(tmp_path / "p"), "--no-progress", "--no-leaderboard")
    out = ptbench(*args, cwd=tmp_path, check=True)
    assert ": reused" in out.stdout
    recs = Tracker(default_tracking_uri(tmp_path / "p")).runs_records("inline")
    weights = {r["params.backbone.weights"] for r in recs if r.get("tags.ptbench.kind") == "final"}
    assert weights == {"none", "run:supervised/fractals"}


def _leaky_named_weights(tmp_path):
    """Weights made by 'ptbench pretrain' on digits under another split (its train split holds
    digits' default test examples), named 'mine'."""
    task = {"train_size": 200, "val_size": 100, "test_size": 100}
    spec = PretrainSpec(
        "test_efficientnet", "supervised", "digits", {"input_size": 16}, {**task, "split_seed": 1}, epochs=1
    )
    pretrain(spec, tmp_path, name="mine")
    return task


def _named_suite(task: dict, **backbone):
    from ptbench.suite import parse_suite

    bb = {
        "name": "test_efficientnet",
        "weights": "run",
        "id": "mine",
        "params": {"input_size": 16},
    } | backbone
    axes = {"backbones": [bb], "tasks": [{"name": "digits", "params": task}], "strategies": ["linear_probe"]}
    return parse_suite({"name": "named", "axes": axes})


def test_weights_named_by_id_are_checked_as_they_were_made(tmp_path):
    """Named weights loaded into whatever the suite built — another input size (a source head
    applied to features it never saw), another family — and skipped the test-set leak check
    every inline recipe gets."""
    from ptbench.preflight import prepare_weights

    task = _leaky_named_weights(tmp_path)
    uri = default_tracking_uri(tmp_path)
    made_with = (
        r"params: weights 'mine' were made with \{input_size: 16\}, the suite gives \{input_size: 32\}"
    )
    with pytest.raises(SuiteError, match=made_with):
        prepare_weights(_named_suite(task, params={"input_size": 32}), tmp_path, uri)
    with pytest.raises(SuiteError, match=r"axes.backbones\[0\].name: weights 'mine' were pre-trained for "):
        prepare_weights(_named_suite(task, name="efficientnet_lite0"), tmp_path, uri)
    with pytest.raises(
        SuiteError, match=r"backbones\[0\] \(weights 'mine'\): its source task 'digits' trains on"
    ):
        prepare_weights(_named_suite(task), tmp_path, uri)
    other = {"train_size": 200, "val_size": 100, "test_size": 100, "split_seed": 1}  # its own split
    prepare_weights(_named_suite(other, params={"input_size": 16, "drop_path_rate": 0.1}), tmp_path, uri)


def test_a_recipe_a_typo_or_an_ignored_field_would_make_wrong_is_refused(tmp_path):
    """A recipe's task params were never checked (a typo trained on the defaults), steps under
    supervised re-made the same weights under another name, an MLM-trained BERT saved an untrained
    pooler read as pretrained; the CLI took --lr -1 and a loss that blew up as tracebacks."""
    from ptbench.suite import parse_suite

    def problems(**recipe) -> list[str]:
        bb = {"name": "bert", "weights": "run", "params": recipe.pop("params", {})}
        bb["pretrain"] = {"objective": "mlm", "task": "fortunes_topics"} | recipe
        axes = {"backbones": [bb], "tasks": [{"name": "fortunes_topics"}], "strategies": ["linear_probe"]}
        try:
            parse_suite({"name": "p", "axes": axes})
        except SuiteError as err:  # the task's own availability (an optional source) aside
            return [p for p in err.problems if p.startswith("axes.backbones")]
        return []

    assert problems(task_params={"clases": 4}) == [
        "axes.backbones[0].pretrain.task_params.clases: unknown parameter for task 'fortunes_topics' (known: "
        + ", ".join(sorted(TASKS.get("fortunes_topics").meta["params"]))
        + ")"
    ]
    assert problems(epochs=5) == [
        "axes.backbones[0].pretrain.epochs: objective 'mlm' trains for a number of steps, not epochs"
    ]
    assert problems(params={"pooling": "pooler"})[0].startswith(
        "axes.backbones[0].params.pooling: objective 'mlm' trains per-token states, never bert's pooler"
    )
    assert problems(steps=5, params={"pooling": "mean"}) == []
    out = ptbench(
        "pretrain", "test_efficientnet", "--objective", "supervised", "--task", "fractals",
        "--task-param", "clases=4", "--param", "input_sze=16", "--steps", "9", "--lr", "-1", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    for line in (
        "--task-param clases: unknown parameter for task 'fractals'",
        "--param input_sze: unknown parameter for backbone 'test_efficientnet'",
        "--steps: objective 'supervised' trains for a number of epochs, not steps",
        "--lr: must be a finite number above 0, got -1.0",
    ):
        assert line in out.stderr, out.stderr
    out = ptbench(
        "pretrain", "test_efficientnet", "--objective", "contrastive", "--task", "fractals",
        "--param", "input_size=16", "--task-param", "classes=4", "--task-param", "per_class=20",
        "--steps", "3", "--lr", "1e30", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "pre-training loss is not finite at step" in out.stderr, out.stderr


def test_weights_made_again_under_a_name_the_suite_already_ran_with_are_refused(tmp_path):
    """Deleted and re-made under the same name, the weights changed but every cell looked
    finished: nothing ran, and the old weights' results stood under the same label."""
    import shutil

    from ptbench.preflight import check_remade_weights

    task = {"train_size": 200, "val_size": 100, "test_size": 100, "split_seed": 1}
    made = pretrain(
        PretrainSpec("test_efficientnet", "supervised", "digits", {"input_size": 16}, task, epochs=1),
        tmp_path,
        name="mine",
    )
    suite = _named_suite(task)
    tracker = Tracker(default_tracking_uri(tmp_path))
    exp = tracker.experiment(suite.name, tmp_path / "artifacts")
    from ptbench.suite import expand

    cell = tracker.start_run(
        exp, "cell", {"ptbench.kind": "cell", "ptbench.cell_hash": expand(suite)[0].hash}
    )
    tags = {
        "ptbench.kind": "final",
        "ptbench.weights_ref": "mine",
        "ptbench.weights_sha256": made.meta["sha256"],
    }
    tracker.end(tracker.start_run(exp, "final", tags, parent=cell))
    check_remade_weights(suite, tmp_path, tracker)  # the weights the runs used: fine
    shutil.rmtree(made.path.parent)
    again = PretrainSpec(
        "test_efficientnet", "supervised", "digits", {"input_size": 16}, task, epochs=1, seed=1
    )
    pretrain(again, tmp_path, name="mine")
    with pytest.raises(
        SuiteError, match=r"axes.backbones\[0\]: weights 'mine' were made again since this suite ran"
    ):
        check_remade_weights(suite, tmp_path, tracker)
    check_remade_weights(suite, tmp_path, tracker, night="n1")  # a night re-runs every cell anyway


@pytest.mark.parametrize("name", ["../escaped", "ABS", ".hidden", "a/b"])
def test_a_weights_name_that_is_not_one_folder_name_is_refused(tmp_path, name):
    """`--name ../x` wrote the weights beside the weights folder and suggested `id: ../x`; an
    absolute name wrote wherever it pointed. A suite's `id` under weights: run, which names the
    folder a recipe is made in and read from, had the same hole."""
    name = str(tmp_path / "abs") if name == "ABS" else name
    (tmp_path / "w").mkdir()
    cmd = ("pretrain", "test_efficientnet", "--objective", "supervised", "--task", "digits")
    out = ptbench(*cmd, "--epochs", "1", "--param", "input_size=16", "--name", name, cwd=tmp_path / "w")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    last = out.stderr.strip().splitlines()[-1]  # argparse's usage, then its one line
    assert last.startswith("ptbench pretrain: error: argument --name: ") and f"'{name}' is not one" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"] and not any((tmp_path / "w").iterdir())
    bb = {"name": "test_efficientnet", "weights": "run", "id": name, "params": {"input_size": 16}}
    recipe = {**bb, "pretrain": {"objective": "supervised", "task": "digits", "epochs": 1}}
    write_suite(tmp_path / "w" / "s.yaml", axes={"backbones": [bb, recipe], "tasks": ["digits"]})
    out = ptbench("validate", "s.yaml", cwd=tmp_path / "w")
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip().splitlines() == [
        f"axes.backbones[{i}]: id '{name}' under weights: run is not one folder name: "
        "letters, digits, . _ - (not starting with '.')"
        for i in (0, 1)
    ]
    with pytest.raises(PtbenchError, match="is not one folder name"):
        pretrain(PretrainSpec("test_efficientnet", "supervised", "digits"), tmp_path / "p", name=name)


def test_a_negative_seed_is_refused_as_a_suites_seeds_are(tmp_path):
    """`pretrain --seed -5` trained, where a suite's seeds (and numpy) take 0 to 2**32 - 1; an
    inline recipe's seed had the same gap."""
    cmd = ("pretrain", "test_efficientnet", "--objective", "supervised", "--task", "digits")
    out = ptbench(*cmd, "--epochs", "1", "--param", "input_size=16", "--seed", "-5", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "ptbench pretrain: error: argument --seed: -5 is not a seed: "
        "seeds are whole numbers from 0 to 2**32 - 1"
    )
    assert not (tmp_path / ".ptbench").exists()
    recipe = {"objective": "supervised", "task": "digits", "seed": -5}
    bb = {"name": "test_efficientnet", "weights": "run", "pretrain": recipe, "params": {"input_size": 16}}
    write_suite(tmp_path / "s.yaml", axes={"backbones": [bb], "tasks": ["digits"]})
    out = ptbench("validate", "s.yaml", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("axes.backbones[0].pretrain.seed: "), out.stderr


def test_two_makers_of_one_name_at_once_train_it_once(tmp_path):
    """Two `ptbench pretrain` of the same recipe and name at once (or two drivers making a suite's
    recipe) both trained, and the later overwrote the weights the earlier had returned — whose
    trials had recorded the first file's hash. One makes them; the other waits and reuses them."""
    import os
    import subprocess
    import sys

    from conftest import PLUGIN_DIR, ROOT

    cmd = [sys.executable, "-m", "ptbench.cli", "pretrain", "test_efficientnet", "--objective", "supervised"]
    cmd += ["--task", "digits", "--epochs", "2", "--param", "input_size=16", "--name", "same"]
    cmd += ["--project-dir", "p"]
    env = {**os.environ, "PYTHONPATH": f"{PLUGIN_DIR}{os.pathsep}{ROOT}"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, **pipes) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted("reused" in out for out, _ in outs)
    assert said == [False, True], outs  # one made them, the other reused them
    runs = Tracker(default_tracking_uri(tmp_path / "p")).runs_records("ptbench-pretrain")
    assert len(runs) == 1 and runs[0]["status"] == "FINISHED"
    meta = json.loads((tmp_path / "p" / "weights" / "same" / "meta.json").read_text())
    assert meta["mlflow_run_id"] == runs[0]["run_id"]


@pytest.mark.parametrize(
    "args,message",
    [
        (("--lr", "1e30"), "pre-training failed: "),
        (("--batch-size", "1"), "argument --batch-size: must be at least 2, got 1"),
    ],
)
def test_a_diverging_lr_and_a_batch_of_one_are_one_line(tmp_path, args, message):
    """A supervised pre-training whose loss diverged raised the trainer's TrialError, a traceback
    with exit 3; --batch-size 1 (refused in a suite's recipe) reached BatchNorm's traceback."""
    cmd = ("pretrain", "test_efficientnet", "--objective", "supervised", "--task", "digits")
    out = ptbench(*cmd, "--epochs", "1", "--param", "input_size=16", *args, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert message in out.stderr.strip().splitlines()[-1]


def test_named_weights_whose_source_data_changed_are_not_leak_checked_against_todays_data(capsys):
    """The leak check of weights named by id read the source task as it is now: after its files
    changed, it compared the wrong examples and passed. Now it says it could not check them."""
    from ptbench.preflight import _source_of
    from ptbench.tasks import load_task

    meta = {"source_task": "digits", "spec": {"task_params": {}}}
    now = load_task({"name": "digits", "params": {}}).split_hash
    assert _source_of("axes.backbones[0]", "w", meta | {"split_hash": now})  # unchanged: checked
    assert _source_of("axes.backbones[0]", "w", meta | {"split_hash": "0" * 64}) == []
    err = capsys.readouterr().err
    assert "reads other data now (split hash 000000000000 then" in err and "not checked" in err
