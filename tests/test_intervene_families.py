"""The intervention protocol on tiny random-init SeamlessM4T v2 and Qwen2-Audio: the target
log-likelihood and greedy decoding equal transformers' own (outside reference), clamping units
to their current values changes nothing (bitwise), a padded batch equals each item alone (1e-5)
with and without a clamp, a whole FFN site held at constants equals a hand-built model; and the
whole study through the CLI (ingest --sites, analyze neurons, intervene --top k with random
controls, report) gives the same numbers on a rerun and a page with the neuron study."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
import torch

from _cli import cli
from _models import speech_items, text_items, write_manifest
from actstore.errors import ActstoreError, DataSourceError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.common.clamps import Clamp, capture
from actstore.schema import INTERVENTIONS_TABLE
from actstore.store import Store

TARGETS = ["Le chat dort.", "La pluie tombe sur les collines aujourd'hui.", "Oui"]
SOURCES = [("eng", "The cat sleeps."), ("eng", "Rain falls on the hills today."), ("fra", "Oui.")]


@pytest.fixture(scope="module")
def seamless(tiny_seamless_dir):
    return load_adapter(str(tiny_seamless_dir))


@pytest.fixture(scope="module")
def qwen(tiny_qwen2_audio_dir):
    return load_adapter(str(tiny_qwen2_audio_dir))


def _items(conditioning: str, target_lang: str | None = "fra"):
    """Items with a target; speech lengths give SeamlessM4T an even fbank length (see its adapter)."""
    base = speech_items([9000, 12000, 16000]) if conditioning == "speech" else text_items(SOURCES)
    return [dataclasses.replace(it, target=t, target_lang=target_lang) for it, t in zip(base, TARGETS)]


# -- outside references: transformers' own models -------------------------------------------------

def test_seamless_loglik_and_greedy_equal_transformers(seamless, tiny_seamless_dir):
    from transformers import SeamlessM4Tv2ForSpeechToText, SeamlessM4Tv2ForTextToText

    tok = seamless.tokenizer
    target = tok(TARGETS[0], src_lang="fra")["input_ids"]  # __fra__ tokens </s>
    dec_in = torch.tensor([[seamless.config.decoder_start_token_id] + target[:-1]])

    def reference(logits):  # scored: every token after the forced __fra__, </s> included
        lp = torch.log_softmax(logits.float(), -1)[0]
        return float(lp[torch.arange(1, len(target)), torch.tensor(target[1:])].sum())

    (text,) = _items("text")[:1]
    t2t = SeamlessM4Tv2ForTextToText.from_pretrained(str(tiny_seamless_dir)).eval()
    src = tok(text.text, src_lang="eng", return_tensors="pt")
    (speech,) = _items("speech")[:1]
    s2t = SeamlessM4Tv2ForSpeechToText.from_pretrained(str(tiny_seamless_dir)).eval()
    feats = seamless.feature_extractor([speech.audio], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        want_text = reference(t2t(**src, decoder_input_ids=dec_in).logits)
        want_speech = reference(s2t(**feats, decoder_input_ids=dec_in).logits)
        greedy = t2t.generate(**src, decoder_input_ids=dec_in[:, :2], do_sample=False, num_beams=1,
                              max_new_tokens=6)
    ll, n = seamless.target_loglik([text], conditioning="text")
    assert n[0] == len(target) - 1
    np.testing.assert_allclose(ll[0], want_text, atol=1e-4, rtol=0)
    np.testing.assert_allclose(seamless.target_loglik([speech])[0][0], want_speech, atol=1e-4, rtol=0)
    out = seamless.generate([text], max_new_tokens=6, conditioning="text")
    assert out == [tok.decode(greedy[0, 2:], skip_special_tokens=True).strip()]


def test_qwen_loglik_and_greedy_equal_transformers_with_its_processor(qwen):
    from actstore.ingest.adapters.qwen2_audio.prompts import AUDIO_SLOT, PROMPT_TEMPLATE

    proc = qwen.processor
    (item,) = _items("speech")[:1]
    slot = AUDIO_SLOT.format(bos=proc.audio_bos_token, audio=proc.audio_token, eos=proc.audio_eos_token)
    enc = proc(text=PROMPT_TEMPLATE.format(audio=slot, text=""), audio=[item.audio], sampling_rate=16000,
               return_tensors="pt")
    target = qwen.tokenizer(item.target)["input_ids"] + [qwen.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    n = enc["input_ids"].shape[1]
    ids = torch.cat([enc["input_ids"], torch.tensor([target])], 1)
    with torch.no_grad():
        logits = qwen.model(input_ids=ids, attention_mask=torch.ones_like(ids), input_features=enc["input_features"],
                            feature_attention_mask=enc["feature_attention_mask"]).logits
        greedy = qwen.model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=5)
    lp = torch.log_softmax(logits.float(), -1)[0]
    want = float(lp[torch.arange(n - 1, n - 1 + len(target)), torch.tensor(target)].sum())
    ll, count = qwen.target_loglik([item])
    assert count[0] == len(target)
    np.testing.assert_allclose(ll[0], want, atol=1e-4, rtol=0)
    assert qwen.generate([item], max_new_tokens=5) == [qwen.tokenizer.decode(greedy[0, n:], skip_special_tokens=True).strip()]


# -- known answers of the clamps ------------------------------------------------------------------

CASES = [("seamless", "speech", ("speech.L1.ffn1", "decoder.L1.ffn", "decoder.L1.cross_attn.v")),
         ("seamless", "text", ("text.L2.ffn", "decoder.L1.self_attn.k")),
         ("qwen", "speech", ("speech.llm.L1.ffn", "speech.llm.L2.self_attn.v")),
         ("qwen", "text", ("text.llm.L3.ffn", "text.llm.L1.self_attn.k"))]
MOVED = {"seamless": Clamp("decoder.L1.ffn", (1, 2, 40), torch.tensor([3.0, -3.0, 6.0])),
         "qwen": Clamp("speech.llm.L1.ffn", (1, 2, 40), torch.tensor([3.0, -3.0, 6.0]))}


@pytest.mark.parametrize("family,conditioning,sites", CASES)
def test_clamping_to_current_values_changes_nothing_bitwise(family, conditioning, sites, request):
    adapter = request.getfixturevalue(family)
    items = _items(conditioning)
    base = adapter.target_loglik(items, conditioning=conditioning)
    every = adapter.intervention_sites()
    for name in sites:
        now = capture(every, name, lambda: adapter.target_loglik(items, conditioning=conditioning))
        same = adapter.target_loglik(items, [Clamp(name, (0, 3, 17), now[..., [0, 3, 17]])], conditioning)
        assert np.array_equal(same[0], base[0]) and np.array_equal(same[1], base[1]), name
    moved = adapter.target_loglik(items, [MOVED[family]], conditioning)
    assert np.abs(moved[0] - base[0]).max() > 1e-4  # the hooks do act


@pytest.mark.slow
@pytest.mark.parametrize("family,conditioning", [(f, c) for f, c, _ in CASES])
def test_padded_batch_equals_each_item_alone_with_and_without_a_clamp(family, conditioning, request):
    adapter = request.getfixturevalue(family)
    items = _items(conditioning)
    for clamps in ([], [MOVED[family]]):
        batch = adapter.target_loglik(items, clamps, conditioning)
        for i, it in enumerate(items):
            alone = adapter.target_loglik([it], clamps, conditioning)
            np.testing.assert_allclose(batch[0][i], alone[0][0], atol=1e-5, rtol=0)
            assert batch[1][i] == alone[1][0]
        assert len(set(batch[1].tolist())) == 3  # the targets differ in length
    text = adapter.generate(items, clamps, max_new_tokens=3, conditioning=conditioning)  # clamped
    assert text == [adapter.generate([it], clamps, 3, conditioning)[0] for it in items]


def test_seamless_constant_ffn_site_equals_a_hand_built_model(seamless):
    """fc1 = 0 weights with bias b makes fc2's input act(b) everywhere: clamping every unit of
    decoder.L1.ffn to act(b) must give that model's numbers."""
    items = _items("text")
    ffn = seamless._load_decoder().layers[0].ffn
    width = ffn.fc2.in_features
    b = torch.linspace(-2, 2, width)
    clamped = seamless.target_loglik(items, [Clamp("decoder.L1.ffn", tuple(range(width)), ffn.act(b))], "text")
    saved = (ffn.fc1.weight.detach().clone(), ffn.fc1.bias.detach().clone())
    try:
        with torch.no_grad():
            ffn.fc1.weight.zero_()
            ffn.fc1.bias.copy_(b)
        hand = seamless.target_loglik(items, conditioning="text")
    finally:
        with torch.no_grad():
            ffn.fc1.weight.copy_(saved[0])
            ffn.fc1.bias.copy_(saved[1])
    np.testing.assert_allclose(clamped[0], hand[0], atol=1e-5, rtol=0)
    assert np.abs(hand[0] - seamless.target_loglik(items, conditioning="text")[0]).max() > 1e-4


def test_qwen_zeroed_ffn_site_equals_a_zeroed_down_proj(qwen):
    """down_proj has no bias: holding every unit of its input at 0 == a zero down_proj."""
    items = _items("speech")
    down = qwen.llm.layers[1].mlp.down_proj
    width = down.in_features
    clamped = qwen.target_loglik(items, [Clamp("text.llm.L2.ffn", tuple(range(width)), torch.zeros(width))])
    saved = down.weight.detach().clone()
    try:
        with torch.no_grad():
            down.weight.zero_()
        hand = qwen.target_loglik(items)
    finally:
        with torch.no_grad():
            down.weight.copy_(saved)
    np.testing.assert_allclose(clamped[0], hand[0], atol=1e-5, rtol=0)
    assert np.abs(hand[0] - qwen.target_loglik(items)[0]).max() > 1e-4


def test_seamless_reuses_an_encoding_only_while_nothing_can_change_it(seamless, monkeypatch):
    calls = []
    real = seamless._speech_inputs
    monkeypatch.setattr(seamless, "_speech_inputs", lambda items: calls.append(1) or real(items))
    items = _items("speech")
    seamless._encoding_memo = None
    base = seamless.target_loglik(items)
    seamless.target_loglik(items, [MOVED["seamless"]])  # a decoder clamp: the same encoding
    seamless.generate(items, [MOVED["seamless"]], max_new_tokens=2)
    assert len(calls) == 1
    seamless.target_loglik(items, [Clamp("speech.L1.ffn1", (0,), torch.zeros(1))])  # an encoder clamp
    assert len(calls) == 2
    seamless.target_loglik(items)  # the clamped encoding was not kept
    seamless.target_loglik(items[:2])  # other items
    assert len(calls) == 4
    seamless._encoding_memo = None
    assert np.array_equal(seamless.target_loglik(items)[0], base[0])


def test_the_families_declare_what_they_condition_on_and_refuse_the_rest(seamless, qwen):
    assert type(seamless).conditionings == ("speech", "text") == type(qwen).conditionings
    assert seamless.first_step_language_probs(_items("speech")) is None  # the language is forced
    assert qwen.first_step_language_probs(_items("speech")) is None
    with pytest.raises(ActstoreError, match="cannot condition its decoder on video; use speech or text"):
        seamless.target_loglik(_items("speech"), conditioning="video")
    with pytest.raises(DataSourceError, match="no text to condition on"):
        qwen.target_loglik(_items("speech"), conditioning="text")
    with pytest.raises(DataSourceError, match="no target sentence"):
        qwen.target_loglik([dataclasses.replace(it, target=None) for it in _items("speech")])
    assert set(qwen.intervention_sites()) == set(qwen.optional_points("speech") + qwen.optional_points("text"))


# -- the study through the CLI --------------------------------------------------------------------

SENTENCES = {"eng": ["The cat sleeps.", "Rain falls.", "We read books."],
             "fra": ["Le chat dort.", "La pluie tombe.", "Nous lisons."]}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Speech (0.5-0.7 s noise) and text of three sentences in English and French."""
    return write_manifest(tmp_path_factory.mktemp("iv_families"), SENTENCES)


@pytest.mark.slow
@pytest.mark.parametrize("family,ingest,sites,site,extra", [
    ("tiny_seamless_dir", ("--layers", "1", "--sites", "ffn", "--target-lang", "eng"), "decoder.*",
     "decoder.L1.ffn", ("--target-lang", "eng")),
    ("tiny_qwen2_audio_dir", ("--layers", "4", "--sites", "ffn"), "speech.llm.*,text.llm.*",
     "speech.llm.L1.ffn", ()),
])
def test_the_study_through_the_cli_is_deterministic(family, ingest, sites, site, extra, tmp_path, manifest,
                                                    request):
    model = request.getfixturevalue(family)
    db = str(tmp_path / "db")
    common = ("--db", db, "--model", model, "--data-dir", manifest, "--langs", "eng,fra")
    cli("ingest", *common, "--source", "manifest", *ingest, "--quiet")
    name = Store.open(db).models()[0]
    cli("analyze", "neurons", "--db", db, "--model", name, "--sites", sites, "--k", "5", "--global-k", "20",
        "--boot", "20", "--quiet")
    runs = []
    for _ in range(2):
        out = cli("intervene", *common, "--site", site, "--top", "3", "--target", "eng", "--seeds", "0,1",
                  "--limit", "2", "--boot", "50", "--generate", "--max-new-tokens", "3", *extra).output
        assert "RANDOM-INIT" in out
        runs.append(Store.open(db).read_results(INTERVENTIONS_TABLE)
                    .sort("modality", "neuron_set", "seed", "lang"))
    rows = runs[0]
    # per conditioning (both by default) and language: the set, 2 random and 2 matched controls
    assert rows.height == 2 * 2 * 5 and set(rows["modality"]) == {"speech", "text"}
    assert rows.group_by("neuron_set").len().sort("neuron_set")["len"].to_list() == [8, 8, 4]
    assert rows.filter(pl.col("neuron_set") == "random")["units"].n_unique() == 2  # one set per seed
    assert rows["random_init"].all() and (rows["n_sentences"] == 2).all()
    assert (rows["delta_per_token"] != 0).any()
    assert runs[0].equals(runs[1])  # the same numbers on a rerun (same machine: bitwise)
    page = tmp_path / "report.html"
    cli("report", "--db", db, "--model", name, "--out", page)
    html = page.read_text()
    assert '<section id="neuron-sites">' in html and '<section id="interventions">' in html
    assert "RANDOM-INIT" in html
