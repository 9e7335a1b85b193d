"""The library calls behind `actstore analyze` and `actstore report`, on a small synthetic store."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from actstore.store import Store
from actstore.analyses import tasks
from actstore.analyses.complete import ensure_results
from actstore.analyses.grids import GridOptions
from actstore.reports.from_store import report_inputs

from _store_data import put

LANGS = ("eng", "fra", "deu")
LEVELS = {"eng": "high", "fra": "high", "deu": "medium"}


@pytest.fixture
def store(tmp_path):
    """3 languages x speech/text x 2 layers x 24 sentences sharing a latent, width 16."""
    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((24, 6))
    for layer in (1, 2):
        for lang in LANGS:
            for modality in ("speech", "text"):
                x = latent @ rng.standard_normal((6, 16)) + 0.1 * rng.standard_normal((24, 16))
                put(store, "m", f"{modality}.L{layer}", modality, lang, range(1, 25), x.astype(np.float32),
                    layer=layer, resource_level=LEVELS[lang])
    return store


def test_run_similarity_saves_and_summarises_every_kind(store):
    result = tasks.run_similarity(store, "m", "all", options=GridOptions(null=False))
    frame = result.frames["similarity"]
    assert set(frame["kind"]) == {"cross-modal", "speech-speech", "text-text", "speech-text"}
    assert store.read_results("similarity").height == frame.height
    summary = result.summary
    assert "model" not in summary.columns
    xm = summary.filter(pl.col("kind") == "cross-modal")
    # cross-modal means: over all languages and per resource level (2 high, 1 medium)
    assert set(xm["group"]) == {"all", "high", "medium"}
    row = xm.filter((pl.col("group") == "all") & (pl.col("depth") == "L1"))
    want = frame.filter((pl.col("kind") == "cross-modal") & (pl.col("depth") == "L1"))["score"].mean()
    assert row["score"][0] == pytest.approx(want) and row["languages"][0] == 3
    xl = summary.filter(pl.col("kind") == "text-text")
    assert xl["pairs"].to_list() == [3, 3]  # 3 pairs per depth, same-language pairs left out


def test_run_retrieval_summary_is_the_mean_over_pairs(store):
    result = tasks.run_retrieval(store, "m", kinds=["text-text"], depths=["L2"])
    frame = result.frames["retrieval"]
    summary = result.summary
    assert summary.columns == ["kind", "depth", "direction", "p_at_1", "xsim_error", "pairs"]
    for row in summary.iter_rows(named=True):
        sel = frame.filter(pl.col("direction") == row["direction"])
        assert row["p_at_1"] == pytest.approx(sel["p_at_1"].mean()) and row["pairs"] == sel.height


def test_ensure_results_fills_only_what_is_missing(store):
    tasks.run_similarity(store, "m", "cross-modal", options=GridOptions(null=False))
    cross_modal = store.read_results("similarity").sort("depth", "lang_a")
    inputs = report_inputs(store, "m")
    assert inputs.retrieval is None and inputs.tsne is None and inputs.similarity is not None
    done = ensure_results(store, "m", tsne_per_language=8)
    assert done == ["cross-lingual svcca", "retrieval", "tsne", "neurons"]  # cross-modal was stored
    kept = store.read_results("similarity").filter(pl.col("kind") == "cross-modal").sort("depth", "lang_a")
    assert kept["computed_at"].to_list() == cross_modal["computed_at"].to_list()  # not recomputed
    assert ensure_results(store, "m") == []  # nothing left to compute
    inputs = report_inputs(store, "m")
    assert all(getattr(inputs, f) is not None for f in ("similarity", "retrieval", "tsne", "neurons_top",
                                                         "neurons_overlap", "concentration"))
    languages = inputs.provenance["languages"]
    assert languages["lang"].to_list() == sorted(LANGS)
    assert dict(zip(languages["lang"], languages["resource_level"])) == LEVELS  # as stored
    assert languages["n_speech"].to_list() == [24, 24, 24]
