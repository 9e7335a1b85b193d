"""Several OS processes writing one store at once: no crash on a new store, one row per key."""

import multiprocessing

import numpy as np
import polars as pl

from actstore.schema import ACTIVATION_KEY, SENTENCES_KEY
from actstore.store import Store

import _store_workers
from _store_data import put

CTX = multiprocessing.get_context("spawn")  # Lance is not fork-safe


def _run(target, n: int, *args) -> list[str]:
    barrier, results = CTX.Barrier(n), CTX.Queue()
    procs = [CTX.Process(target=target, args=(*args, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return outcomes


def test_first_writers_of_a_new_store_all_succeed(tmp_path):
    uri = str(tmp_path / "new.lance")
    outcomes = _run(_store_workers.first_writer, 4, uri)
    assert outcomes == ["ok"] * 4, "\n".join(o for o in outcomes if o != "ok")
    store = Store.open(uri, create=False)
    assert store.meta()["schema_version"] == str(store.schema_version)
    assert len(store._open_table("meta").to_arrow()) == 3  # one creator's rows, not four
    assert store.runs().height == 4
    assert store.points("m").height == 1
    assert store.count_rows("m") == 5


def test_two_processes_writing_the_same_keys_leave_one_row_per_key(tmp_path):
    uri = str(tmp_path / "db")
    seed = Store.open(uri)  # the tables exist before the race: the race is on the keys
    put(seed, "m", "text.L1", "text", "eng", [999], np.zeros((1, 8), np.float32))
    rounds = 3
    outcomes = _run(_store_workers.same_keys_writer, 2, uri, rounds)
    assert outcomes == ["ok", "ok"], "\n".join(o for o in outcomes if o != "ok")
    store = Store.open(uri, create=False)
    rows = store.scan_activations("m", with_vectors=False).collect()
    assert rows.height == 1 + 40 * rounds
    assert rows.select(ACTIVATION_KEY).is_duplicated().sum() == 0
    texts = store.sentences()
    assert texts.height == 40 * rounds
    assert texts.select(SENTENCES_KEY).is_duplicated().sum() == 0
    # the upsert round (r1) kept the writers' value (both wrote the same): no row lost its vector
    last = store.read("m", points="text.L1", where="sample_id LIKE '%-r1'")
    assert len(last) == 40 and np.all(last.vectors == 1.0)
    assert rows.filter(pl.col("sample_id").str.ends_with("-r0")).height == 40
