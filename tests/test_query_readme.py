"""The README's "Reading the store directly" calls run and answer right (a doc test)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from actstore.store import Store

from _store_data import put

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet() -> str:
    text = README.read_text("utf-8")
    after = text.split("<!-- README-direct-read", 1)[1]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


def test_readme_direct_read_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store.open(tmp_path / "actstore.lance")
    rng = np.random.default_rng(0)
    put(store, "all-MiniLM-L6-v2", "text.L6", "text", "eng", range(1, 6), rng.standard_normal((5, 8)).astype(np.float32))
    put(store, "all-MiniLM-L6-v2", "text.L6", "text", "fra", range(1, 4), rng.standard_normal((3, 8)).astype(np.float32))
    put(store, "other", "text.L6", "text", "eng", range(1, 3), rng.standard_normal((2, 4)).astype(np.float32))
    ns: dict = {}
    exec(compile(_snippet(), "README.md", "exec"), ns)  # noqa: S102 - our own README
    assert ns["name"].startswith("act_all_minilm_l6_v2_") and ns["name"].endswith("_d8")
    assert ns["by_lang"].rows() == [("eng", 5), ("fra", 3)]
    assert ns["by_lang_pl"].rows() == [("eng", 5), ("fra", 3)]
    assert ns["pairs"] == 64


def test_readme_polars_caveat_is_still_true(tmp_path):
    """If Polars fixes its zero-column cross join count, this fails: then drop the caveat."""
    import polars as pl

    store = Store.open(tmp_path / "db")
    put(store, "m", "p", "text", "eng", range(1, 5), np.zeros((4, 3), np.float32))
    lazy = pl.scan_pyarrow_dataset(store.dataset(store.points()["table_name"][0]))
    assert lazy.join(lazy, how="cross").select(pl.len()).collect().item() == 0  # the bug: 16 is right
