"""Each piece of the store built alone from its dependencies (issue 13, item 5).

`Store` only wires these together; here every object is constructed by hand from a bare
`Connection` (and the pieces it names in its constructor), so each is testable without the others.
"""

from __future__ import annotations

import grimp
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from actstore.errors import StoreError
from actstore.schema import POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE, META_TABLE
from actstore.store.activations import ActivationWriter
from actstore.store.connection import Connection
from actstore.store.finalize import Finalizer
from actstore.store.integrity import Integrity
from actstore.store.points import PointsRegistry
from actstore.store.reads import ActivationReader
from actstore.store.results import ResultTables
from actstore.store.runs import RunLog
from actstore.store.sentences import SentenceTexts

from _store_data import activation_rows

POINT = {"point": "text.L1", "modality": "text", "layer": 1, "width": 4, "vector_dtype": "float32"}


@pytest.fixture
def conn(tmp_path) -> Connection:
    return Connection.open(tmp_path / "db")


def test_connection_creates_a_store_and_reopens_it_read_only(tmp_path):
    conn = Connection.open(tmp_path / "db")
    assert {META_TABLE, POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE} <= set(conn.table_names())
    again = Connection.open(tmp_path / "db", create=False)
    assert again.meta()["schema_version"] == str(again.schema_version)
    with pytest.raises(StoreError, match="No actstore store"):
        Connection.open(tmp_path / "missing", create=False)


def test_run_log_is_the_source_of_random_init(conn):
    runs = RunLog(conn)
    assert not runs.is_random_init("m")  # no run: not random-initialised
    run_id = runs.start_run({"model": "m", "random_init": True})
    runs.finish_run(run_id, status="complete", n_items=1, n_rows=2)
    assert runs.runs("m").select("status", "n_rows").row(0) == ("complete", 2)
    assert runs.is_random_init("m") and not runs.is_random_init("other")


def test_points_registry_copies_random_init_from_its_source(conn):
    registry = PointsRegistry(conn, random_init_of=lambda model: model == "random")
    registry.register_points("random", [POINT], random_init=False)  # the argument is not the source
    registry.register_points("trained", [POINT])
    pts = registry.points()
    assert dict(zip(pts["model"], pts["random_init"])) == {"random": True, "trained": False}
    with pytest.raises(StoreError, match="width 5 .* does not match the stored width 4"):
        registry.check_points("random", [{**POINT, "width": 5}])


def test_writer_and_reader_share_only_the_registry(conn):
    registry = PointsRegistry(conn, random_init_of=lambda model: False)
    writer, reader = ActivationWriter(conn, registry), ActivationReader(conn, registry)
    registry.register_points("m", [POINT])
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert writer.write_activations("m", 4, activation_rows("m", "text.L1", "text", "eng", range(3), x),
                                    replace=False) == 3
    got = reader.read("m", points="text.L1")
    np.testing.assert_array_equal(got.vectors[np.argsort(got.meta["sentence_id"].to_numpy())], x)
    assert reader.count_rows("m") == 3 and writer.stored_keys("m", "text", "eng", ["text.L1"]).height == 3
    assert writer.delete_model("m") == 3 and registry.points("m").height == 0


def test_finalizer_indexes_compacts_and_keeps_versions_for_its_window(conn):
    registry = PointsRegistry(conn, random_init_of=lambda model: False)
    writer = ActivationWriter(conn, registry)
    registry.register_points("m", [POINT])
    for ids in (range(3), range(3, 6)):
        writer.write_activations("m", 4, activation_rows("m", "text.L1", "text", "eng", ids,
                                                         np.ones((3, 4), np.float32)), replace=False)
    kept = Finalizer(conn, registry, keep_versions="1h")
    assert any("no index" in r for r in kept.finalize_needed("m"))

    def killed_after_indexing(step):
        if step == "indexed":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kept.finalize_model("m", killed_after_indexing)
    # seen without counting versions (those in the window are kept on purpose)
    assert any("not compacted (2 small fragments" in r for r in kept.finalize_needed("m"))
    kept.finalize_model("m")
    table = registry.points("m")["table_name"][0]
    assert kept.finalize_needed("m") == [] and len(conn.dataset(table).get_fragments()) == 1
    assert len(conn.dataset(table).versions()) > 1  # superseded within the hour: kept for readers
    Finalizer(conn, registry, keep_versions=0).finalize_model("m")
    assert len(conn.dataset(table).versions()) == 1


def test_sentence_texts_alone(conn):
    texts = SentenceTexts(conn)
    texts.write_sentences(pa.table({"source": ["s", "s"], "split": ["dev", "dev"], "lang": ["eng", "fra"],
                                    "sentence_id": [1, 1], "text": ["one", "un"]}))
    assert texts.sentences(["fra"])["text"].to_list() == ["un"]


def test_result_tables_alone(conn):
    results = ResultTables(conn)
    results.write_results("scores", pl.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]}), key=["k"])
    results.write_results("scores", pl.DataFrame({"k": ["b"], "v": [3.0]}), key=["k"])
    assert results.read_results("scores").sort("k")["v"].to_list() == [1.0, 3.0]
    assert results.result_tables() == ["scores"] and results.read_results("absent") is None
    with pytest.raises(StoreError, match="reserved table name"):
        results.write_results(POINTS_TABLE, pl.DataFrame({"k": ["a"]}), key=["k"])


def test_integrity_alone_finds_rows_no_registry_names(conn):
    runs = RunLog(conn)
    registry = PointsRegistry(conn, random_init_of=runs.is_random_init)
    finalizer = Finalizer(conn, registry, keep_versions=0)
    integrity = Integrity(conn, registry, runs, SentenceTexts(conn), finalizer)
    assert integrity.check().ok
    ActivationWriter(conn, registry).write_activations(  # rows whose point was never registered
        "m", 4, activation_rows("m", "speech.L1", "speech", "eng", range(2), np.ones((2, 4), np.float32)),
        replace=False)
    kinds = {p.kind for p in integrity.check().problems}
    assert "unregistered-points" in kinds
    integrity.repair(integrity.check())
    assert integrity.check().ok and registry.points("m")["point"].to_list() == ["speech.L1"]


def test_no_store_module_imports_the_store_package_itself():
    """The package's own cycle is gone: its modules take DEFAULT_URI from core (actstore.store_uri)."""
    graph = grimp.build_graph("actstore")
    importers = graph.find_modules_that_directly_import("actstore.store")
    assert sorted(m for m in importers if m.startswith("actstore.store.")) == []
