"""SQL a newcomer can use: DESCRIBE, the keyword-column warning, wide results, CSV of nested values."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest

from actstore.output import _flatten_nested, terminal_text, write_frame
from actstore.query import run_query
from actstore.store import Store

from _store_data import put


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("newcomer") / "db")
    put(s, "m", "text.L1", "text", "eng", range(1, 4), np.ones((3, 4), np.float32))
    s.write_results("similarity", pl.DataFrame({"model": ["m"], "lang_a": ["eng"], "score": [0.5]}),
                    key=["model", "lang_a"])
    return s


def test_describe_is_answered_not_refused(store):
    df = run_query(store, "DESCRIBE activations")
    types = dict(zip(df["column_name"], df["column_type"]))
    assert types["sentence_id"] == "BIGINT" and types["vector"] == "FLOAT[]"
    df = run_query(store, "DESCRIBE SELECT lang, COUNT(*) AS n FROM activations GROUP BY lang")
    assert df["column_name"].to_list() == ["lang", "n"]


def test_show_tables_lists_only_what_sql_sees(store):
    core = [t for t in ("runs", "points", "sentences") if store.has_table(t)]
    assert run_query(store, "SHOW TABLES")["name"].to_list() == ["activations", *core, "similarity"]


def test_keyword_in_select_list_warns(store, caplog):
    with caplog.at_level(logging.WARNING, logger="actstore.query"):
        df = run_query(store, "SELECT null FROM similarity")
    assert df.to_series().to_list() == [None]
    assert any("is the SQL keyword NULL" in r.getMessage() and '"null"' in r.getMessage() for r in caplog.records)


def test_aliased_or_quoted_keywords_do_not_warn(store, caplog):
    with caplog.at_level(logging.WARNING, logger="actstore.query"):
        run_query(store, "SELECT NULL AS nothing, TRUE AS yes, score FROM similarity")
    assert not caplog.records


def test_wide_results_print_one_block_per_row():
    df = pl.DataFrame({f"column_{i}": [f"value {i}" * 3, None] for i in range(12)})
    text = terminal_text(df, width=80)
    assert "-[ row 1 ]" in text and "-[ row 2 ]" in text and "(2 rows, 12 columns)" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    narrow = terminal_text(pl.DataFrame({"a": [1], "b": ["x"]}), width=80)
    assert "┆" in narrow and "-[ row" not in narrow  # a grid when it fits


def test_csv_writes_struct_values_not_field_names(tmp_path):
    df = pl.DataFrame({"k": [1, 2], "s": [{"a": 1, "b": "x"}, None]})
    out = tmp_path / "s.csv"
    write_frame(df, "csv", str(out))
    got = pl.read_csv(out)
    assert got["s"].to_list() == ['{"a":1,"b":"x"}', None]


def test_csv_lists_are_vectorised_and_unchanged():
    """Same text as the old per-row `"[" + ",".join(str(x) ...) + "]"` for float and int lists."""
    df = pl.DataFrame({"v": [[0.1, -2.5, 3.0], None, []], "i": [[1, 2], [3], None]},
                      schema_overrides={"v": pl.List(pl.Float32)})
    old = {c: [None if v is None else "[" + ",".join(str(x) for x in v) + "]" for v in df[c].to_list()]
           for c in df.columns}
    new = _flatten_nested(df)
    assert new["v"].to_list() == old["v"] and new["i"].to_list() == old["i"]
    fixed = pl.DataFrame({"a": [[1.5, 2.0]]}, schema={"a": pl.Array(pl.Float64, 2)})
    assert _flatten_nested(fixed)["a"].to_list() == ["[1.5,2.0]"]


def test_explain_prints_the_whole_plan(store):
    text = terminal_text(run_query(store, "EXPLAIN SELECT lang, COUNT(*) FROM activations GROUP BY lang"), width=80)
    assert "…" not in text and "explain_key" not in text and "SCAN" in text.upper()
