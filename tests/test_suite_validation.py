"""Suite files: every problem is one line naming its field; valid suites expand to stable cells."""

from __future__ import annotations

import copy

import pytest
from conftest import TINY, ptbench, write_suite

from ptbench.errors import SuiteError
from ptbench.suite import expand, load_suite, parse_suite


def problems(data: dict) -> list[str]:
    with pytest.raises(SuiteError) as err:
        parse_suite(data)
    return err.value.problems


def tiny(**changes) -> dict:
    d = copy.deepcopy(TINY)
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return d


def test_valid_tiny_suite_expands_to_grid(tiny_suite):
    suite = load_suite(tiny_suite)
    cells = expand(suite)
    assert len(cells) == 4
    assert len({c.hash for c in cells}) == 4
    assert {c.labels["strategy"] for c in cells} == {"linear_probe", "full_finetune"}
    assert {c.labels["regularizer"] for c in cells} == {"none", "label_smoothing"}


def test_unknown_backbone_names_the_field_and_suggests():
    d = tiny()
    d["axes"]["backbones"].append({"name": "test_efficientnett"})
    assert problems(d) == [
        "axes.backbones[1]: unknown backbone 'test_efficientnett'; did you mean 'test_efficientnet'?"
    ]


def test_unknown_keys_and_bad_values_are_all_reported():
    d = tiny(search__trials=0, seeds=[])
    d["colour"] = "blue"
    d["search"]["samplr"] = "tpe"
    out = problems(d)
    assert "colour: unknown key" in out
    assert "search.samplr: unknown key" in out
    assert any(p.startswith("search.trials:") for p in out)
    assert any(p.startswith("seeds:") for p in out)


def test_inverted_and_log_zero_ranges_are_rejected():
    d = tiny(
        search__space={
            "lr": {"type": "float", "low": 1.0, "high": 0.1},
            "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2, "log": True},
        }
    )
    out = problems(d)
    assert any(p.startswith("search.space.lr") and "low 1.0 > high 0.1" in p for p in out)
    assert any(p.startswith("search.space.label_smoothing") and "log range needs low > 0" in p for p in out)


def test_space_key_nobody_uses_is_rejected():
    out = problems(tiny(search__space={"learning_rate": 0.1}))
    assert out == [
        "search.space.learning_rate: no strategy, regularizer or trainer setting has a "
        "parameter 'learning_rate'"
    ]


def test_a_space_key_no_item_of_the_grid_has_is_rejected_naming_who_would_read_it():
    """weight_decay and dropout on a full_finetune suite without those regularizers validated
    ("valid — 1 cells") and vanished from the resolved space: no trial searched them."""
    d = tiny(axes__strategies=["full_finetune"], axes__regularizers=["none"])
    assert problems(d | {"search": {"space": {"weight_decay": 0.05, "dropout": 0.3}}}) == [
        "search.space.weight_decay: no strategy or regularizer of this suite's grid has it, so no "
        "trial would read it (add the weight_decay regularizer)",
        "search.space.dropout: no strategy or regularizer of this suite's grid has it, so no "
        "trial would read it (add the dropout regularizer)",
    ]
    d["axes"]["regularizers"] = ["none", ["weight_decay"]]  # read by the cells that have it
    cells = expand(parse_suite(d | {"search": {"space": {"weight_decay": 0.05}}}))
    assert sorted(c.space.get("weight_decay") for c in cells if c.regularizers) == [0.05]


def test_unknown_item_param_is_rejected():
    d = tiny()
    d["axes"]["strategies"] = [{"name": "full_finetune", "params": {"head_lr": 3}}]
    assert problems(d)[0].startswith("axes.strategies[0].params.head_lr: unknown parameter")


def test_objective_must_be_a_validation_metric():
    out = problems(tiny(search__objective={"metric": "test_accuracy"}))
    assert any(p.startswith("search.objective.metric") for p in out)


def test_text_backbone_on_image_task_is_rejected(monkeypatch):
    monkeypatch.setenv("PTBENCH_PLUGINS", "ptbench_testplugin")
    from ptbench.registry import load_plugins

    load_plugins()
    d = tiny()
    d["axes"]["backbones"].append({"name": "toy_text_encoder"})
    out = problems(d)
    assert out == [
        "axes.backbones[1] × axes.tasks[0]: text backbone 'toy_text_encoder' cannot run "
        "the image task 'digits' (add an exclude rule for the pair)"
    ]
    d["exclude"] = [{"backbone": "toy_*", "task": "digits"}]
    assert len(expand(parse_suite(d))) == 4


def test_include_exclude_rules_prune_the_grid():
    d = tiny(exclude=[{"strategy": "linear_probe", "regularizer": "label_smoothing"}])
    assert len(expand(parse_suite(d))) == 3
    d = tiny(include=[{"strategy": "full_finetune"}])
    assert {c.labels["strategy"] for c in expand(parse_suite(d))} == {"full_finetune"}
    assert problems(tiny(include=[{"strategy": "partial_finetune"}])) == [
        "include[0]: matches no cell of the grid (strategy: partial_finetune)"
    ]
    assert problems(tiny(exclude=[{"strategy": "*"}])) == [
        "include/exclude: the rules leave no cell in the grid"
    ]


def test_a_rule_or_reference_that_matches_no_cell_is_a_typo():
    """An exclude with a misspelt value excluded nothing, silently; a reference naming no cell
    left mCE empty."""
    assert problems(tiny(exclude=[{"strategy": "linear_prob"}])) == [
        "exclude[0]: matches no cell of the grid (strategy: linear_prob)"
    ]
    d = tiny(evaluation=["test", "corruptions"], robustness={"reference": {"weights": "package"}})
    assert problems(d) == ["robustness.reference: matches no cell of the grid (weights: package)"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"evaluation": []}, "evaluation: 'test' is what the leaderboard ranks by"),
        ({"robustness": {"eps": [-0.1]}}, "robustness.eps: attack budgets are fractions of the input range"),
        ({"robustness": {"eps": []}}, "robustness.eps: List should have at least 1 item"),
        (  # one beat late by a second would have failed a live trial
            {"storage": {"heartbeat_interval": 10, "grace_period": 11}},
            "storage: grace_period (11) must be at least twice heartbeat_interval (10)",
        ),
    ],
    ids=["no-test", "negative-eps", "no-eps", "grace-one-beat"],
)
def test_evaluation_settings_that_would_measure_nothing_are_refused(change, message):
    (problem,) = problems(tiny(**change))
    assert problem.startswith(message)


def test_weights_a_cell_would_not_read_or_could_not_find_are_refused(tmp_path):
    """A file path that does not exist failed every trial; a path under weights: none was
    silently ignored (the cell ran random weights)."""
    d = tiny()
    d["axes"]["backbones"] = [
        {"name": "test_efficientnet", "weights": "file", "path": str(tmp_path / "x.pt")}
    ]
    assert problems(d) == [f"axes.backbones[0].path: {tmp_path / 'x.pt'} does not exist"]
    d["axes"]["backbones"] = [{"name": "test_efficientnet", "weights": "none", "path": "x.pt"}]
    assert problems(d) == ["axes.backbones[0]: 'path' is not read under weights: none"]


def test_a_hub_id_the_family_does_not_read_is_refused():
    """alexnet and googlenet always load torchvision's DEFAULT weights: an ``id`` beside them
    validated and ran other weights than the suite named."""
    from ptbench.backbones.build import build_backbone
    from ptbench.errors import PtbenchError

    d = tiny()
    spec = {"weights": "hub", "id": "IMAGENET1K_V2", "params": {"input_size": 64}}
    d["axes"]["backbones"] = [{"name": "alexnet", **spec}, {"name": "googlenet", **spec}]
    assert problems(d) == [
        f"axes.backbones[{i}].id: backbone '{name}' takes no hub id: its hub weights are always "
        "its library's default"
        for i, name in enumerate(("alexnet", "googlenet"))
    ]
    with pytest.raises(PtbenchError, match="backbone 'alexnet' takes no hub id"):
        build_backbone({"name": "alexnet", **spec})  # the Python API, too


def test_cell_hash_is_stable_and_ignores_budget_and_seeds():
    base = {c.hash for c in expand(parse_suite(tiny()))}
    assert base == {c.hash for c in expand(parse_suite(tiny()))}
    assert base == {c.hash for c in expand(parse_suite(tiny(search__trials=9, seeds=[5])))}
    changed = {c.hash for c in expand(parse_suite(tiny(search__space={"epochs": 3})))}
    assert changed.isdisjoint(base)


def test_fixed_params_on_an_axis_win_over_search_space():
    d = tiny()
    d["axes"]["regularizers"] = [[{"name": "label_smoothing", "params": {"label_smoothing": 0.1}}]]
    cells = expand(parse_suite(d))
    assert all(c.space["label_smoothing"] == 0.1 for c in cells)
    assert cells[0].labels["regularizer"] == "label_smoothing(label_smoothing=0.1)"


def test_a_strategy_fixes_its_own_trainer_settings():
    """A probe trains 20 epochs on cached features, a fine-tune fewer: each strategy on the axis
    may fix trainer settings for itself, over the suite's search space."""
    d = tiny(search__space={"epochs": 2})
    d["axes"]["strategies"] = ["linear_probe", {"name": "full_finetune", "params": {"epochs": 6}}]
    by_strategy = {c.labels["strategy"]: c.space["epochs"] for c in expand(parse_suite(d))}
    assert by_strategy == {"linear_probe": 2, "full_finetune(epochs=6)": 6}


def test_a_strategy_searches_its_own_range_and_a_bad_range_is_one_line():
    d = tiny()
    lr = {"type": "float", "low": 2e-5, "high": 3e-4, "log": True}
    d["axes"]["strategies"] = ["linear_probe", {"name": "full_finetune", "params": {"lr": lr}}]
    cells = {c.labels["strategy"]: c for c in expand(parse_suite(d))}
    assert cells["full_finetune(lr=2e-05..0.0003 log)"].space["lr"] == lr  # searched, for it alone
    assert cells["linear_probe"].space["lr"] != lr  # the suite's range, as before
    d["axes"]["strategies"][1]["params"]["lr"] = {"type": "float", "low": 2e-5}
    assert problems(d) == ["axes.strategies[1].params.lr: search range: float needs 'low' and 'high'"]


@pytest.mark.parametrize(
    "select, problem",
    [
        ({"by": "logmee"}, "axes.select.by: unknown estimator 'logmee'; did you mean 'logme'?"),
        ({"by": "leep"}, "axes.select.by: 'leep' needs a source classifier, which random-init"),
        ({"by": "logme"}, "axes.select: every backbone is random-init (weights: none)"),
    ],
)
def test_a_funnel_that_cannot_select_is_one_line(select, problem):
    d = tiny()
    d["axes"]["select"] = select
    (line,) = problems(d)
    assert line.startswith(problem)


@pytest.mark.parametrize("by", ["logme", "hscore", "hscore_shrink", "knn", "probe"])
def test_a_funnel_may_select_by_any_estimator_that_reads_features(by):
    d = tiny()
    d["axes"]["backbones"].append({"name": "test_efficientnet", "weights": "file", "path": __file__})
    d["axes"]["select"] = {"by": by, "top": 1}
    assert parse_suite(d).axes.select.by == by  # the probe was once refused as if it read a head


def test_two_backbones_under_one_label_are_refused_and_recipes_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "w.safetensors").write_bytes(b"")
    d = tiny()
    d["axes"]["backbones"] = [
        {"name": "test_efficientnet", "weights": "file", "path": path}
        for path in ("a/w.safetensors", "./a/w.safetensors")
    ]
    (line,) = problems(d)
    assert line.startswith(
        "axes.backbones: 2 different backbones share the label 'test_efficientnet@file:w.safetensors'"
    )
    d["axes"]["backbones"] = [
        {"name": "test_efficientnet", "weights": "file", "path": f"{run}/w.safetensors"} for run in ("a", "b")
    ]
    labels = {c.labels["backbone"] for c in expand(parse_suite(d))}
    assert labels == {"test_efficientnet@file:a/w.safetensors", "test_efficientnet@file:b/w.safetensors"}
    recipe = {"objective": "contrastive", "task": "digits"}
    d["axes"]["backbones"] = [
        {"name": "test_efficientnet", "weights": "run", "pretrain": recipe | {"steps": n}} for n in (100, 400)
    ]
    labels = {c.labels["backbone"] for c in expand(parse_suite(d))}
    assert labels == {f"test_efficientnet@run:contrastive/digits(steps={n})" for n in (100, 400)}


def test_mixup_of_token_ids_is_refused_before_anything_runs(tmp_path):
    """A fine-tune of a text backbone gets token ids, which mixup cannot blend (it failed every
    trial at run time); a probe's features it can."""
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"review {i},{'good' if i % 2 else 'bad'}\n" for i in range(40)))
    d = tiny()
    d["axes"]["backbones"] = [{"name": "bert", "params": {"size": "small"}}]
    d["axes"]["tasks"] = [{"name": "text_file", "params": {"path": str(data)}}]
    d["axes"]["regularizers"] = [["mixup"]]
    (line,) = problems(d)
    assert line.startswith("regularizer 'mixup' blends inputs, and 'full_finetune' feeds the text backbone")
    d["axes"]["strategies"] = ["linear_probe"]
    assert len(expand(parse_suite(d))) == 1


def test_cli_validate_exit_codes(tmp_path):
    good = write_suite(tmp_path / "good.yaml")
    ok = ptbench("validate", str(good), cwd=tmp_path)
    assert ok.returncode == 0 and "valid — 4 cells" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\naxes:\n  backbones: [resnet-9000]\n  tasks: [digits\n")
    out = ptbench("validate", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"{bad}:5:1: malformed YAML")
    assert "Traceback" not in out.stderr
    d = copy.deepcopy(TINY)
    d["axes"]["backbones"] = ["test_efficientnet", "resnet-9000"]
    write_suite(bad, d)
    out = ptbench("validate", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "axes.backbones[1]: unknown backbone 'resnet-9000'; did you mean 'resnet18'?"
    )
    assert ptbench("validate", str(tmp_path / "nope.yaml"), cwd=tmp_path).returncode == 2


def test_a_yaml_tag_that_would_run_code_is_refused_in_one_line(tmp_path):
    """PyYAML's unsafe loader would call os.system while reading the file; ptbench must refuse the
    tag, naming the file and position, before anything is constructed."""
    pwned = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"name: !!python/object/apply:os.system ['touch {pwned}']\n")
    with pytest.raises(SuiteError) as err:
        load_suite(evil)
    assert str(err.value).startswith(f"{evil}:1:7: malformed YAML")
    out = ptbench("validate", str(evil), cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"{evil}:1:7: malformed YAML") and "python/object/apply:os.system" in line
    assert not pwned.exists()  # nothing was constructed, in either process


@pytest.mark.parametrize(
    "strategy,reg,msg",
    [
        (
            "linear_probe",
            "augment",
            "regularizer 'augment' needs the backbone to run on raw inputs, but 'linear_probe' "
            "trains on cached features (exclude the pair)",
        ),
        ("full_finetune", "drop_path", "regularizer 'drop_path' is not supported inside backbone 'mel_cnn'"),
    ],
)
def test_impossible_regularizer_combinations_fail_at_validate(strategy, reg, msg, tmp_path):
    """On tasks that need no optional source (digits; an audio folder the test makes), so the
    combination — not a missing synthesiser — is what validate reports."""
    d = tiny()
    d["axes"]["strategies"], d["axes"]["regularizers"] = [strategy], [[reg]]
    if reg == "drop_path":
        assert len(expand(parse_suite(d))) == 1  # timm backbones support drop_path
        d["axes"]["backbones"] = [{"name": "mel_cnn"}]
        d["axes"]["tasks"] = [{"name": "audio_folder", "params": {"path": str(tmp_path)}}]
    assert problems(d) == [msg]


def test_a_checkpoint_glob_is_one_backbone_per_match_each_told_apart(tmp_path):
    """Checkpoints saved every N steps, one line in the suite; a checkpoint saved since is a new
    backbone next time. A glob that matches nothing is one line, not an empty grid."""
    for step in (500, 1000, 1500):
        (tmp_path / f"step{step}").mkdir()
        (tmp_path / f"step{step}" / "model.safetensors").write_bytes(b"")
    d = tiny()
    d["axes"]["backbones"] = [
        {
            "name": "test_efficientnet",
            "weights": "file",
            "path": str(tmp_path / "step*" / "model.safetensors"),
        },
        {"name": "test_efficientnet"},
    ]
    suite = parse_suite(d)
    assert [bb.path for bb in suite.axes.backbones[:3]] == [
        str(tmp_path / f"step{n}" / "model.safetensors") for n in (1000, 1500, 500)
    ]
    labels = {c.labels["backbone"] for c in expand(suite)}
    assert labels == {
        *(f"test_efficientnet@file:step{n}/model.safetensors" for n in (500, 1000, 1500)),
        "test_efficientnet@none",
    }
    d["axes"]["backbones"][0]["path"] = str(tmp_path / "nothing*" / "model.safetensors")
    assert problems(d) == [
        f"axes.backbones[0].path: '{tmp_path}/nothing*/model.safetensors' matches no checkpoint"
    ]


def test_a_glob_that_matches_nothing_is_its_own_line_alone(tmp_path):
    """The glob as the suite's only backbone also printed "include/exclude: the rules leave no
    cell in the grid" (the suite had no rules), and a reference naming its weights "matches no
    cell": only the glob is wrong."""
    d = tiny()
    path = str(tmp_path / "nothing*" / "model.safetensors")
    d["axes"]["backbones"] = [{"name": "test_efficientnet", "weights": "file", "path": path}]
    glob = f"axes.backbones[0].path: '{path}' matches no checkpoint"
    assert problems(d) == [glob]
    assert problems(d | {"robustness": {"reference": {"weights": "file"}}}) == [glob]


def test_a_corruption_no_task_can_take_and_a_misspelt_mce_reference_are_one_line():
    out = problems(tiny(robustness={"corruptions": ["contrast", "gain"]}))
    assert out == ["robustness.corruptions[1]: 'gain' corrupts audio inputs and the suite has no audio task"]
    assert problems(tiny(robustness={"corruptions": []})) == [
        "robustness.corruptions: an empty list evaluates no corruption; use 'all' or name some"
    ]
    out = problems(tiny(robustness={"reference": {"backbone": "test_*", "weight": "none"}}))
    assert len(out) == 1 and out[0].startswith("robustness.reference.weight")  # not silently ignored


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"name: t\nsearch: {trials: 5}\nsearch: {trials: 2}\n",
            "s.yaml:3:1: malformed YAML: duplicate key 'search' (first on line 2)",
        ),
        (b"name: t\ndescription: caf\xe9\n", "s.yaml:2: not UTF-8 (byte 0xe9); save the file as UTF-8"),
        (b"", "s.yaml: the suite file is empty"),
        (b"# only a comment\n", "s.yaml: the suite file is empty"),
        (None, "s.yaml: is a directory, not a suite file"),
    ],
    ids=["duplicate-key", "latin-1", "empty", "comment-only", "directory"],
)
def test_a_suite_file_that_cannot_be_read_is_one_line_naming_file_and_line(tmp_path, content, message):
    """A key given twice was silently replaced by the second; a Latin-1 file was a traceback."""
    path = tmp_path / "s.yaml"
    path.mkdir() if content is None else path.write_bytes(content)
    out = ptbench("validate", "s.yaml", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == message and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"type": "float", "low": 0.1, "high": 0.001}, "search.space.x: empty range: low 0.1 > high 0.001"),
        (
            {"type": "categorical", "choices": [32, 64], "low": 1, "log": True},
            "search.space.x: categorical takes only 'choices', not low, log",
        ),
        (
            {"type": "float", "low": 0.1, "high": 0.5, "choices": [0.2]},
            "search.space.x: float takes low/high/log/step, not 'choices' (use type: categorical)",
        ),
        (
            {"type": "int", "low": 1.5, "high": 4},
            "search.space.x: int needs whole numbers for low, high and step",
        ),
        ({"type": "int", "low": 1, "high": 5, "step": 0}, "search.space.x: step must be > 0, got 0.0"),
        (
            {"type": "float", "low": float("nan"), "high": 1.0},
            "search.space.x: low, high and step must be finite numbers",
        ),
        ({"type": "float", "low": 0.1, "hihg": 0.5}, "search.space.x.hihg: unknown key"),
    ],
    ids=["inverted", "categorical-range", "float-choices", "int-fraction", "step-0", "nan", "typo"],
)
def test_a_search_range_with_a_key_its_type_ignores_is_one_error(entry, message):
    """Keys a distribution does not read were silently dropped (a step of 0 became 1, 1.5..4.2
    became 1..4), and every range error came with four lines about scalar types."""
    assert problems(tiny(search__space={"x": entry})) == [message]


def test_seeds_are_distinct_and_ones_numpy_accepts():
    """A repeated seed was planned twice and counted once; -1 failed every trial."""
    assert problems(tiny(seeds=[0, 1, 0])) == ["seeds: seed 0 is listed twice"]
    assert problems(tiny(seeds=[-1])) == [
        "seeds: -1 is not a seed: seeds are whole numbers from 0 to 2**32 - 1"
    ]


def test_a_boolean_where_the_suite_wants_a_number_is_refused_naming_the_field():
    """``seeds: [true]`` ran seed 1 (``[true, 1]``: "seed 1 is listed twice") and
    ``trials: true`` one trial: pydantic reads YAML's true as 1. Typed params refused it already."""
    assert problems(tiny(seeds=[True, 1])) == ["seeds[0]: expected int, got bool True"]
    assert problems(tiny(search__trials=True)) == ["search.trials: expected int, got bool True"]
    assert problems(tiny(execution={"workers": True, "gpus_per_trial": False})) == [
        "execution.workers: expected int, got bool True",
        "execution.gpus_per_trial: expected float, got bool False",
    ]


def test_a_device_torch_cannot_read_or_an_empty_device_list_is_one_line(tmp_path):
    """devices [gpu0] validated and every trial failed ("Invalid device string"); [] crashed the
    run with a ZeroDivisionError traceback (exit 3)."""
    assert problems(tiny(execution={"devices": ["cpu", "gpu0", "cuda:x"]})) == [
        "execution.devices[1]: 'gpu0' is not a device torch knows (cpu, cuda, cuda:N, mps, …)",
        "execution.devices[2]: 'cuda:x' is not a device torch knows (cpu, cuda, cuda:N, mps, …)",
    ]
    parse_suite(tiny(execution={"devices": ["cpu", "cuda:1", "mps"]}))  # maybe another machine's
    path = write_suite(tmp_path / "s.yaml", execution={"devices": []})
    out = ptbench("run", str(path), "--project-dir", "p", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        "execution.devices: an empty list names no device (use auto, cpu or [cuda:0, …])"
    )


def test_a_ray_address_the_executor_would_not_read_is_one_line_naming_both(tmp_path):
    """--address (or execution.address) with the local or inline executor was silently ignored:
    the suite ran on local workers, not on the cluster it named."""
    assert problems(tiny(execution={"executor": "inline", "address": "ray://head:10001"})) == [
        "execution.address: only executor ray reads an address, and execution.executor is inline "
        "(set executor: ray, or remove the address)"
    ]
    local = write_suite(tmp_path / "local.yaml")
    ray = write_suite(tmp_path / "ray.yaml", execution={"executor": "ray", "address": "ray://head:10001"})
    for path, flags, message in (
        (
            local,
            ["--address", "ray://head:10001"],
            "--address ray://head:10001 with execution.executor local",
        ),
        (
            ray,
            ["--executor", "inline", "--address", "ray://head:10001"],
            "--address ray://head:10001 with --executor inline",
        ),
    ):
        for dry in ([], ["--dry-run"]):
            out = ptbench("run", str(path), *flags, *dry, "--project-dir", "p", cwd=tmp_path)
            assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
            assert message + ": only executor ray reads an address" in out.stderr
    assert not (tmp_path / "p").exists()  # refused before anything was made
    # a Ray suite run here once: --executor local sets its own address aside, no edit needed
    out = ptbench("run", str(ray), "--executor", "local", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("flag, value", [("--trials", "0"), ("--workers", "-2"), ("--trials", "x")])
def test_a_count_on_the_command_line_below_one_is_refused(tiny_suite, flag, value):
    """``--trials 0`` silently ran the suite's value; ``--trials -3`` planned -2 runs."""
    out = ptbench("run", str(tiny_suite), "--dry-run", flag, value, cwd=tiny_suite.parent)
    assert out.returncode == 2 and f"argument {flag}:" in out.stderr.splitlines()[-1]


def test_trainer_and_regularizer_values_it_cannot_take_are_refused_wherever_they_are_set():
    """An unknown optimizer ran AdamW, epochs 2.7 ran 2, mixup_alpha 0 ran no mixup under a
    'mixup' label, patience -1 no early stopping; dropout 1.5 or lr 'fast' failed every trial."""
    d = tiny(
        search__space={
            "optimizer": "sgdd",
            "epochs": 2.7,
            "lr": {"type": "categorical", "choices": [0.1, "fast"]},
        }
    )
    d["axes"]["regularizers"] = [
        [{"name": "mixup", "params": {"mixup_alpha": 0}}],
        [{"name": "early_stopping", "params": {"patience": -1}}],
        [{"name": "dropout", "params": {"dropout": {"type": "float", "low": 0.1, "high": 1.5}}}],
    ]
    d["axes"]["strategies"] = [{"name": "partial_finetune", "params": {"train_blocks": 0}}]
    assert sorted(problems(d)) == [
        "axes.regularizers[0][0].params.mixup_alpha: 0 must be above 0",
        "axes.regularizers[1][0].params.patience: -1 is below the minimum 1",
        "axes.regularizers[2][0].params.dropout: high 1.5 must be below 1",
        "axes.strategies[0].params.train_blocks: 0 is below the minimum 1",
        "search.space.epochs: expected int, got float 2.7",
        "search.space.lr: choice expected float, got str 'fast'",
        "search.space.optimizer: 'sgdd' is not one of 'adamw', 'sgd'",
    ]
    assert problems(tiny(search__space={"epochs": {"type": "float", "low": 1, "high": 3}})) == [
        "search.space.epochs: takes whole numbers: use type: int"
    ]


def test_momentum_is_searchable_and_reaches_the_trainer():
    """A trainer setting without a default in the grid was refused in search.space."""
    from ptbench.train.recipe import Recipe

    suite = parse_suite(tiny(search__space={"momentum": 0.5, "optimizer": "sgd"}))
    (cell, *_) = expand(suite)
    assert cell.space["momentum"] == 0.5
    assert Recipe.from_params({"momentum": 0.5}).momentum == 0.5


def test_a_setting_a_cell_cannot_use_is_refused_naming_its_field():
    """search.space reaches every cell: head_lr_mult was searched under linear_probe (whose head
    is all it trains) and momentum under AdamW, changing nothing while the search spent trials
    on them. Where a strategy has the setting, it belongs in that strategy's params."""
    hlr = {"type": "float", "low": 1.0, "high": 10.0, "log": True}
    assert problems(tiny(search__space=TINY["search"]["space"] | {"head_lr_mult": hlr})) == [
        "search.space.head_lr_mult: linear_probe has no head learning-rate multiplier "
        "(set head_lr_mult in the params of the strategies that have one)"
    ]
    parse_suite(
        tiny(axes__strategies=["linear_probe", {"name": "full_finetune", "params": {"head_lr_mult": hlr}}])
    )
    assert problems(tiny(search__space=TINY["search"]["space"] | {"momentum": 0.5})) == [
        "search.space.momentum: only optimizer sgd has a momentum, and the optimizer (by default) is adamw"
    ]
    either = {"type": "categorical", "choices": ["adamw", "sgd"]}
    parse_suite(tiny(search__space=TINY["search"]["space"] | {"momentum": 0.5, "optimizer": either}))


def test_gradual_unfreeze_must_unfreeze_within_the_run():
    """unfreeze_every at or above epochs opens no block: a head-only run under gradual_unfreeze's
    name (with l2_sp, every trial failed). A range is refused when its top cannot unfreeze even at
    the most epochs searched; a searched corner (few epochs, a long unfreeze_every) is allowed."""

    def gradual(**space):
        return tiny(axes__strategies=["gradual_unfreeze"], search__space={"epochs": 3} | space)

    assert problems(gradual(unfreeze_every={"type": "int", "low": 1, "high": 3})) == [
        "search.space.unfreeze_every: 1..3 must stay below epochs (3): at 3 no block ever unfreezes "
        "(the head trains alone)"
    ]
    assert problems(gradual(epochs=2)) == [
        "axes.strategies[0].params.unfreeze_every: gradual_unfreeze's default 1..2 must stay below "
        "epochs (2): at 2 no block ever unfreezes (the head trains alone)"
    ]
    parse_suite(gradual())  # the default 1..2 at 3 epochs
    parse_suite(gradual(epochs={"type": "int", "low": 2, "high": 6}, unfreeze_every=4))


def test_a_warm_up_must_end_within_the_run():
    """warmup_epochs at or above epochs was accepted: the learning rate climbed for the whole run
    and never reached (or never left) its peak. A range counts by its top at the most epochs."""
    space = TINY["search"]["space"]  # epochs 2
    assert problems(tiny(search__space=space | {"warmup_epochs": 2})) == [
        "search.space.warmup_epochs: 2 must stay below epochs (2): at 2 the learning rate warms up "
        "for the whole run"
    ]
    parse_suite(tiny(search__space=space | {"warmup_epochs": 1}))
    searched = {
        "epochs": {"type": "int", "low": 2, "high": 4},
        "warmup_epochs": {"type": "int", "low": 0, "high": 3},
    }
    parse_suite(tiny(search__space=space | searched))


def test_the_objective_is_a_metric_the_trainer_reports_in_its_own_direction():
    """A misspelt metric trained every trial in full and then failed it; val_loss alone was
    maximised (the search looked for the worst model)."""
    assert problems(tiny(search__objective={"metric": "val_accuracyy"})) == [
        "search.objective.metric: 'val_accuracyy' is not a metric the trainer reports "
        "(val_accuracy, val_loss)"
    ]
    assert (
        parse_suite(tiny(search__objective={"metric": "val_loss"})).search.objective.direction == "minimize"
    )
    assert problems(tiny(search__objective={"metric": "val_loss", "direction": "maximize"})) == [
        "search.objective: val_loss is to minimize, not maximize"
    ]


def test_ls_prints_the_values_each_parameter_takes(tmp_path):
    out = ptbench("ls", "regularizers", cwd=tmp_path, check=True).stdout
    row = next(line for line in out.splitlines() if line.startswith("dropout "))
    assert "dropout float[0,1)" in row and "values it takes" in out.splitlines()[0]


def test_a_size_beside_hub_weights_is_refused():
    """The hub model came at its own size while the cell was labelled size=small."""
    d = tiny()
    d["axes"]["backbones"] = [{"name": "vgg11", "weights": "hub", "params": {"size": "small"}}]
    assert problems(d) == [
        "axes.backbones[0].params.size: hub weights are the full model; size: small applies to "
        "weights none, file and run"
    ]


def test_googlenet_hub_weights_without_their_input_rescaling_are_refused():
    d = tiny()
    d["axes"]["backbones"] = [{"name": "googlenet", "weights": "hub", "params": {"transform_input": False}}]
    assert problems(d) == [
        "axes.backbones[0].params.transform_input: torchvision's hub weights were trained with it "
        "(true); false applies to weights none, file and run"
    ]


def test_an_axis_value_listed_twice_or_a_regularizer_twice_in_a_stack_is_refused():
    """The plan counted every duplicated cell twice and ran it once; in a stack of two dropouts,
    one setting silently won."""
    d = tiny()
    d["axes"]["backbones"] *= 2
    d["axes"]["regularizers"] = [
        "none",
        [{"name": "dropout"}, {"name": "dropout", "params": {"dropout": 0.4}}],
        [],
    ]
    assert problems(d) == [
        "axes.backbones[1]: the same as axes.backbones[0]",
        "axes.regularizers[2]: the same as axes.regularizers[0]",
        "axes.regularizers[1][1]: 'dropout' is already in this stack",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (("leaderboard", "s.yaml", "s.yaml", "--page", "../../evil"), "'../../evil' is not a page name"),
        (("leaderboard", "s.yaml", "--format", "html", "--output", "out.md"), "name it out.html"),
        (("leaderboard", "s.yaml", "--format", "csv", "--output", "."), "--output . is a folder"),
        (("history", "s.yaml", "--metric", "test_acc"), "--metric test_acc: not a nightly metric"),
    ],
    ids=["page-outside-results", "html-into-md", "output-folder", "unknown-metric"],
)
def test_leaderboard_and_history_arguments_that_cannot_work_are_one_line(tmp_path, args, message):
    """A page named ../../evil wrote outside results/ then crashed; HTML went into a .md file;
    an unknown metric printed nan."""
    write_suite(tmp_path / "s.yaml", TINY)
    out = ptbench(*args, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr.strip().splitlines()[-1], out.stderr
    assert not (tmp_path.parent / "evil").exists() and "Traceback" not in out.stderr


def test_yaml_anchors_merges_and_exponents_without_a_dot_still_read(tmp_path):
    """The duplicate-key check refused every ``<<: *anchor`` merge; ``1e-3`` (a string to YAML
    1.1, 0.001 to the trainer) was refused as 'expected float'."""
    text = """name: anchors
axes:
  backbones: [{name: test_efficientnet, params: {input_size: 16}}]
  tasks: [{name: digits}]
  strategies:
    - &ft {name: full_finetune, params: {lr: 1e-3, head_lr_mult: 2}}
    - {<<: *ft, name: llrd}
search: {trials: 1, space: {lr: {type: categorical, choices: [1e-3, 1e-2]}}}
"""
    (tmp_path / "s.yaml").write_text(text)
    assert {c.labels["strategy"].split("(")[0] for c in expand(load_suite(tmp_path / "s.yaml"))} == {
        "full_finetune",
        "llrd",
    }


def test_size_full_beside_hub_weights_is_the_explicit_control_pair():
    d = tiny()
    d["axes"]["backbones"] = [  # validated only: no hub download
        {"name": "vgg11", "weights": "hub", "params": {"size": "full"}},
        {"name": "vgg11", "weights": "none", "params": {"size": "full"}},
    ]
    assert len(expand(parse_suite(d))) == 8  # 2 backbones × 2 strategies × 2 regularizers


def test_a_nightly_lookback_shorter_than_min_history_is_one_line(tmp_path):
    """lookback 2 with min_history 3 was accepted, after which no night could ever be flagged."""
    suite = write_suite(tmp_path / "n.yaml", nightly={"lookback": 2, "min_history": 3})
    out = ptbench("validate", str(suite), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "lookback 2" in out.stderr and "min_history 3" in out.stderr and "nightly" in out.stderr
    ok = write_suite(tmp_path / "ok.yaml", nightly={"lookback": 3, "min_history": 3})
    assert ptbench("validate", str(ok), cwd=tmp_path).returncode == 0
