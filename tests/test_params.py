"""Typed params of backbones and tasks are checked at ``validate``: a wrong type or an out-of-range
value is one line naming the field, before any worker starts (it used to fail inside a worker)."""

from __future__ import annotations

import copy

import pytest
from conftest import TINY, write_suite

from ptbench.errors import SuiteError
from ptbench.suite import load_suite, parse_suite


def problems(backbone: dict | None = None, task_params: dict | None = None, **axes) -> list[str]:
    d = copy.deepcopy(TINY)
    if backbone is not None:
        d["axes"]["backbones"] = [backbone]
    if task_params is not None:
        d["axes"]["tasks"][0]["params"].update(task_params)
    d["axes"].update(axes)
    with pytest.raises(SuiteError) as err:
        parse_suite(d)
    return err.value.problems


def bb(name: str = "test_efficientnet", **params) -> dict:
    return {"name": name, "weights": "none", "params": params}


def test_backbone_param_of_the_wrong_type_is_one_line_naming_the_field():
    assert problems(bb(input_size="abc")) == [
        "axes.backbones[0].params.input_size: expected int, got str 'abc'"
    ]


def test_backbone_param_out_of_range_is_one_line_naming_the_field():
    assert problems(bb("alexnet", input_size=32)) == [
        "axes.backbones[0].params.input_size: 32 is below the minimum 63"
    ]
    assert problems(bb(drop_path_rate=1.5)) == [
        "axes.backbones[0].params.drop_path_rate: 1.5 is above the maximum 1"
    ]


def test_backbone_param_outside_its_choices_names_them():
    assert problems(bb("vgg11", size="tiny")) == [
        "axes.backbones[0].params.size: 'tiny' is not one of 'small', 'full'"
    ]


def test_task_param_of_the_wrong_type_or_range_is_one_line_naming_the_field():
    assert problems(task_params={"train_size": "abc"}) == [
        "axes.tasks[0].params.train_size: expected int, got str 'abc'"
    ]
    assert problems(task_params={"train_size": 0}) == [
        "axes.tasks[0].params.train_size: 0 is below the minimum 1"
    ]


def test_every_wrong_param_is_reported_at_once_from_a_suite_file(tmp_path):
    d = copy.deepcopy(TINY)
    d["axes"]["backbones"] = [bb(input_size=True), bb("bert", max_len=1000)]
    path = write_suite(tmp_path / "suite.yaml", d)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert err.value.problems == [
        "axes.backbones[0].params.input_size: expected int, got bool True",
        "axes.backbones[1].params.max_len: 1000 is above the maximum 512",
    ]


def test_drop_path_on_a_backbone_without_stochastic_depth_is_refused_at_validate():
    """timm's VGG takes no drop_path_rate: once a crash in the worker, now a validate problem."""
    out = problems(bb("vgg11", size="small"), strategies=["full_finetune"], regularizers=[["drop_path"]])
    assert len(out) == 1 and "regularizer 'drop_path' is not supported inside backbone 'vgg11'" in out[0]


def test_valid_typed_params_pass_and_a_bare_help_string_accepts_any_value(monkeypatch):
    parse_suite({**copy.deepcopy(TINY), "axes": {**TINY["axes"], "backbones": [bb(input_size=24)]}})
    monkeypatch.setenv("PTBENCH_PLUGINS", "ptbench_testplugin")
    from ptbench.registry import load_plugins

    load_plugins()  # nan_net declares params={"input_size": ""}: untyped, as older plugins do
    d = copy.deepcopy(TINY)
    d["axes"]["backbones"] = [bb("nan_net", input_size="whatever")]
    parse_suite(d)
