"""`actstore neighbours` across modalities and models, with texts (issue 15, item 7).

Known answers are brute-force numpy cosines over the stored vectors; the corpus test uses two
corpora that share sentence ids (as tests/test_corpus.py builds them); the model test is a real
ingest of the tiny random-init SeamlessM4T (speech queries, text targets).
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from actstore.analyses.cross_search import find_neighbours, query_ranks
from actstore.analyses.retrieval_grid import retrieval_grid_with_items
from actstore.errors import AnalysisInputError
from actstore.store import Store

from _cli import cli
from _store_data import put

FLORES = "flores200:devtest"
MINE = "manifest:mine:devtest"
IDS = np.arange(1, 21)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Model m: speech.L1 and text.L1 (16 dims) of eng/fra sharing a sentence signal, in FLORES
    (ids 1-20) and a manifest (ids 1-5, other sentences); m-copy: m's vectors under another name
    (one space); narrow: 8 dims. Texts name their corpus, so a mix-up shows."""
    path = tmp_path_factory.mktemp("nb") / "db"
    store = Store.open(path)
    rng = np.random.default_rng(7)
    for corpus, ids, suffix in ((FLORES, IDS, ""), (MINE, IDS[:5], ":mine")):
        signal = rng.standard_normal((ids.size, 16))
        for lang in ("eng", "fra"):
            for modality in ("speech", "text"):
                x = (signal + 0.6 * rng.standard_normal(signal.shape)).astype(np.float32)
                for model in ("m", "m-copy"):
                    put(store, model, f"{modality}.L1", modality, lang, ids, x, corpus=corpus, sample_suffix=suffix)
            source, split = corpus.rsplit(":", 1)
            store.write_sentences(pa.table({
                "source": [source] * ids.size, "split": [split] * ids.size, "lang": [lang] * ids.size,
                "sentence_id": ids.tolist(), "text": [f"{corpus} {lang} {i}" for i in ids]}))
    put(store, "narrow", "text.L1", "text", "eng", IDS, rng.standard_normal((IDS.size, 8)).astype(np.float32))
    return path


def test_speech_query_text_targets_equal_brute_force_cosine(db):
    store = Store.open(db, create=False)
    query, got = find_neighbours(store, "m", "L1", "eng:speech:3", target_modality="text", k=5)
    assert (query.point, query.text) == ("speech.L1", f"{FLORES} eng 3")
    q = store.read("m", points="speech.L1", where="sample_id = 'eng:speech:3'").vectors[0]
    text = store.read("m", points="text.L1")
    cos = _unit(text.vectors) @ (q / np.linalg.norm(q))
    best = np.argsort(-cos)[:5]
    assert got["sample_id"].to_list() == text.meta["sample_id"].gather(best).to_list()
    np.testing.assert_allclose(got["cosine"].to_numpy(), cos[best], atol=1e-5)
    assert got["rank"].to_list() == [1, 2, 3, 4, 5] and set(got["modality"]) == {"text"}
    assert got["point"].to_list() == ["text.L1"] * 5
    # the --where filter narrows the targets before the search
    fra = find_neighbours(store, "m", "speech.L1", "eng:speech:3", target_point="text.L1", k=3,
                          where="lang = 'fra'")[1]
    keep = (text.meta["lang"] == "fra").to_numpy()
    best_fra = np.flatnonzero(keep)[np.argsort(-cos[keep])[:3]]
    assert fra["sample_id"].to_list() == text.meta["sample_id"].gather(best_fra).to_list()


def test_texts_and_own_sentence_come_from_the_right_corpus(db):
    """Ids 1-5 exist in both corpora: each row shows its own corpus's text, and only the query's
    corpus holds its own sentence."""
    store = Store.open(db, create=False)
    query, got = find_neighbours(store, "m", "text.L1", "eng:text:3:mine", target_modality="speech", k=50)
    assert query.corpus == MINE and query.text == f"{MINE} eng 3"
    expected = [f"{c} {lang} {i}" for c, lang, i in got.select("corpus", "lang", "sentence_id").iter_rows()]
    assert got["text"].to_list() == expected
    own = got.filter(pl.col("own_sentence"))
    assert sorted(own["sample_id"].to_list()) == ["eng:speech:3:mine", "fra:speech:3:mine"]
    assert got.filter((pl.col("sentence_id") == 3) & (pl.col("corpus") == FLORES))["own_sentence"].to_list() == [False, False]
    # the table-wide LanceDB search (same point) shows texts too, and leaves the query out
    same = find_neighbours(store, "m", "text.L1", "eng:text:3:mine", k=50)[1]
    assert "eng:text:3:mine" not in same["sample_id"].to_list()
    assert same.height == 49 and same["text"].null_count() == 0
    assert same.filter(pl.col("own_sentence"))["sample_id"].to_list() == ["fra:text:3:mine"]


def test_another_model_only_in_an_asserted_shared_space_of_one_width(db):
    store = Store.open(db, create=False)
    within = find_neighbours(store, "m", "speech.L1", "fra:speech:7", target_modality="text", k=4)[1]
    across = find_neighbours(store, "m", "speech.L1", "fra:speech:7", target_model="m-copy",
                             target_point="text.L1", shared_space=True, k=4)[1]
    assert across["sample_id"].to_list() == within["sample_id"].to_list()
    np.testing.assert_allclose(across["cosine"].to_numpy(), within["cosine"].to_numpy(), atol=1e-6)
    assert set(across["model"]) == {"m-copy"}
    with pytest.raises(AnalysisInputError, match="cosine between unrelated spaces is meaningless") as unasserted:
        find_neighbours(store, "m", "speech.L1", "fra:speech:7", target_model="m-copy", target_point="text.L1")
    assert "analyze cross-model" in str(unasserted.value) and "--shared-space" in str(unasserted.value)
    with pytest.raises(AnalysisInputError, match="has 16 dims but narrow text.L1 has 8") as wide:
        find_neighbours(store, "m", "text.L1", "eng:text:1", target_model="narrow", shared_space=True)
    assert "analyze cross-model" in str(wide.value)


def test_all_queries_rank_the_true_sentence_as_the_retrieval_grid_does(db):
    store = Store.open(db, create=False)
    ranks = query_ranks(store, "m", "speech.L1", "eng", target_modality="text", target_lang="fra")
    assert ranks.height == IDS.size and set(ranks["corpus"]) == {FLORES}  # the largest corpus
    sp = store.read("m", points="speech.L1", langs=["eng"], where=f"corpus = '{FLORES}'")
    tx = store.read("m", points="text.L1", langs=["fra"], where=f"corpus = '{FLORES}'")
    a = _unit(sp.vectors[np.argsort(sp.meta["sentence_id"].to_numpy())])
    b = _unit(tx.vectors[np.argsort(tx.meta["sentence_id"].to_numpy())])
    s = a @ b.T
    expected = (s > np.diag(s)[:, None]).sum(axis=1)
    np.testing.assert_array_equal(ranks.sort("query_id")["rank"].to_numpy(), expected)
    np.testing.assert_array_equal(ranks.sort("query_id")["retrieved_id"].to_numpy(), IDS[np.argmax(s, axis=1)])
    assert ranks["query_text"].to_list() == [f"{FLORES} eng {i}" for i in ranks["query_id"]]
    assert ranks["retrieved_text"].to_list() == [f"{FLORES} fra {i}" for i in ranks["retrieved_id"]]
    _, items = retrieval_grid_with_items(store, "m", kinds=["speech-text"], langs=["eng", "fra"])
    cell = items.filter((pl.col("lang_a") == "eng") & (pl.col("lang_b") == "fra") & (pl.col("direction") == "a->b"))
    assert cell.sort("query_id")["rank"].to_list() == ranks.sort("query_id")["rank"].to_list()
    mine = query_ranks(store, "m", "text.L1", "fra", target_lang="eng", corpus=MINE)
    assert mine["n"].to_list() == [5] * 5 and mine["query_text"][0].startswith(MINE)


@pytest.mark.parametrize("args, message", [
    ((), "Give --sample-id to search from one sample, or --all-queries"),
    (("--sample-id", "eng:text:1", "--all-queries", "--lang", "eng"), "not both"),
    (("--all-queries",), "--all-queries needs --lang"),
    (("--all-queries", "--lang", "eng", "--where", "lang = 'fra'"), "--where filters a one-sample search"),
    (("--sample-id", "eng:text:1", "--lang", "eng"), "go with --all-queries"),
    (("--sample-id", "eng:text:1", "--target-point", "text.L9"), "No point 'text.L9' is stored for model 'm'"),
    (("--sample-id", "eng:text:1", "--target-model", "m-copy"), "cosine between unrelated spaces is meaningless"),
    (("--sample-id", "eng:text:1", "--target-model", "narrow", "--shared-space"), "has 16 dims but narrow"),
    (("--sample-id", "eng:text:1", "--target-modality", "speech", "--where", "nonsense ="), "check the --where filter"),
    (("--sample-id", "eng:text:1", "--target-modality", "speech", "--where", "lang = 'xx'"), "loosen --where"),
    (("--sample-id", "nope", "--target-modality", "speech"), "'nope' is not stored"),
    (("--sample-id", "eng:text:1", "--target-modality", "speech", "--k", "0"), "k=0 must be at least 1"),
    (("--sample-id", "eng:text:1", "--target-point", "L1"), "holds several points (speech.L1, text.L1)"),
    (("--sample-id", "eng:text:1", "--target-point", "text.L1", "--target-modality", "speech"),
     "text.L1 holds text rows, not speech"),
    (("--all-queries", "--lang", "eng", "--target-lang", "deu"), "stores no deu text rows"),
])
def test_bad_input_is_one_sentence(db, args, message):
    out = cli("neighbours", "--db", db, "--model", "m", "--point", "text.L1", *args, code=None).output
    assert message in out and "Traceback" not in out
    body = out.split("Error: ", 1)[-1].strip().replace("e.g. ", "")
    assert body.count(". ") == 0 and body.endswith("."), body  # one sentence


def test_cli_prints_texts_and_the_query_line_only_in_the_table(db):
    rows = json.loads(cli("neighbours", "--db", db, "--model", "m", "--point", "speech.L1", "--sample-id",
                          "eng:speech:2", "--target-modality", "text", "--k", 2, "--format", "json").output)
    assert [r["rank"] for r in rows] == [1, 2] and all(r["text"] for r in rows)
    table = cli("neighbours", "--db", db, "--model", "m", "--point", "speech.L1", "--sample-id",
                "eng:speech:2", "--target-modality", "text", "--k", 2)
    assert f"query eng:speech:2 (eng speech, sentence 2 of {FLORES}) at m speech.L1: '{FLORES} eng 2'" in table.stderr
    summary = cli("neighbours", "--db", db, "--model", "m", "--point", "speech.L1", "--target-modality", "text",
                  "--all-queries", "--lang", "eng", "--target-lang", "fra")
    assert "over 20 eng queries (chance 1/20)" in summary.stderr


SEAMLESS = "tiny-random-seamless-m4t-v2"


@pytest.fixture(scope="module")
def seamless_db(tmp_path_factory, tiny_seamless_dir):
    """The tiny random-init SeamlessM4T v2 ingested for real: espeak-ng speech and FLORES text."""
    path = tmp_path_factory.mktemp("seamless") / "db"
    cli("ingest", "--db", path, "--model", tiny_seamless_dir, "--langs", "eng,fra", "--limit", 5, "--quiet",
        "--cache-dir", tmp_path_factory.mktemp("espeak"))
    return path


def test_tiny_seamless_speech_query_with_text_targets(seamless_db):
    """A real speech row searched against the model's text rows at the same depth, labelled random-init."""
    store = Store.open(seamless_db, create=False)
    pts = store.points(SEAMLESS)["point"].to_list()
    depth = next(p.split(".", 1)[1] for p in pts if p.startswith("speech.L") and "text." + p.split(".", 1)[1] in pts)
    speech = store.read(SEAMLESS, points=f"speech.{depth}", langs=["eng"])
    sample = speech.meta["sample_id"][0]
    out = cli("neighbours", "--db", seamless_db, "--model", SEAMLESS, "--point", depth, "--sample-id", sample,
              "--target-modality", "text", "--k", 10, "--format", "json")
    rows = json.loads(out.stdout)
    text = store.read(SEAMLESS, points=f"text.{depth}")
    cos = _unit(text.vectors) @ _unit(speech.vectors[:1])[0]
    best = np.argsort(-cos)
    assert [r["sample_id"] for r in rows] == text.meta["sample_id"].gather(best).to_list()
    np.testing.assert_allclose([r["cosine"] for r in rows], cos[best], atol=1e-5)
    assert {r["modality"] for r in rows} == {"text"} and all(r["random_init"] for r in rows)
    texts = dict(((r["lang"], r["sentence_id"]), r["text"]) for r in store.sentences().iter_rows(named=True))
    assert all(r["text"] == texts[(r["lang"], r["sentence_id"])] for r in rows)
    own = speech.meta["sentence_id"][0]
    assert [r["own_sentence"] for r in rows] == [r["sentence_id"] == own for r in rows]
    table = cli("neighbours", "--db", seamless_db, "--model", SEAMLESS, "--point", depth, "--sample-id", sample,
                "--target-modality", "text", "--k", 3)
    assert f"at {SEAMLESS} speech.{depth}" in table.stderr and "RANDOM-INIT" in table.stderr
    ranks = query_ranks(store, SEAMLESS, f"speech.{depth}", "eng", target_modality="text")
    assert ranks.height == 5 and set(ranks["random_init"]) == {True}
