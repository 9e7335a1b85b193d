"""Functions run in separate OS processes (spawn) by the store concurrency tests.

Kept apart from the test modules so a spawned child imports only the store, not pytest fixtures.
"""

from __future__ import annotations

import traceback

import numpy as np


def first_writer(uri: str, barrier, results) -> None:
    """Open a store that does not exist yet and write to it, started together with others."""
    try:
        from actstore.store import Store

        from _store_data import put

        barrier.wait(timeout=60)
        store = Store.open(uri)
        store.start_run({"model": "m"})
        put(store, "m", "text.L1", "text", "eng", range(5), np.ones((5, 4), np.float32))
        results.put("ok")
    except BaseException:  # report every failure to the parent, which asserts on it
        results.put(traceback.format_exc())


def same_keys_writer(uri: str, rounds: int, barrier, results) -> None:
    """Each round: write the SAME new keys as the other process at the same moment.

    Odd rounds insert-only (`replace=False`, what a fresh ingest does), even rounds upsert
    (`replace=True`, what --overwrite does); sentence texts every round.
    """
    try:
        import pyarrow as pa

        from actstore.store import Store
        from actstore.synthetic import activation_rows

        store = Store.open(uri)
        x = np.ones((40, 8), np.float32)
        for r in range(rounds):
            rows = activation_rows("m", "text.L1", "text", "eng", range(40), x * r,
                                   sample_suffix=f"-r{r}")
            texts = pa.table({"source": ["t"] * 40, "split": ["dev"] * 40, "lang": ["eng"] * 40,
                              "sentence_id": list(range(1000 * r, 1000 * r + 40)),
                              "text": [f"s{i}" for i in range(40)]})
            barrier.wait(timeout=60)
            store.write_activations("m", 8, rows, replace=bool(r % 2))
            store.write_sentences(texts)
        results.put("ok")
    except BaseException:
        results.put(traceback.format_exc())
