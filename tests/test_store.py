"""The store: round trips, idempotent writes, width checks, schema version, pushdown reads."""

import numpy as np
import pyarrow as pa
import pytest

from actstore.errors import SchemaVersionError, StoreError
from actstore.schema import META_TABLE, SCHEMA_VERSION
from actstore.store import Store, vectors_to_numpy

from _store_data import put


def test_round_trip_keeps_rows_and_order(tmp_path):
    store = Store.open(tmp_path / "db")
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    put(store, "m", "text.L1", "text", "eng", range(10), x)
    got = store.read("m", points="text.L1", langs=["eng"])
    order = np.argsort(got.meta["sentence_id"].to_numpy())
    np.testing.assert_array_equal(got.vectors[order], x)
    assert got.vectors.dtype == np.float32 and got.vectors.flags["C_CONTIGUOUS"]
    assert set(got.meta.columns) >= {"model", "point", "lang", "sentence_id", "sample_id", "resource_level"}


def test_reingest_same_key_replaces_never_duplicates(tmp_path):
    store = Store.open(tmp_path / "db")
    x = np.ones((4, 3), np.float32)
    put(store, "m", "text.L1", "text", "eng", range(4), x)
    put(store, "m", "text.L1", "text", "eng", range(4), 2 * x, replace=True)
    got = store.read("m", points="text.L1")
    assert len(got) == 4
    np.testing.assert_array_equal(got.vectors, 2 * x)


def test_width_mismatch_is_refused_and_store_unchanged(tmp_path):
    store = Store.open(tmp_path / "db")
    put(store, "m", "text.L1", "text", "eng", range(3), np.zeros((3, 4), np.float32))
    with pytest.raises(StoreError, match="width 5 .* does not match the stored width 4"):
        put(store, "m", "text.L1", "text", "eng", range(3), np.zeros((3, 5), np.float32))
    assert store.count_rows("m") == 3


def test_points_of_different_widths_live_in_separate_tables(tmp_path):
    store = Store.open(tmp_path / "db")
    put(store, "m", "speech.L1", "speech", "eng", range(3), np.zeros((3, 4), np.float32))
    put(store, "m", "text.L1", "text", "eng", range(3), np.zeros((3, 6), np.float32))
    assert store.read("m", points="text.L1").vectors.shape == (3, 6)
    with pytest.raises(StoreError, match="different widths"):
        store.read("m")
    # SQL-level union still sees every row
    assert store.scan_activations().collect().height == 6


def test_schema_version_mismatch_fails_clearly(tmp_path):
    store = Store.open(tmp_path / "db")
    tbl = store._open_table(META_TABLE)
    tbl.update(where="key = 'schema_version'", values={"value": "999"})
    with pytest.raises(SchemaVersionError, match=f"schema version 999.*reads version {SCHEMA_VERSION}; open it with the actstore"):
        Store.open(tmp_path / "db")


def test_read_only_open_of_missing_store_fails(tmp_path):
    with pytest.raises(StoreError, match="No actstore store"):
        Store.open(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_unknown_model_and_point_errors_name_what_is_stored(tmp_path):
    store = Store.open(tmp_path / "db")
    put(store, "m", "text.L1", "text", "eng", range(3), np.zeros((3, 4), np.float32))
    with pytest.raises(StoreError, match="Nothing is stored for model 'x'.*models stored: m"):
        store.read("x")
    with pytest.raises(StoreError, match=r"Point\(s\) \['text.L9'\] are not stored"):
        store.read("m", points="text.L9")


def test_filters_are_pushed_down(tmp_path):
    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(1)
    for lang in ("eng", "fra", "deu"):
        put(store, "m", "text.L1", "text", lang, range(20), rng.standard_normal((20, 4)).astype(np.float32))
    got = store.read("m", langs=["fra"], sentence_ids=[3, 5], columns=["lang", "sentence_id"])
    assert sorted(got.meta["sentence_id"].to_list()) == [3, 5]
    assert got.meta.columns == ["lang", "sentence_id"]


def test_vectors_to_numpy_respects_slices():
    arr = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12, dtype=np.float32)), 3)
    np.testing.assert_array_equal(vectors_to_numpy(arr.slice(1, 2)), [[3, 4, 5], [6, 7, 8]])


def test_runs_record_status(tmp_path):
    store = Store.open(tmp_path / "db")
    run_id = store.start_run({"model": "m", "langs": ["eng"], "params": {"limit": 3}})
    assert store.runs()["status"].to_list() == ["running"]
    store.finish_run(run_id, status="complete", n_items=3, n_rows=6)
    row = store.runs().row(0, named=True)
    assert row["status"] == "complete" and row["n_rows"] == 6 and row["ended_at"] is not None


def test_storage_options_reach_lancedb(tmp_path, monkeypatch):
    import lancedb

    seen = {}
    connect = lancedb.connect

    def spy(uri, **kw):
        seen.update(kw)
        return connect(uri, **kw)

    monkeypatch.setattr(lancedb, "connect", spy)
    store = Store.open(tmp_path / "db", storage_options={"timeout": "30s"})
    assert seen["storage_options"] == {"timeout": "30s"} and store.storage_options == {"timeout": "30s"}
    put(store, "m", "text.L1", "text", "eng", range(2), np.ones((2, 3), np.float32))
    assert store.count_rows("m") == 2


def test_a_new_store_has_its_core_tables_and_reopens_without_writing(tmp_path):
    store = Store.open(tmp_path / "db")
    assert set(store.table_names()) == {"meta", "points", "runs", "sentences"}
    versions = {n: store.table_version(n) for n in store.table_names()}
    again = Store.open(tmp_path / "db")
    assert {n: again.table_version(n) for n in again.table_names()} == versions
