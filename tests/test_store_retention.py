"""Readers survive writers (issue 14, item 3): finalize keeps every version a live reader may read.

The two-process test plans a read (a lazy Polars scan and a Lance scanner) in one process, lets
another process overwrite the rows and finalize (compaction + cleanup), then collects: within the
retention window the reader gets exactly the snapshot it planned; with no window (the old
behaviour) the files it planned on are gone.
"""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta

import numpy as np
import pytest

from actstore.errors import StoreError
from actstore.store import Store
from actstore.store.integrity import check_store
from actstore.store.retention import expired_versions, keep_window, parse_duration

import _reader_worker
from _store_data import activation_rows, put

CTX = multiprocessing.get_context("spawn")  # Lance is not fork-safe
WIDTH = 4


def _store(path, keep) -> Store:
    """A finalized store of 20 rows of ones in one version (the base every test starts from)."""
    store = Store.open(path, keep_versions=keep)
    put(store, "m", "text.L1", "text", "eng", range(10), np.ones((10, WIDTH), np.float32))
    put(store, "m", "text.L1", "text", "eng", range(10, 20), np.ones((10, WIDTH), np.float32))
    store.finalize_model("m", keep_versions=0)
    return store


def _overwrite_and_finalize(store: Store) -> None:
    """What a concurrent `ingest --overwrite` does: rewrite every row, add some, then finalize."""
    rows = activation_rows("m", "text.L1", "text", "eng", range(30), np.full((30, WIDTH), 2.0, np.float32))
    store.write_activations("m", WIDTH, rows, replace=True)
    store.finalize_model("m")


def _read_across_a_finalize(tmp_path, keep):
    store = _store(tmp_path / "db", keep)
    planned, go, results = CTX.Event(), CTX.Event(), CTX.Queue()
    reader = CTX.Process(target=_reader_worker.planned_reader, args=(store.uri, "m", planned, go, results))
    reader.start()
    try:
        assert planned.wait(timeout=120), "the reader never planned its scan"
        _overwrite_and_finalize(store)
        go.set()
        return results.get(timeout=120), store
    finally:
        reader.join(timeout=60)


def test_a_reader_planned_before_another_process_finalizes_still_collects_its_snapshot(tmp_path):
    outcome, store = _read_across_a_finalize(tmp_path, keep="1h")
    assert outcome[0] == "ok", outcome[-1]
    _, ids, total, scanner_ids = outcome
    assert ids == scanner_ids == sorted(f"eng:text:{i}" for i in range(20))  # the planned version
    assert total == pytest.approx(20 * WIDTH * 1.0)  # its vectors, not the overwrite's
    # the writer's own view is the new version, and the store is finalized (versions in the window
    # are kept on purpose: neither finalize_needed nor check counts them)
    assert store.read("m", points="text.L1").vectors.sum() == pytest.approx(30 * WIDTH * 2.0)
    assert store.finalize_needed("m") == []
    assert not {p.kind for p in check_store(store).problems} & {"old-versions", "indices", "fragments"}
    table = store.points("m")["table_name"][0]
    assert len(store.dataset(table).versions()) > 1
    # once the window is over (here: set to 0), the next finalize drops them
    store.finalize_model("m", keep_versions=0)
    assert len(store.dataset(table).versions()) == 1


def test_without_a_window_the_planned_reader_loses_its_files(tmp_path):
    """The failure the window prevents (and proof that the test above can fail)."""
    outcome, _ = _read_across_a_finalize(tmp_path, keep=0)
    assert outcome[0] == "error" and "not found" in outcome[1].lower(), outcome


def _versions(*seconds_ago: float, now: float) -> list[dict]:
    return [{"version": i + 1, "timestamp": datetime.fromtimestamp(now - s)} for i, s in enumerate(seconds_ago)]


def test_a_version_ages_from_when_it_was_superseded_not_from_when_it_was_written():
    now = 1_800_000_000.0
    # v1 written two days ago and the latest until 10 minutes ago (an idle store a reader opened
    # just before an ingest); v2 and v3 written by that ingest
    idle = _versions(2 * 86400, 600, 30, now=now)
    assert expired_versions(idle, timedelta(hours=1), now=now) == []
    assert expired_versions(idle, timedelta(minutes=5), now=now) == [1]  # v2: superseded 30 s ago
    assert expired_versions(idle, timedelta(seconds=20), now=now) == [1, 2]
    assert expired_versions(idle, timedelta(0), now=now) == [1, 2]  # never the latest
    assert expired_versions(_versions(10, now=now), timedelta(0), now=now) == []


def test_the_window_comes_from_the_argument_the_environment_or_the_default(monkeypatch):
    monkeypatch.delenv("ACTSTORE_KEEP_VERSIONS", raising=False)
    assert keep_window() == timedelta(hours=1)
    monkeypatch.setenv("ACTSTORE_KEEP_VERSIONS", "30m")
    assert keep_window() == timedelta(minutes=30)
    assert keep_window("90s") == timedelta(seconds=90) and keep_window(0) == timedelta(0)
    assert parse_duration("2d") == timedelta(days=2) and parse_duration("15") == timedelta(seconds=15)
    monkeypatch.setenv("ACTSTORE_KEEP_VERSIONS", "an hour")
    with pytest.raises(StoreError, match="ACTSTORE_KEEP_VERSIONS='an hour' is not a duration"):
        keep_window()
