"""Retrieval grids, t-SNE maps and neuron tables computed from a real store."""

import numpy as np
import polars as pl
import pytest

from actstore.errors import AnalysisInputError
from actstore.query import run_query
from actstore.store import Store
from actstore.analyses.neuron_maps import load_neurons, neuron_tables, save_neurons
from actstore.analyses.retrieval_grid import load_retrieval, retrieval_grid, save_retrieval
from actstore.reports.summaries import retrieval_rows, retrieval_table
from actstore.analyses.tsne_maps import load_tsne, save_tsne, tsne_maps

from _store_data import put

LANGS = ("eng", "fra", "deu")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Languages share a sentence signal; each language adds its own offset on a few dims."""
    s = Store.open(tmp_path_factory.mktemp("an") / "db")
    rng = np.random.default_rng(0)
    ids = np.arange(40)
    signal = rng.standard_normal((40, 16))
    for li, lang in enumerate(LANGS):
        for modality in ("speech", "text"):
            x = signal + 0.1 * rng.standard_normal((40, 16))
            x[:, li] += 4.0  # dimension li is selective for language li
            put(s, "m", f"{modality}.L1", modality, lang, ids, x.astype(np.float32), layer=1)
    return s


def test_retrieval_grid_finds_aligned_sentences(store):
    frame = retrieval_grid(store, "m")
    assert set(frame["kind"].unique()) == {"speech-speech", "text-text", "speech-text"}
    # 3 + 3 + 9 pairs, two directions each
    assert frame.height == 2 * (3 + 3 + 9)
    # chance is 1/40; the language offsets make cross-language retrieval harder than within
    assert frame["p_at_1"].min() > 0.5
    same = frame.filter(pl.col("lang_a") == pl.col("lang_b"))
    assert same["p_at_1"].min() == 1.0 and same["xsim_error"].max() == 0.0
    assert frame["random_init"].to_list()[0] is False
    save_retrieval(store, frame)
    save_retrieval(store, frame)
    assert load_retrieval(store, "m").height == frame.height
    deepest, table = retrieval_table(retrieval_rows(frame))  # the report's per-language table
    assert table["lang"].to_list() == ["deu", "eng", "fra"]
    assert table["speech→text P@1 same lang"].to_list() == [1.0, 1.0, 1.0]
    assert run_query(store, "SELECT COUNT(*) AS n FROM retrieval")["n"][0] == frame.height


def test_tsne_maps_label_every_row(store):
    frame = tsne_maps(store, "m", per_language=30, perplexity=10, max_iter=300)
    assert frame.height == 3 * 2 * 30
    assert set(frame["modality"].unique()) == {"speech", "text"}
    assert frame["x"].is_finite().all()
    assert set(frame["langs"]) == {"deu,eng,fra"}  # the map's language set: part of its key
    save_tsne(store, frame)
    assert load_tsne(store, "m").height == frame.height


def test_neuron_tables_find_the_planted_dimension(store):
    tables = neuron_tables(store, "m", k=3)
    top = tables["neurons_top"]
    best = (top.filter((pl.col("target_kind") == "language") & (pl.col("rank") == 1))
            .select("target", "modality", "dim"))
    for li, lang in enumerate(LANGS):
        assert set(best.filter(pl.col("target") == lang)["dim"].to_list()) == {li}
    overlap = tables["neurons_overlap"]
    assert overlap.filter(pl.col("lang") == "eng")["shared"][0] >= 1
    assert set(tables["concentration"]["modality"].unique()) == {"speech", "text"}
    save_neurons(store, tables)
    assert all(v is not None for v in load_neurons(store, "m").values())


def test_text_only_model_rejects_speech_retrieval(tmp_path):
    s = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    for lang in LANGS:
        put(s, "t", "text.L1", "text", lang, range(10), rng.standard_normal((10, 4)).astype(np.float32))
    with pytest.raises(AnalysisInputError, match="needs both sides stored"):
        retrieval_grid(s, "t", kinds=["speech-text"])
    assert set(retrieval_grid(s, "t")["kind"].unique()) == {"text-text"}


def test_table_search_equals_brute_force_cosine(store):
    from actstore.analyses.table_search import nearest_in_table

    all_rows = store.read("m", points="text.L1")
    query_id = all_rows.meta["sample_id"][5]
    got = nearest_in_table(store, "m", "text.L1", sample_id=query_id, k=5)
    x = all_rows.vectors / np.linalg.norm(all_rows.vectors, axis=1, keepdims=True)
    cos = x @ x[5]
    cos[5] = -np.inf
    expected = all_rows.meta["sample_id"].to_numpy()[np.argsort(-cos)[:5]]
    assert got["sample_id"].to_list() == list(expected)
    np.testing.assert_allclose(got["cosine"].to_numpy(), np.sort(cos)[::-1][:5], atol=1e-5)
    french = nearest_in_table(store, "m", "text.L1", sample_id=query_id, k=3, where="lang = 'fra'")
    assert set(french["lang"].to_list()) == {"fra"}
    with pytest.raises(AnalysisInputError, match="has 3 dims but text.L1 stores 16"):
        nearest_in_table(store, "m", "text.L1", vector=np.ones(3))


def test_retrieval_items_say_which_sentence_each_query_retrieved(store):
    """Per-query rows agree with the scores and with a brute-force cosine search, and are SQL-readable."""
    from actstore.analyses.retrieval_grid import retrieval_grid_with_items

    frame, items = retrieval_grid_with_items(store, "m", kinds=["speech-text"], langs=["eng", "fra"])
    assert items.height == frame.height * 40  # one row per query of every direction
    per_direction = (items.group_by("lang_a", "lang_b", "direction")
                     .agg((pl.col("rank") == 0).mean().alias("p1")).sort("lang_a", "lang_b", "direction"))
    scores = frame.sort("lang_a", "lang_b", "direction")
    np.testing.assert_allclose(per_direction["p1"].to_numpy(), scores["p_at_1"].to_numpy())
    assert (items.filter(pl.col("rank") == 0)["query_id"] == items.filter(pl.col("rank") == 0)["retrieved_id"]).all()
    # brute force: eng speech queries against fra text, cosine
    sp = store.read("m", points="speech.L1", modality="speech", langs=["eng"], columns=["sentence_id"])
    tx = store.read("m", points="text.L1", modality="text", langs=["fra"], columns=["sentence_id"])
    q = sp.vectors / np.linalg.norm(sp.vectors, axis=1, keepdims=True)
    c = tx.vectors / np.linalg.norm(tx.vectors, axis=1, keepdims=True)
    best = tx.meta["sentence_id"].to_numpy()[np.argmax(q @ c.T, axis=1)]
    mine = (items.filter((pl.col("lang_a") == "eng") & (pl.col("lang_b") == "fra") & (pl.col("direction") == "a->b"))
            .sort("query_id"))
    order = np.argsort(sp.meta["sentence_id"].to_numpy())
    np.testing.assert_array_equal(mine["retrieved_id"].to_numpy(), best[order])
    save_retrieval(store, frame, items)
    hubs = run_query(store, "SELECT retrieved_id, count(*) AS hits FROM retrieval_items "
                            "GROUP BY retrieved_id ORDER BY hits DESC, retrieved_id LIMIT 3")
    assert hubs.height == 3 and hubs["hits"][0] >= hubs["hits"][2]
