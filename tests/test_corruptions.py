"""Corruptions are deterministic for a seed, and a more severe level moves inputs further."""

from __future__ import annotations

import pytest
import torch

from ptbench.backbones.encoders import MelEncoder
from ptbench.evaluate.corruptions import CORRUPTIONS, corrupt, names_for
from ptbench.tasks import TASKS


@pytest.fixture(scope="module")
def digits():
    d = TASKS.get("mnist_subset").fn({"train_size": 100, "val_size": 100, "test_size": 100})
    return d.test.x[:32]


def _audio():
    t = torch.arange(16000) / 16000
    return torch.randn(4, 16000, generator=torch.Generator().manual_seed(0)) * 0.1 * t


TEXT = [
    "The quick brown Fox jumps over the lazy dog near the river bank today",
    "A quietly devastating film about the limits of loyalty and love",
] * 4


def _distance(name, clean, bad):
    modality = CORRUPTIONS.get(name).meta["modality"]
    if modality == "image":
        return (bad.float() - clean.float()).pow(2).mean().sqrt().item()
    if modality == "audio":
        mel = MelEncoder(40)
        return (mel(bad) - mel(clean)).pow(2).mean().sqrt().item()
    import difflib

    return sum(1 - difflib.SequenceMatcher(None, a, b).ratio() for a, b in zip(clean, bad, strict=True))


def _input(name, digits):
    modality = CORRUPTIONS.get(name).meta["modality"]
    if modality == "image":
        if name == "saturate":  # colour images: grey ones have no saturation to change
            rgb = digits.expand(-1, 3, -1, -1).clone()
            rgb[:, 0] //= 2
            return rgb
        return digits
    return _audio() if modality == "audio" else TEXT


@pytest.mark.parametrize("name", [e.name for e in CORRUPTIONS])
def test_deterministic_and_ordered_by_severity(name, digits):
    x = _input(name, digits)
    a, b = corrupt(name, x, 3, seed=0), corrupt(name, x, 3, seed=0)
    assert a == b if isinstance(a, list) else torch.equal(a, b)
    other = corrupt(name, x, 3, seed=1)
    if name not in (
        "brightness",
        "contrast",
        "saturate",
        "gain",
        "band_limit",
        "speed",
        "pixelate",
        "jpeg",
        "gaussian_blur",
        "defocus_blur",
    ):  # no randomness
        assert other != a if isinstance(a, list) else not torch.equal(other, a)
    dist = [_distance(name, x, corrupt(name, x, s, seed=0)) for s in range(1, 6)]
    assert all(d1 < d2 for d1, d2 in zip(dist, dist[1:], strict=False)), dist
    assert dist[0] > 0


def test_every_modality_has_its_families():
    def shipped(modality):  # not the test plugin's, which another test may have loaded
        return [n for n in names_for(modality) if CORRUPTIONS.get(n).fn.__module__.startswith("ptbench.")]

    assert len(shipped("image")) == 13 and len(shipped("audio")) == 6
    assert set(shipped("text")) == {"char_typos", "word_dropout", "word_swaps", "casing"}
    for e in CORRUPTIONS:
        assert len(e.meta["levels"]) == 5 and e.meta["meaning"]


def _digits_final(**kw):
    """A final run of a tiny net fine-tuned on 200 digits (``seed``, ``evaluate``, ``robustness``)."""
    from ptbench.trial import TrialConfig

    return TrialConfig(
        {"name": "test_efficientnet", "params": {"input_size": 16}},
        {"name": "digits", "params": {"train_size": 200, "val_size": 100, "test_size": 100}},
        {"name": "full_finetune"},
        [],
        {"lr": 1e-2, "epochs": 2, "batch_size": 25},
        **kw,
    )


def test_two_runs_of_the_same_final_model_give_identical_robustness_numbers():
    from ptbench.trial import run_trial

    cfg = _digits_final(
        seed=3,
        evaluate=("test", "corruptions", "adversarial"),
        robustness={
            "corruptions": ["gaussian_noise", "elastic"],
            "severities": [2, 4],
            "size": 60,
            "eps": [0.03],
            "pgd_steps": 3,
            "adversarial_size": 30,
        },
    )
    a, b = run_trial(cfg), run_trial(cfg)
    keys = [k for k in a.metrics if k.startswith(("corr_", "adv_"))]
    assert len(keys) == 2 * 2 + 3 + 2  # 4 cells, clean/mean/relative, fgsm/pgd
    assert {k: a.metrics[k] for k in keys} == {k: b.metrics[k] for k in keys}
    assert a.metrics["adv_pgd_eps0.03_accuracy"] <= a.metrics["corr_clean_accuracy"] + 1e-9


def _constant(x):
    return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float()


def test_a_corruption_that_leaves_the_inputs_unchanged_is_skipped_under_all_and_refused_when_named(digits):
    """saturate leaves a grey image as it is; counted, it would add five 'corrupted' accuracies
    equal to the clean one to every grey task's mean, relative robustness and mCE."""
    from ptbench.errors import TrialError
    from ptbench.evaluate.robustness import corruption_metrics

    rgb = digits.expand(-1, 3, -1, -1).clone()
    rgb[:, 0] //= 2
    y = torch.zeros(len(digits), dtype=torch.long)
    out = corruption_metrics(_constant, digits, y, "image", None, [1, 5], 0)
    assert not any("saturate" in k for k in out)
    assert len([k for k in out if k.endswith("_s5_accuracy")]) == 12  # the 13 image families but saturate
    assert "corr_saturate_s1_accuracy" in corruption_metrics(_constant, rgb, y, "image", None, [1], 0)
    with pytest.raises(
        TrialError, match=r"robustness.corruptions: saturate leaves this task's inputs unchanged"
    ):
        corruption_metrics(_constant, digits, y, "image", ["contrast", "saturate"], [1], 0)


def test_casing_counts_for_every_text_model_an_uncased_one_withstands_it():
    """Whether a family applies is decided on the task's inputs, the same for every cell: casing
    changes the texts, and a lower-casing tokenizer reading them as the clean ones has withstood
    it (deciding per backbone left cells of one board with different families, and no mCE)."""
    from ptbench.evaluate.robustness import corruption_metrics

    y = torch.zeros(len(TEXT), dtype=torch.long)
    out = corruption_metrics(_constant, TEXT, y, "text", None, [1, 5], 0)
    assert {"corr_casing_s1_accuracy", "corr_casing_s5_accuracy"} <= set(out)


def test_a_named_list_applies_to_each_task_only_its_own_modality(digits):
    from ptbench.evaluate.robustness import corruption_metrics

    y = torch.zeros(len(digits), dtype=torch.long)
    out = corruption_metrics(_constant, digits, y, "image", ["contrast", "gain"], [1], 0)
    assert [k for k in out if k.startswith("corr_") and k.endswith("_s1_accuracy")] == [
        "corr_contrast_s1_accuracy"
    ]


def test_a_final_run_naming_a_corruption_its_task_cannot_take_fails_before_training():
    from ptbench.errors import TrialError
    from ptbench.trial import run_trial

    cfg = _digits_final(
        seed=0,
        evaluate=("test", "corruptions"),
        robustness={"corruptions": ["contrast", "saturate"]},
    )
    epochs = []
    with pytest.raises(TrialError, match="saturate leaves this task's inputs unchanged"):
        run_trial(cfg, on_epoch=lambda e, m: epochs.append(e))
    assert epochs == []


def test_each_corrupted_batch_is_made_once(digits, monkeypatch):
    """Corrupting costs as much as predicting for some families (elastic, jpeg): checking that a
    family changes the inputs reuses the batches it then predicts on."""
    from ptbench.evaluate import robustness

    made = []
    real = robustness.corrupt
    monkeypatch.setattr(robustness, "corrupt", lambda n, *a: made.append(n) or real(n, *a))
    y = torch.zeros(len(digits), dtype=torch.long)
    robustness.corruption_metrics(_constant, digits, y, "image", ["contrast", "elastic"], [1, 3, 5], 0)
    assert made == ["contrast"] * 3 + ["elastic"] * 3
    made.clear()
    out = robustness.corruption_metrics(_constant, digits, y, "image", None, [1, 5], 0)
    assert len(made) == 2 * 13 and len([k for k in out if k.endswith("_s1_accuracy")]) == 12


def test_an_attack_through_an_lstm_runs_without_cudnn_and_in_eval_mode():
    """cuDNN computes an RNN's backward only in training mode, so attacking an LSTM in eval mode
    raised on GPUs (Resemblyzer, ELMo); the attack turns cuDNN off there, and only there."""
    from ptbench.evaluate.robustness import adversarial_metrics

    seen = []
    x, y = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    for model in (torch.nn.Sequential(torch.nn.LSTM(8, 4)), torch.nn.Sequential(torch.nn.Linear(8, 4))):
        model.train()

        def logits(a, model=model):
            seen.append((torch.backends.cudnn.enabled, model.training))
            return a.flatten(1)[:, :10]

        out = adversarial_metrics(logits, x, y, "image", [0.1], 2, 0, models=(model,))
        assert set(out) == {"adv_fgsm_eps0.1_accuracy", "adv_pgd_eps0.1_accuracy"}
    lstm, linear = seen[: len(seen) // 2], seen[len(seen) // 2 :]
    assert set(lstm) == {(False, False)} and set(linear) == {(torch.backends.cudnn.enabled, False)}


def test_elastic_with_no_displacement_leaves_the_image_as_it_is():
    """Its base grid put -1 and 1 on the corner pixels' centres while grid_sample read them as
    their outer edges: with a zero field an 8 px image already shrank by 12 % and blurred."""
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    out = CORRUPTIONS.get("elastic").fn(x, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_motion_blur_and_reverb_draw_per_input_not_once_per_set():
    """One streak angle for every image of the set (one room for every clip): the family's score
    was one random orientation's. Two copies of an input now get two different corruptions."""
    img = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    img[..., 4:12, 7:9] = 255  # a vertical bar: each angle smears it its own way
    blurred = corrupt("motion_blur", img.expand(2, -1, -1, -1).clone(), 3, seed=0)
    assert not torch.equal(blurred[0], blurred[1])
    clip = _audio()[:1].expand(2, -1).clone()
    echoed = corrupt("reverb", clip, 3, seed=0)
    assert not torch.allclose(echoed[0], echoed[1])
    assert torch.equal(corrupt("motion_blur", img.expand(2, -1, -1, -1).clone(), 3, seed=0), blurred)


def test_gaussian_blur_fits_small_images():
    """At 4 px (image folders may be that small) severity 4's kernel padded by reflection beyond
    the image and every final run with corruptions failed."""
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for severity in (4, 5):
        assert corrupt("gaussian_blur", x, severity, seed=0).shape == x.shape


def test_a_changed_corruption_revision_changes_the_corruption_keys_only(monkeypatch):
    """Final runs corrupted by an earlier implementation must not count under the new one (the
    leaderboard would average the two; a night would call the change a regression)."""
    from ptbench import finals

    rb = {"corruptions": "all", "severities": [1, 3, 5], "size": 50, "eps": [0.02], "pgd_steps": 3}
    both = ["test", "corruptions", "adversarial"]

    def keys():
        test_only = finals.evaluation_key(["test"], rb)
        return finals.family_keys(both, rb), finals.evaluation_key(both, rb), test_only

    before = keys()
    monkeypatch.setattr(finals, "CORRUPTION_REVISION", finals.CORRUPTION_REVISION + 1)
    after = keys()
    assert after[0]["corr"] != before[0]["corr"] and after[0]["adv"] == before[0]["adv"]
    assert after[1] != before[1] and after[2] == before[2]
