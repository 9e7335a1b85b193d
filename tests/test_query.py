"""Read-only SQL over the store: named queries, refusals, parse errors."""

import numpy as np
import pytest

from actstore.errors import QueryError
from actstore.query import check_read_only, named_queries, run_query
from actstore.store import Store

from _store_data import put


@pytest.fixture()
def store(tmp_path):
    s = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    put(s, "m", "text.L1", "text", "eng", range(1, 11), rng.standard_normal((10, 4)).astype(np.float32))
    put(s, "m", "text.L1", "text", "fra", range(5, 15), rng.standard_normal((10, 4)).astype(np.float32))
    put(s, "m", "speech.L1", "speech", "eng", range(1, 8), rng.standard_normal((7, 4)).astype(np.float32))
    put(s, "m2", "text.L1", "text", "eng", range(3), rng.standard_normal((3, 6)).astype(np.float32))
    return s


def test_activations_spans_every_model(store):
    df = run_query(store, "SELECT model, COUNT(*) AS n FROM activations GROUP BY model ORDER BY model")
    assert df.rows() == [("m", 27), ("m2", 3)]


def test_vectors_are_queryable(store):
    df = run_query(store, "SELECT vector FROM activations WHERE model = 'm2' LIMIT 1")
    assert len(df["vector"][0]) == 6


@pytest.mark.parametrize("sql", [
    "DROP TABLE activations", "delete from activations", "INSERT INTO runs VALUES (1)",
    "UPDATE activations SET lang = 'x'", "CREATE TABLE x AS SELECT 1",
    "SELECT 1; DROP TABLE activations", "  -- comment\n drop table runs",
])
def test_writes_are_refused(store, sql):
    before = store.count_rows()
    with pytest.raises(QueryError):
        run_query(store, sql)
    assert store.count_rows() == before


def test_parse_error_is_one_clear_sentence(store):
    with pytest.raises(QueryError, match="does not parse"):
        run_query(store, "SELECT (1 + FROM activations")


def test_unknown_table(store):
    with pytest.raises(QueryError, match="tables are: activations"):
        run_query(store, "SELECT * FROM nope")


def test_semicolon_inside_string_is_not_a_second_statement():
    assert check_read_only("SELECT 'a;b' AS x;") == "SELECT 'a;b' AS x"


def test_named_queries(store):
    assert {"coverage", "shared_ids", "cross_modal_ids", "runs", "points"} <= set(named_queries())
    cov = run_query(store, named_queries()["coverage"])
    row = cov.filter((cov["lang"] == "fra")).row(0, named=True)
    assert row["n_sentences"] == 10
    shared = run_query(store, named_queries()["shared_ids"])
    pair = shared.filter((shared["model"] == "m") & (shared["modality"] == "text")).row(0, named=True)
    assert (pair["lang_a"], pair["lang_b"], pair["shared_ids"]) == ("eng", "fra", 6)
    xm = run_query(store, named_queries()["cross_modal_ids"])
    assert xm.filter(xm["model"] == "m")["ids_with_speech_and_text"].to_list() == [7]
