"""Sentence identity belongs to its corpus (issue 14, item 4).

A user who ingests their own manifest (ids 1-8) into a model that already holds FLORES sentences
1-8 must not get FLORES speech of sentence 3 paired with their sentence 3: every activation row
carries its `corpus`, analyses align within one corpus, `check` names the ids two corpora share
with different texts, and `migrate` gives stores written before all this their corpus.
"""

from __future__ import annotations

import csv

import lancedb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from actstore.analyses.grids import GridOptions, similarity_grid
from actstore.cli import main
from actstore.errors import AnalysisInputError, SchemaVersionError
from actstore.schema import ACTIVATION_PREFIX, corpus_name
from actstore.store import Store
from actstore.store.connection import list_table_names
from actstore.store.migration import migrate

from _store_data import put

FLORES = "flores200:devtest"
MINE = "manifest:mine:devtest"
MINILM = "all-MiniLM-L6-v2"


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _planted(rng, n: int, d: int = 16, shared: int = 4):
    """Speech and text sets of one language sharing a low-rank signal (a real, non-trivial SVCCA)."""
    z = rng.standard_normal((n, shared))
    speech = z @ rng.standard_normal((shared, d)) + 0.5 * rng.standard_normal((n, d))
    text = z @ rng.standard_normal((shared, d)) + 0.5 * rng.standard_normal((n, d))
    return speech.astype(np.float32), text.astype(np.float32)


def _put_corpus(store: Store, corpus: str, ids, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for lang in ("eng", "fra"):
        speech, text = _planted(rng, len(ids))
        suffix = "" if corpus == FLORES else ":mine"
        put(store, "m", "speech.L1", "speech", lang, ids, speech, corpus=corpus, sample_suffix=suffix)
        put(store, "m", "text.L1", "text", lang, ids, text, corpus=corpus, sample_suffix=suffix)


def _scores(store: Store, **options) -> dict[str, float]:
    rows = similarity_grid(store, "m", "cross-modal", options=GridOptions(null=False, **options))
    return dict(zip(rows["lang_a"].to_list(), rows["score"].to_list()))


def test_corpus_names_flores_text_and_speech_as_one_corpus():
    assert corpus_name("flores200", "devtest") == corpus_name("flores200+espeak-ng", "devtest") == FLORES
    assert corpus_name("fleurs", "test") == "fleurs:test"
    assert corpus_name("manifest:mine", "devtest") == MINE


def test_a_second_corpus_with_overlapping_ids_leaves_the_first_corpus_scores_unchanged(tmp_path):
    store = Store.open(tmp_path / "s.lance", create=True)
    _put_corpus(store, FLORES, range(1, 41), seed=1)
    before = _scores(store)
    _put_corpus(store, MINE, range(1, 9), seed=2)  # ids 1-8 again: other sentences
    after = _scores(store)
    assert after == before  # the default aligns in the largest corpus, exactly as before
    mine = similarity_grid(store, "m", "cross-modal", options=GridOptions(null=False, corpus=MINE))
    assert set(mine["n"].to_list()) == {8} and set(mine["corpus"].to_list()) == {MINE}
    assert set(similarity_grid(store, "m", "cross-modal", options=GridOptions(null=False))["corpus"]) == {FLORES}
    # rows of the two corpora were never mixed: the manifest's scores are its own data's
    alone = Store.open(tmp_path / "alone.lance", create=True)
    _put_corpus(alone, MINE, range(1, 9), seed=2)
    assert _scores(store, corpus=MINE) == _scores(alone)


def test_an_unknown_corpus_is_refused_in_one_sentence(tmp_path):
    store = Store.open(tmp_path / "s.lance", create=True)
    _put_corpus(store, FLORES, range(1, 11), seed=1)
    with pytest.raises(AnalysisInputError, match=r"Corpus 'fleurs:test' is not stored for model 'm'; stored: "
                                                 r"flores200:devtest\."):
        similarity_grid(store, "m", "cross-modal", options=GridOptions(corpus="fleurs:test"))


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    """Real MiniLM text of FLORES eng/fra 1-8, then a user's manifest reusing ids 1-8."""
    root = tmp_path_factory.mktemp("corpora")
    db = str(root / "store.lance")
    cli("ingest", "--db", db, "--model", MINILM, "--langs", "eng,fra", "--modalities", "text",
        "--limit", "8", "--layers", "6", "--quiet")
    before = cli("analyze", "svcca", "--db", db, "--model", MINILM, "--kind", "cross-lingual",
                 "--no-null", "--quiet", "--format", "csv")
    manifest = root / "mine.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sentence_id", "lang", "modality", "text"])
        for i in range(1, 9):
            w.writerow([i, "eng", "text", f"My own sentence number {i} is about cats."])
            w.writerow([i, "fra", "text", f"Ma propre phrase numéro {i} parle de chats."])
    cli("ingest", "--db", db, "--model", MINILM, "--source", "manifest", "--data-dir", str(manifest),
        "--langs", "eng,fra", "--modalities", "text", "--layers", "6", "--quiet")
    return db, before


def test_ingest_stores_each_rows_corpus(two_corpora):
    db, _ = two_corpora
    out = cli("query", "--db", db, "--format", "csv",
              "SELECT corpus, count(*) AS n FROM activations GROUP BY corpus ORDER BY corpus")
    assert out.splitlines()[1:] == [f"{FLORES},16", f"{MINE},16"]


def test_analysis_aligns_within_the_original_corpus_and_check_names_the_shared_ids(two_corpora):
    db, before = two_corpora
    after = cli("analyze", "svcca", "--db", db, "--model", MINILM, "--kind", "cross-lingual",
                "--no-null", "--quiet", "--format", "csv")
    score = _csv_scores
    assert score(after) == score(before)
    mine = cli("analyze", "svcca", "--db", db, "--model", MINILM, "--kind", "cross-lingual",
               "--corpus", MINE, "--no-null", "--quiet", "--format", "csv")
    assert score(mine) != score(before)
    out = cli("check", "--db", db)
    assert "note: shared-sentence-ids: 16 sentence ids of 'all-MiniLM-L6-v2'" in out
    assert "My own sentence number 1 is about cats." in out and "ok (" in out


def _csv_scores(out: str) -> list[float]:
    """The score column of an `analyze --format csv` output (the table follows the progress lines)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if ",score," in line)
    frame = pl.read_csv("\n".join(lines[start:]).encode())
    return [round(v, 12) for v in frame.sort("kind", "point_order")["score"].to_list()]


def test_migrate_gives_a_version_2_store_its_corpus(tmp_path):
    db = str(tmp_path / "old.lance")
    cli("ingest", "--db", db, "--model", MINILM, "--langs", "eng", "--modalities", "text", "--limit", "3",
        "--layers", "6", "--quiet")
    conn = lancedb.connect(db)
    acts = [n for n in list_table_names(conn) if n.startswith(ACTIVATION_PREFIX)]
    for name in acts:  # what a version-2 writer left: no corpus column
        conn.open_table(name).to_lance().drop_columns(["corpus"])
    conn.open_table("meta").update(where="key = 'schema_version'", values={"value": "2"})
    with pytest.raises(SchemaVersionError):
        Store.open(db)
    report = migrate(db)
    assert (report.from_version, report.to_version) == (2, 3) and set(acts) <= set(report.tables)
    store = Store.open(db)
    assert store.scan_activations(MINILM, with_vectors=False).select("corpus").unique().collect()["corpus"].to_list() == [FLORES]
    # the migrated table takes new rows (its column order differs from a new table's)
    cli("ingest", "--db", db, "--model", MINILM, "--langs", "fra", "--modalities", "text", "--limit", "3",
        "--layers", "6", "--quiet")
    assert migrate(db).changed is False


def test_delete_removes_one_corpus_then_one_point_and_refuses_what_is_not_stored(tmp_path):
    store = Store.open(tmp_path / "s.lance", create=True)
    _put_corpus(store, FLORES, range(1, 11), seed=1)
    _put_corpus(store, MINE, range(1, 9), seed=2)
    db = str(tmp_path / "s.lance")
    before = _scores(Store.open(db))
    out = cli("delete", "--db", db, "--model", "m", "--corpus", "fleurs:test", "--yes", code=1)
    assert "Corpus 'fleurs:test' is not stored for model 'm'; stored: flores200:devtest, manifest:mine:devtest." in out
    out = cli("delete", "--db", db, "--model", "m", "--points", "text.L9", "--yes", code=1)
    assert "Point 'text.L9' is not stored" in out
    out = cli("delete", "--db", db, "--model", "m", "--corpus", MINE, "--yes")
    assert "deleted 32 rows of m (corpus manifest:mine:devtest)." in out
    store = Store.open(db)
    assert store.scan_activations("m", with_vectors=False).select("corpus").unique().collect()["corpus"].to_list() == [FLORES]
    assert _scores(store) == before  # the other corpus is untouched
    out = cli("delete", "--db", db, "--model", "m", "--points", "text.L1", "--yes")
    assert "deleted 20 rows of m (points text.L1)." in out and "unregistered points: text.L1" in out
    assert Store.open(db).points("m")["point"].to_list() == ["speech.L1"]


def test_retrieval_tsne_and_neurons_work_within_one_corpus_and_record_it(tmp_path):
    from actstore.analyses.neuron_maps import neuron_tables
    from actstore.analyses.retrieval_grid import retrieval_grid
    from actstore.analyses.tsne_maps import tsne_maps

    store = Store.open(tmp_path / "s.lance", create=True)
    _put_corpus(store, FLORES, range(1, 41), seed=1)
    _put_corpus(store, MINE, range(1, 9), seed=2)
    ret = retrieval_grid(store, "m", kinds=["speech-text"])
    assert set(ret["corpus"]) == {FLORES} and set(ret["n"]) == {40}
    ret = retrieval_grid(store, "m", kinds=["speech-text"], corpus=MINE)
    assert set(ret["corpus"]) == {MINE} and set(ret["n"]) == {8}
    maps = tsne_maps(store, "m", corpus=MINE, perplexity=3, max_iter=250)
    assert set(maps["corpus"]) == {MINE} and sorted(set(maps["sentence_id"])) == list(range(1, 9))
    assert maps.height == 2 * 2 * 8  # languages x modalities x the manifest's sentences, nothing else
    tables = neuron_tables(store, "m", k=3)
    assert all(set(frame["corpus"]) == {FLORES} for frame in tables.values())
