"""Result tables: a rerun replaces exactly the rows it recomputed, in one commit; nothing else is lost."""

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from actstore.errors import StoreError
from actstore.store import Store
from actstore.analyses.grids import GridOptions, load_grid, save_grid, similarity_grid
from actstore.analyses.results import missing_languages
from actstore.analyses.retrieval_grid import load_retrieval, retrieval_grid, save_retrieval
from actstore.analyses.neuron_maps import load_neurons, neuron_tables, save_neurons
from actstore.analyses.tsne_maps import load_tsne, save_tsne
from actstore.reports.from_store import report_inputs
from actstore.reports.inputs import validated
from actstore.reports.summaries import cross_modal_series

from _store_data import put

LANGS = ("deu", "eng", "fra")
SUBSET = ["eng", "fra"]
CELL = ["kind", "depth", "lang_a", "lang_b", "modality_a", "modality_b"]


@pytest.fixture()
def store(tmp_path):
    """3 languages, speech and text, 2 depths; ids 0..29 for every set."""
    s = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((30, 4))
    for layer in (1, 2):
        for lang in LANGS:
            for modality in ("speech", "text"):
                x = latent @ rng.standard_normal((4, 12)) + 0.05 * rng.standard_normal((30, 12))
                put(s, "m", f"{modality}.L{layer}", modality, lang, range(30), x.astype(np.float32), layer=layer)
    return s


def _only_subset(frame: pl.DataFrame) -> pl.Expr:
    return pl.col("lang_a").is_in(SUBSET) & pl.col("lang_b").is_in(SUBSET)


def test_subset_rerun_replaces_its_rows_and_keeps_the_others(store):
    full = similarity_grid(store, "m", "all", options=GridOptions(null=False))
    save_grid(store, full)
    version = store.table_version("similarity")
    sub = similarity_grid(store, "m", "all", langs=SUBSET, options=GridOptions(null=False))
    save_grid(store, sub)
    assert store.table_version("similarity") == version + 1  # one commit
    stored = load_grid(store, "m", current=False)
    assert stored.height == full.height  # replaced, not added beside
    assert stored.select(CELL).is_duplicated().sum() == 0
    # the other languages' rows are exactly what the full grid stored
    others = stored.filter(~_only_subset(stored)).sort(CELL)
    expected = full.filter(~_only_subset(full)).sort(CELL)
    assert others.height == expected.height > 0
    assert others.select(*CELL, "score", "computed_at").equals(expected.select(*CELL, "score", "computed_at"))
    # the subset's rows are the rerun's
    mine = stored.filter(_only_subset(stored))
    assert mine.height == sub.height and set(mine["computed_at"].to_list()) == set(sub["computed_at"].to_list())
    # the report reads every language: the full grid with the subset's new rows
    inputs = validated(report_inputs(store, "m"))
    assert inputs.similarity.height == full.height
    summary = cross_modal_series(inputs.similarity).filter(pl.col("group") == "all")
    assert set(summary["n_langs"].to_list()) == {3}
    assert missing_languages(inputs.similarity, LANGS) == []


def test_other_options_are_kept_beside_and_the_report_shows_the_latest(store):
    full = similarity_grid(store, "m", "cross-modal", options=GridOptions(null=False))
    save_grid(store, full)
    other = similarity_grid(store, "m", "cross-modal", langs=SUBSET, options=GridOptions(null=False, keep=0.5))
    save_grid(store, other)
    stored = load_grid(store, "m", current=False)
    assert stored.height == full.height + other.height  # keep=0.5 is another number, not a replacement
    shown = load_grid(store, "m")
    assert shown.height == full.height
    by_lang = dict(shown.filter(pl.col("depth") == "L1").select("lang_a", "keep").iter_rows())
    assert by_lang == {"deu": 0.9, "eng": 0.5, "fra": 0.5}


def test_a_subset_alone_is_told_from_a_complete_grid(store):
    save_grid(store, similarity_grid(store, "m", "cross-modal", langs=SUBSET, options=GridOptions(null=False)))
    assert missing_languages(load_grid(store, "m"), LANGS) == ["deu"]


def test_retrieval_subset_rerun_keeps_other_pairs(store):
    full = retrieval_grid(store, "m", kinds=["text-text"])
    save_retrieval(store, full)
    save_retrieval(store, retrieval_grid(store, "m", kinds=["text-text"], langs=SUBSET))
    stored = load_retrieval(store, "m", current=False)
    assert stored.height == full.height
    assert set(stored["lang_a"]) | set(stored["lang_b"]) == set(LANGS)


def _map(langs, per_language):
    """Rows shaped like `tsne_maps` output (the coordinates do not matter to the store)."""
    rows = [(m, lang, i) for lang in langs for m in ("speech", "text") for i in range(per_language)]
    return pl.DataFrame({
        "model": "m", "depth": "L1", "langs": ",".join(sorted(langs)), "corpus": "flores200:devtest",
        "modality": [r[0] for r in rows], "lang": [r[1] for r in rows],
        "sentence_id": pl.Series([r[2] for r in rows], dtype=pl.Int64),
        "x": np.ones(len(rows), np.float32), "y": np.ones(len(rows), np.float32),
        "computed_at": datetime.now(timezone.utc),
    })


def test_tsne_map_is_replaced_as_a_whole_and_subset_maps_stay_beside(store):
    save_tsne(store, _map(LANGS, 6))
    save_tsne(store, _map(SUBSET, 6))
    assert load_tsne(store, "m", current=False).height == 3 * 2 * 6 + 2 * 2 * 6
    shown = load_tsne(store, "m")  # the map over the most languages
    assert shown.height == 3 * 2 * 6 and set(shown["lang"]) == set(LANGS)
    # a new map of the same languages with fewer points leaves no stale point of the old map
    save_tsne(store, _map(LANGS, 4))
    assert load_tsne(store, "m").height == 3 * 2 * 4
    assert load_tsne(store, "m", current=False).height == 3 * 2 * 4 + 2 * 2 * 6


def test_neuron_rankings_are_kept_per_language_set(store):
    save_neurons(store, neuron_tables(store, "m", depths=["L1"], k=2))
    save_neurons(store, neuron_tables(store, "m", depths=["L1"], langs=SUBSET, k=2))
    stored = load_neurons(store, "m", current=False)
    assert set(stored["neurons_top"]["langs"]) == {"deu,eng,fra", "eng,fra"}
    shown = load_neurons(store, "m")
    assert set(shown["neurons_top"]["langs"]) == {"deu,eng,fra"}
    assert shown["concentration"].select("depth", "lang", "modality").is_duplicated().sum() == 0


def _frame(n, **extra):
    return pl.DataFrame({"model": ["m"] * n, "depth": [f"L{i}" for i in range(n)], "score": np.arange(n, dtype=float), **extra})


def test_write_results_checks_its_key_and_evolves_columns_without_rewrite(store):
    store.write_results("custom", _frame(3), key=("model", "depth"))
    with pytest.raises(StoreError, match="repeat a key"):
        store.write_results("custom", pl.concat([_frame(2), _frame(2)]), key=("model", "depth"))
    with pytest.raises(StoreError, match="nulls in key"):
        store.write_results("custom", _frame(1).with_columns(pl.lit(None, pl.String).alias("depth")),
                            key=("model", "depth"))
    with pytest.raises(StoreError, match="lack key column"):
        store.write_results("custom", _frame(1), key=("model", "lang"))
    version = store.table_version("custom")
    store.write_results("custom", _frame(1, extra=[7]).with_columns(pl.lit(9.0).alias("score")), key=("model", "depth"))
    got = store.read_results("custom").sort("depth")
    assert got["score"].to_list() == [9.0, 1.0, 2.0] and got["extra"].to_list() == [7, None, None]
    assert store.table_version("custom") == version + 2  # add the column, then one upsert commit
    with pytest.raises(StoreError, match="stores column 'score' as double.*move the store's custom.lance"):
        store.write_results("custom", _frame(1).with_columns(pl.lit("x").alias("score")), key=("model", "depth"))
    assert store.read_results("custom").height == 3
    with pytest.raises(StoreError, match="reserved table name"):
        store.write_results("runs", _frame(1), key=("model",))
