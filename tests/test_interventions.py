"""Interventions on the tiny random-init Whisper, through the `Adapter` protocol: identity clamps change nothing (bitwise), a
fully clamped FFN site equals a hand-built model (known answer), a padded batch equals each item
alone, and bad requests are refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _models import speech_items
from actstore.errors import ActstoreError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.common.clamps import Clamp, capture, check_site, clamped
from actstore.ingest.interventions import random_units, reference_values
from actstore.store import Store

TARGETS = ["the cat sleeps", "rain falls on the hills today", "we read"]


@pytest.fixture(scope="module")
def adapter(tiny_whisper_dir):
    return load_adapter(str(tiny_whisper_dir))


def target_loglik(adapter, items, clamps=()):
    return adapter.target_loglik(items, clamps)


def whisper_sites(adapter):
    return adapter.intervention_sites()


def _items():
    items = speech_items([8000, 12000, 14000])
    for it, t in zip(items, TARGETS):
        object.__setattr__(it, "target", t)
    return items


def test_clamping_to_current_values_changes_nothing_bitwise(adapter):
    items = _items()
    base = target_loglik(adapter, items)
    sites = whisper_sites(adapter)
    for name in ("decoder.L1.ffn", "decoder.L1.self_attn.v", "speech.L1.ffn"):
        units = (0, 3, 17)
        now = capture(sites, name, lambda: target_loglik(adapter, items))
        same = target_loglik(adapter, items, [Clamp(name, units, now[..., list(units)])])
        assert np.array_equal(same[0], base[0]) and np.array_equal(same[1], base[1])
    moved = target_loglik(adapter, items, [Clamp("decoder.L1.ffn", (0, 3, 17), torch.full((3,), 5.0))])
    assert not np.allclose(moved[0], base[0])  # the hooks do act


def test_constant_ffn_site_equals_a_hand_built_model(adapter):
    """fc1 = 0 weights, bias b makes fc2's input GELU(b) at every position: clamping every unit
    of decoder.L1.ffn to GELU(b) must give that model's numbers."""
    items = _items()
    dec = adapter._load_decoder()
    layer = dec.layers[0]
    width = layer.fc2.in_features
    b = torch.linspace(-2, 2, width)
    consts = torch.nn.functional.gelu(b)
    clamped_ll = target_loglik(adapter, items, [Clamp("decoder.L1.ffn", tuple(range(width)), consts)])
    saved = (layer.fc1.weight.detach().clone(), layer.fc1.bias.detach().clone())
    try:
        with torch.no_grad():
            layer.fc1.weight.zero_()
            layer.fc1.bias.copy_(b)
        hand = target_loglik(adapter, items)
    finally:
        with torch.no_grad():
            layer.fc1.weight.copy_(saved[0])
            layer.fc1.bias.copy_(saved[1])
    np.testing.assert_allclose(clamped_ll[0], hand[0], atol=1e-5, rtol=0)
    assert not np.allclose(hand[0], target_loglik(adapter, items)[0])


@pytest.mark.parametrize("clamps", [[], [Clamp("decoder.L1.ffn", (1, 2, 40), torch.tensor([0.5, -1.0, 2.0]))]])
def test_padded_batch_equals_each_item_alone(adapter, clamps):
    items = _items()
    batch = target_loglik(adapter, items, clamps)
    for i, it in enumerate(items):
        alone = target_loglik(adapter, [it], clamps)
        np.testing.assert_allclose(batch[0][i], alone[0][0], atol=1e-5, rtol=0)
        assert batch[1][i] == alone[1][0]
    assert len(set(batch[1].tolist())) == 3  # the targets do differ in length


def test_bad_requests_are_refused_in_one_sentence(adapter, tmp_path):
    with pytest.raises(ActstoreError, match="Unknown site 'decoder.L9.ffn'"):
        check_site(whisper_sites(adapter), "decoder.L9.ffn")
    with pytest.raises(ActstoreError, match="outside site"):
        random_units(64, 65, 0, "decoder.L1.ffn")
    store = _store_with_site(tmp_path, "decoder.L1.self_attn.q")
    with pytest.raises(ActstoreError, match="not stored for model .m."):
        reference_values(store, "m", "decoder.L1.ffn", (1, 2), "median")
    with pytest.raises(ActstoreError, match="Unknown site"):
        with clamped(whisper_sites(adapter), [Clamp("decoder.L1.nope", (0,), torch.zeros(1))]):
            pass


def _store_with_site(tmp_path, site: str, width: int = 32) -> Store:
    """A store of model `m` holding 3 rows of one site."""
    from _store_data import activation_rows

    store = Store.open(tmp_path / "db")
    vectors = np.arange(3 * width, dtype=np.float32).reshape(3, width)
    store.register_points("m", [{"point": site, "modality": "speech", "layer": 1, "width": width,
                                 "vector_dtype": "float32"}])
    store.write_activations("m", width, activation_rows("m", site, "speech", "eng", [1, 2, 3], vectors),
                            vector_dtype="float32", replace=False)
    return store


def test_reference_values_are_the_median_and_mean_of_stored_rows(tmp_path):
    store = _store_with_site(tmp_path, "decoder.L1.ffn", width=8)
    x = np.arange(24, dtype=np.float64).reshape(3, 8)
    np.testing.assert_allclose(reference_values(store, "m", "decoder.L1.ffn", (0, 5), "median"), x[1, [0, 5]])
    np.testing.assert_allclose(reference_values(store, "m", "decoder.L1.ffn", (2,), "mean"), x[:, 2].mean())
    assert reference_values(store, "m", "decoder.L1.ffn", (2,), "zero").tolist() == [0.0]


def test_first_step_language_probs_and_generate_follow_the_known_answers(adapter):
    """Identity clamps change nothing (bitwise), a padded batch equals each item alone, and
    greedy decoding is deterministic and bounded."""
    items = _items()
    base = adapter.first_step_language_probs(items)
    assert base.shape == (3,) and ((base > 0) & (base <= 1)).all()
    sites = adapter.intervention_sites()
    now = capture(sites, "decoder.L1.ffn", lambda: adapter.first_step_language_probs(items))
    same = adapter.first_step_language_probs(items, [Clamp("decoder.L1.ffn", (0, 3), now[..., [0, 3]])])
    assert np.array_equal(same, base)
    moved = [Clamp("speech.L1.ffn", (1, 2, 40), torch.tensor([3.0, -3.0, 6.0]))]
    for clamps in ([], moved):
        batch = adapter.first_step_language_probs(items, clamps)
        alone = [adapter.first_step_language_probs([it], clamps)[0] for it in items]
        np.testing.assert_allclose(batch, alone, atol=1e-5, rtol=0)
        text = adapter.generate(items, clamps, max_new_tokens=6)
        assert text == adapter.generate(items, clamps, max_new_tokens=6)
        assert all(isinstance(t, str) and 0 < len(t) <= 6 for t in text)  # byte tokens: <= 1 char each
        assert [adapter.generate([it], clamps, max_new_tokens=6)[0] for it in items] == text
    assert not np.allclose(adapter.first_step_language_probs(items, moved), base)


def test_the_protocol_refuses_what_a_family_cannot_do(adapter, tiny_bert_dir):
    with pytest.raises(ActstoreError, match="cannot condition its decoder on text; use speech"):
        adapter.target_loglik(_items(), conditioning="text")
    bert = load_adapter(str(tiny_bert_dir))
    with pytest.raises(ActstoreError, match="--generate needs a family that decodes; .* is encoder-only"):
        bert.generate(_items())
    with pytest.raises(ActstoreError, match="declares no intervention sites"):
        bert.intervention_sites()
    assert bert.first_step_language_probs(_items()) is None


def test_one_batch_runs_the_encoder_once_under_decoder_clamps(adapter):
    """target_loglik, first_step_language_probs and generate of one batch share one encoder run
    (a decoder clamp cannot change it); an encoder hook or changed weights force a new run."""
    items, enc, calls = _items(), adapter.encoder, []
    forward = enc.forward
    enc.forward = lambda *a, **k: (calls.append(1), forward(*a, **k))[1]
    try:
        dec_clamp = [Clamp("decoder.L1.ffn", (1, 2), torch.tensor([0.5, -1.0]))]
        first = adapter.target_loglik(items, dec_clamp)
        adapter.first_step_language_probs(items, dec_clamp)
        adapter.generate(items, dec_clamp, max_new_tokens=2)
        assert len(calls) <= 1
        n = len(calls)
        adapter.target_loglik(items, [Clamp("speech.L1.ffn", (1,), torch.tensor([2.0]))])
        adapter.target_loglik(items, [Clamp("speech.L1.ffn", (1,), torch.tensor([2.0]))])
        assert len(calls) == n + 2  # encoder clamps: recomputed every time
        saved = enc.layers[0].fc1.bias.detach().clone()
        with torch.no_grad():
            enc.layers[0].fc1.bias.add_(1.0)
        try:
            assert not np.array_equal(adapter.target_loglik(items, dec_clamp)[0], first[0])
        finally:
            with torch.no_grad():
                enc.layers[0].fc1.bias.copy_(saved)
    finally:
        del enc.forward
