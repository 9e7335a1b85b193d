"""`actstore intervene` on the tiny random-init Whisper: rows in the `interventions` table for the
chosen set and its random controls; bad requests refused in one sentence, the store unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from _cli import cli
from actstore.ingest.items import SAMPLE_RATE
from actstore.schema import INTERVENTIONS_TABLE
from actstore.store import Store

TEXTS = ["The cat sleeps.", "Rain falls on the hills.", "We read books."]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("iv_manifest")
    rows = ["sentence_id,lang,modality,text,audio"]
    for i in range(1, 4):
        n = int((0.5 + 0.2 * (i - 1)) * SAMPLE_RATE)
        sf.write(root / f"c{i}.wav", (0.1 * np.random.default_rng(i).standard_normal(n)).astype(np.float32),
                 SAMPLE_RATE, subtype="PCM_16")
        rows += [f'{i},eng,speech,"{TEXTS[i - 1]}",c{i}.wav', f'{i},eng,text,"{TEXTS[i - 1]}",']
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    return root / "m.csv"


@pytest.fixture(scope="module")
def db(tmp_path_factory, tiny_whisper_dir, manifest):
    path = str(tmp_path_factory.mktemp("iv_db") / "db")
    cli("ingest", "--db", path, "--model", str(tiny_whisper_dir), "--source", "manifest", "--data-dir",
        str(manifest), "--langs", "eng", "--modalities", "speech", "--points", "decoder.L1.ffn", "--quiet")
    return path


def _intervene(db, model, manifest, *extra, code=0):
    return cli("intervene", "--db", db, "--model", str(model), "--data-dir", str(manifest),
               "--langs", "eng", *extra, code=code).output


def test_intervene_stores_the_set_its_controls_and_their_intervals(db, tiny_whisper_dir, manifest):
    args = ("--site", "decoder.L1.ffn", "--units", "3,17,42", "--seeds", "0,1", "--boot", "200")
    out = _intervene(db, tiny_whisper_dir, manifest, *args)
    assert "RANDOM-INIT" in out and "rows saved to table 'interventions'" in out and "language prob" in out
    rows = Store.open(db).read_results(INTERVENTIONS_TABLE).sort("neuron_set", "seed")
    assert rows["neuron_set"].to_list() == ["explicit", "matched", "matched", "random", "random"]
    assert rows["seed"].to_list() == [-1, 0, 1, 0, 1]
    assert rows["units"][0] == "3,17,42" and rows["k"].to_list() == [3] * 5
    assert rows["units"].n_unique() == 5 and rows["random_init"].all()
    assert (rows["n_sentences"] == 3).all() and (rows["value"] == "median").all()
    assert (rows["modality"] == "speech").all() and (rows["target_lang"] == "eng").all()
    assert (rows["boot"] == 200).all() and (rows["max_new_tokens"] == 0).all()
    np.testing.assert_allclose(rows["delta_per_token"].to_numpy(),
                               (rows["clamped_loglik_per_token"] - rows["loglik_per_token"]).to_numpy(), atol=1e-12)
    assert (rows["loglik_per_token"] < 0).all() and rows["loglik_per_token"].n_unique() == 1
    assert (rows["ci_low"] <= rows["ci_high"]).all() and rows["ci_low"].n_unique() == 5
    assert rows["lang_prob"].n_unique() == 1 and ((rows["clamped_lang_prob"] > 0) & (rows["clamped_lang_prob"] <= 1)).all()
    assert (rows["lang_prob_ci_low"] <= rows["lang_prob_ci_high"]).all()
    assert rows["lang_share"].is_null().all() and (rows["displacement"] > 0).all()
    _intervene(db, tiny_whisper_dir, manifest, *args)  # the same request: the same numbers, upserted
    again = Store.open(db).read_results(INTERVENTIONS_TABLE).sort("neuron_set", "seed")
    assert again.drop("created_at", strict=False).equals(rows.drop("created_at", strict=False))


def test_generate_judges_the_output_language_with_and_without_the_clamp(tmp_path, tiny_whisper_dir, manifest):
    path = str(tmp_path / "db")
    Store.open(path, create=True)
    out = _intervene(path, tiny_whisper_dir, manifest, "--site", "decoder.L1.ffn", "--units", "1,2", "--seeds", "4",
                     "--controls", "random", "--value", "zero", "--generate", "--max-new-tokens", "4",
                     "--boot", "50")
    assert "output in eng" in out
    rows = Store.open(path).read_results(INTERVENTIONS_TABLE)
    assert rows["neuron_set"].to_list() == ["explicit", "random"] and (rows["max_new_tokens"] == 4).all()
    for col in ("lang_share", "clamped_lang_share"):
        assert ((rows[col] >= 0) & (rows[col] <= 1)).all()
    assert (rows["lang_share_ci_low"] <= rows["lang_share_ci_high"]).all()
    assert rows["displacement"].is_null().all()  # zero with no stored rows: nothing to measure it on


@pytest.mark.parametrize("extra,message", [
    (("--site", "decoder.L7.ffn", "--units", "1"), "Unknown site 'decoder.L7.ffn'"),
    (("--site", "decoder.L1.ffn", "--top", "65"), "outside site 'decoder.L1.ffn'"),
    (("--site", "decoder.L1.self_attn.q", "--units", "1"), "not stored"),
    (("--site", "decoder.L1.ffn", "--units", "1,64"), "outside site"),
    (("--site", "decoder.L1.self_attn.q", "--units", "1", "--value", "zero"), "not stored"),
    (("--site", "decoder.L1.ffn", "--units", "1", "--conditioning", "text"),
     "cannot condition its decoder on text; use speech"),
    (("--site", "decoder.L1.ffn", "--units", "1", "--target-lang", "fra"), "has no fra sentences"),
    (("--site", "decoder.L1.ffn", "--units", "1", "--controls", "shuffled"), "Unknown control(s) ['shuffled']"),
    (("--site", "decoder.L1.ffn", "--units", "1", "--boot", "-1"), "--boot and --max-new-tokens must be >= 0"),
])
def test_bad_requests_leave_the_store_unchanged(db, tiny_whisper_dir, manifest, extra, message):
    store = Store.open(db)
    before = store.read_results(INTERVENTIONS_TABLE)
    out = _intervene(db, tiny_whisper_dir, manifest, *extra, code=1)
    assert message in out and "Traceback" not in out and out.count("Error:") == 1
    after = store.read_results(INTERVENTIONS_TABLE)
    assert (before is None and after is None) or before.equals(after)


@pytest.mark.parametrize("extra,message", [
    ((), "An intervention needs a family that decodes; hf-text is encoder-only."),
    (("--generate",), "--generate needs a family that decodes; hf-text is encoder-only."),
    (("--generate", "--conditioning", "text"), "--generate needs a family that decodes; hf-text is encoder-only."),
])
def test_an_encoder_only_family_is_refused(db, tiny_bert_dir, manifest, extra, message):
    out = _intervene(db, tiny_bert_dir, manifest, "--site", "text.L1.ffn", "--units", "1", *extra, code=1)
    assert message in out and out.count("Error:") == 1


def test_top_k_reads_the_stored_ranking_and_zero_needs_no_reference(tmp_path, tiny_whisper_dir, manifest):
    import polars as pl

    from actstore.schema import NEURON_SITES_TOP_TABLE

    path = str(tmp_path / "db")
    store = Store.open(path, create=True)
    ranked = pl.DataFrame({"model": "tiny_whisper", "depth": "decoder.L1.self_attn.v", "langs": "eng",
                           "corpus": "c", "target_kind": "lang", "target": "eng", "within": "all",
                           "direction": "up", "rank": [3, 1, 2, 4], "neuron": [30, 10, 20, 40]})
    store.write_results(NEURON_SITES_TOP_TABLE, ranked, key=("model", "depth", "target", "rank"))
    back = Store.open(path)  # reopened: what the CLI wrote
    _intervene(path, tiny_whisper_dir, manifest, "--name", "tiny_whisper", "--site", "decoder.L1.self_attn.v",
               "--top", "2", "--target", "eng", "--value", "zero", "--seeds", "5", "--controls", "random")
    rows = back.read_results(INTERVENTIONS_TABLE).sort("seed")
    assert rows["neuron_set"].to_list() == ["top:eng", "random"]
    assert rows["units"][0] == "10,20" and rows["k"].to_list() == [2, 2]
    assert rows["delta_per_token"][0] != 0.0
    out = _intervene(path, tiny_whisper_dir, manifest, "--name", "tiny_whisper", "--site",
                     "decoder.L1.self_attn.v", "--top", "5", "--value", "zero", code=1)
    assert "Only 4 top neurons are stored" in out


def test_rows_written_by_the_old_code_still_read(tmp_path, tiny_whisper_dir, manifest):
    """The table predates conditioning, intervals and generation: old rows keep their numbers and
    read those columns as null beside the new rows."""
    import polars as pl

    path = str(tmp_path / "db")
    store = Store.open(path, create=True)
    old = pl.DataFrame({"model": "tiny_whisper", "site": "decoder.L1.ffn", "neuron_set": "explicit", "seed": -1,
                        "value": "zero", "lang": "eng", "modality": "speech", "corpus": "c", "k": 1, "units": "1",
                        "n_sentences": 3, "n_tokens": 40, "loglik_per_token": -5.0,
                        "clamped_loglik_per_token": -5.5, "delta_per_token": -0.5, "random_init": True})
    store.write_results(INTERVENTIONS_TABLE, old,
                        key=("model", "site", "neuron_set", "seed", "value", "lang", "corpus", "units"))
    _intervene(path, tiny_whisper_dir, manifest, "--name", "tiny_whisper", "--site", "decoder.L1.ffn",
               "--units", "1", "--value", "zero", "--seeds", "0", "--controls", "random", "--boot", "20")
    rows = Store.open(path).read_results(INTERVENTIONS_TABLE)
    assert rows.height == 3
    first = rows.filter(pl.col("corpus") == "c")
    assert first["delta_per_token"].to_list() == [-0.5]
    assert first["ci_low"].is_null().all() and first["boot"].is_null().all() and first["lang_prob"].is_null().all()
    assert rows.filter(pl.col("corpus") != "c")["ci_low"].is_not_null().all()


def test_held_out_items_give_each_conditioning_its_sentences_and_targets(manifest):
    from actstore.errors import ActstoreError
    from actstore.ingest.intervention_run import held_out_items

    items, corpus = held_out_items("manifest", str(manifest), ["eng"], "devtest", 2, ("speech", "text"))
    assert [(it.modality, it.sentence_id) for it in items] == [("speech", 1), ("speech", 2), ("text", 1), ("text", 2)]
    assert [it.target for it in items] == TEXTS[:2] * 2 and {it.target_lang for it in items} == {"eng"}
    assert items[0].audio is not None and items[2].text == TEXTS[0] and corpus.startswith("manifest:m")
    with pytest.raises(ActstoreError, match="has no fra sentences to decode as targets"):
        held_out_items("manifest", str(manifest), ["eng"], "devtest", 2, ("speech",), target_lang="fra")


def test_top_k_takes_the_positive_ranking_whatever_the_stored_row_order(tmp_path):
    """`analyze neurons` stores both directions; --top means "high activation = the target"."""
    import polars as pl

    from actstore.ingest.interventions import top_units
    from actstore.schema import NEURON_SITES_TOP_TABLE

    store = Store.open(str(tmp_path / "db"), create=True)
    base = {"model": "m", "depth": "decoder.L1.ffn", "langs": "eng,fra", "corpus": "c", "target_kind": "lang",
            "target": "eng", "within": "speech"}
    ranked = pl.concat([pl.DataFrame({**base, "direction": "negative", "rank": [1, 2], "neuron": [7, 8]}),
                        pl.DataFrame({**base, "direction": "positive", "rank": [2, 1], "neuron": [4, 3]})])
    store.write_results(NEURON_SITES_TOP_TABLE, ranked, key=("model", "depth", "target", "direction", "rank"))
    assert top_units(Store.open(str(tmp_path / "db")), "m", "decoder.L1.ffn", 2, "eng", width=16) == (3, 4)
