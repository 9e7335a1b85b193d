"""A reader run in its own OS process (spawn) by tests/test_store_retention.py.

Kept apart from the test module so the spawned child imports only the store, not pytest fixtures.
"""

from __future__ import annotations

import traceback


def planned_reader(uri: str, model: str, planned, go, results) -> None:
    """Plan two reads of `model` (a lazy Polars scan and a Lance scanner), say so, wait for `go`
    (another process finalizes meanwhile), then collect both and report what they read."""
    try:
        import numpy as np
        import polars as pl

        from actstore.store import Store

        store = Store.open(uri, create=False)
        lazy = store.scan_activations(model).select("sample_id", "vector")
        table = store.points(model)["table_name"][0]
        scanner = store.dataset(table).scanner(columns=["sample_id", "vector"])
        planned.set()
        if not go.wait(timeout=120):
            raise TimeoutError("the writer never finished")
        frame = lazy.collect().sort("sample_id")
        other = pl.from_arrow(scanner.to_table()).sort("sample_id")
        results.put(("ok", frame["sample_id"].to_list(), np.asarray(frame["vector"].to_list()).sum(),
                     other["sample_id"].to_list()))
    except BaseException:  # report every failure to the parent, which asserts on it
        results.put(("error", traceback.format_exc()))
