"""Grids over a real store: pairing by sentence id, sizes, summaries, saved results."""

import numpy as np
import polars as pl
import pytest

from actstore.errors import AnalysisInputError
from actstore.query import run_query
from actstore.store import Store
from actstore.analyses.grids import GridOptions, load_grid, save_grid, similarity_grid
from actstore.grid_means import cross_lingual_summary, cross_modal_summary

from _store_data import put

D = 48
LATENT = 6


def _latent(ids, rng_seed=123):
    """A shared sentence-level signal: the same id gives the same latent in every set."""
    table = np.random.default_rng(rng_seed).standard_normal((1000, LATENT))
    return table[np.asarray(ids)]


def _make_store(tmp_path, *, shuffle=True):
    """3 languages with DIFFERENT id sets, rows stored in shuffled order, 2 depths."""
    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    id_sets = {"eng": np.arange(1, 61), "fra": np.arange(11, 71), "deu": np.arange(5, 75, 1)}
    for layer in (1, 2):
        for lang, ids in id_sets.items():
            for modality in ("speech", "text"):
                ids_m = ids if modality == "text" else ids[:-4]
                order = rng.permutation(ids_m.size) if shuffle else np.arange(ids_m.size)
                mix = np.linalg.qr(rng.standard_normal((D, LATENT)))[0].T  # orthonormal rows
                x = _latent(ids_m) @ mix + 0.001 * rng.standard_normal((ids_m.size, D))
                put(store, "m", f"{modality}.L{layer}", modality, lang, ids_m[order],
                    x[order].astype(np.float32), layer=layer)
    return store


def test_cross_modal_pairs_rows_by_id_not_position(tmp_path):
    store = _make_store(tmp_path)
    frame = similarity_grid(store, "m", "cross-modal", options=GridOptions(seed=1, keep=0.99))
    assert frame.height == 3 * 2
    # N = smallest language's count of ids with both modalities: eng 56, fra 56, deu 66
    assert set(frame["n"].to_list()) == {56}
    # a planted shared latent: paired by id it is near 1; the shuffled null is far below
    assert frame["score"].min() > 0.95
    assert (frame["score"] - frame["null"]).min() > 0.3
    assert frame["baseline"].null_count() == 0


def test_cross_lingual_shapes_and_intersections(tmp_path):
    store = _make_store(tmp_path)
    frame = similarity_grid(store, "m", "cross-lingual", depths=["L2"], options=GridOptions(keep=0.99))
    counts = frame.group_by("kind").len().sort("kind")
    assert dict(counts.iter_rows()) == {"speech-speech": 3, "speech-text": 9, "text-text": 3}
    # every pair cut to the smallest intersection of its kind
    tt = frame.filter(pl.col("kind") == "text-text")
    assert set(tt["n"].to_list()) == {50}  # eng∩fra = 11..60
    assert frame["score"].min() > 0.9  # same latent across languages by id
    summary = cross_lingual_summary(frame)
    assert summary.filter(pl.col("kind") == "speech-text")["pairs"].to_list() == [6]


def test_global_pairing_uses_ids_shared_by_all(tmp_path):
    store = _make_store(tmp_path)
    frame = similarity_grid(store, "m", "cross-lingual", kinds=["text-text"], depths=["L1"],
                            options=GridOptions(pairing="global"))
    assert set(frame["n"].to_list()) == {50}


def test_recordings_random_is_seeded_and_mean_averages(tmp_path):
    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    ids = np.arange(30)
    for lang in ("eng", "fra"):
        text = rng.standard_normal((30, 8)).astype(np.float32)
        put(store, "m", "text.L1", "text", lang, ids, text)
        for speaker in range(2):
            put(store, "m", "speech.L1", "speech", lang, ids,
                (text + (speaker - 0.5)).astype(np.float32), sample_suffix=f"#spk{speaker}")
    a = similarity_grid(store, "m", "cross-modal", options=GridOptions(seed=3))
    b = similarity_grid(store, "m", "cross-modal", options=GridOptions(seed=3))
    np.testing.assert_array_equal(a["score"].to_numpy(), b["score"].to_numpy())
    # the mean of the two speakers is the text itself: svcca 1
    mean = similarity_grid(store, "m", "cross-modal", options=GridOptions(recording="mean"))
    np.testing.assert_allclose(mean["score"].to_numpy(), 1.0, atol=1e-6)


def test_summaries_save_and_query(tmp_path):
    store = _make_store(tmp_path)
    frame = similarity_grid(store, "m", "cross-modal")
    save_grid(store, frame)
    save_grid(store, frame)  # replacing, not duplicating
    assert load_grid(store, "m").height == frame.height
    summary = cross_modal_summary(frame)
    assert set(summary["group"].to_list()) == {"all", "high"}
    got = run_query(store, "SELECT depth, AVG(score) AS s FROM similarity GROUP BY depth ORDER BY depth")
    assert got.height == 2


def test_bootstrap_interval_brackets_score(tmp_path):
    store = _make_store(tmp_path)
    frame = similarity_grid(store, "m", "cross-modal", depths=["L1"], langs=["eng", "fra"],
                            options=GridOptions(bootstrap=20))
    assert frame["ci_low"].null_count() == 0 and frame["ci_high"].null_count() == 0
    assert (frame["ci_low"] < frame["score"]).all() and (frame["score"] < frame["ci_high"]).all()
    assert (frame["ci_high"] - frame["ci_low"]).max() < 0.1


def test_bad_requests(tmp_path):
    store = _make_store(tmp_path)
    with pytest.raises(AnalysisInputError, match="not stored for model"):
        similarity_grid(store, "m", "cross-modal", depths=["L9"])
    with pytest.raises(AnalysisInputError, match="not stored for model 'm'"):
        similarity_grid(store, "m", "cross-modal", langs=["jpn"])
    with pytest.raises(AnalysisInputError, match="at least 2 languages"):
        similarity_grid(store, "m", "cross-lingual", langs=["eng"])
    with pytest.raises(AnalysisInputError, match="keep"):
        similarity_grid(store, "m", "cross-modal", options=GridOptions(keep=1.5))


def test_language_without_speech_is_left_out_of_speech_kinds(tmp_path):
    store = _make_store(tmp_path)
    rng = np.random.default_rng(5)
    for layer in (1, 2):  # khm: text only (espeak-ng has no Khmer voice)
        put(store, "m", f"text.L{layer}", "text", "khm", np.arange(1, 61),
            rng.standard_normal((60, D)).astype(np.float32), layer=layer)
    frame = similarity_grid(store, "m", "cross-lingual", depths=["L1"])
    tt = frame.filter(pl.col("kind") == "text-text")
    assert "khm" in set(tt["lang_a"]) | set(tt["lang_b"])
    ss = frame.filter(pl.col("kind") == "speech-speech")
    assert "khm" not in set(ss["lang_a"]) | set(ss["lang_b"]) and ss.height == 3
    st = frame.filter(pl.col("kind") == "speech-text")
    assert st.height == 3 * 4 and "khm" not in set(st["lang_a"])
    xm = similarity_grid(store, "m", "cross-modal", depths=["L1"])
    assert "khm" not in set(xm["lang_a"])


def test_all_in_one_pass_equals_separate_grids(tmp_path):
    store = _make_store(tmp_path)
    both = similarity_grid(store, "m", "all", depths=["L1"])
    xm = similarity_grid(store, "m", "cross-modal", depths=["L1"])
    xl = similarity_grid(store, "m", "cross-lingual", depths=["L1"])
    assert both.height == xm.height + xl.height
    key = ["kind", "lang_a", "lang_b"]
    joined = both.join(pl.concat([xm, xl]), on=key, suffix="_sep")
    np.testing.assert_allclose(joined["score"].to_numpy(), joined["score_sep"].to_numpy(), atol=1e-12)


def test_worker_processes_give_identical_results(tmp_path):
    store = _make_store(tmp_path)
    inline = similarity_grid(store, "m", "all", options=GridOptions(workers=1))
    spawned = similarity_grid(store, "m", "all", options=GridOptions(workers=2))
    # same maths, other threads and processes: BLAS may round differently, so floats to 1e-12
    for column in ("score", "null", "baseline"):
        np.testing.assert_allclose(inline[column].to_numpy(), spawned[column].to_numpy(), rtol=0, atol=1e-12)
    for column in ("n", "kx", "ky", "forced"):
        np.testing.assert_array_equal(inline[column].to_numpy(), spawned[column].to_numpy())
