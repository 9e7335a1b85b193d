"""Bounded queries: row, memory and time limits, streaming to -o, no file touched outside the store."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import struct
import sys

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from actstore.cli import main
from actstore.errors import QueryError
from actstore.query import Limits, run_query, stream_query
from actstore.store import Store

from _store_data import put

CROSS3 = "SELECT a.sample_id, b.lang, c.sentence_id FROM activations a, activations b, activations c"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("bounds") / "db")
    rng = np.random.default_rng(0)
    put(s, "m", "text.L1", "text", "eng", range(1, 31), rng.standard_normal((30, 4)).astype(np.float32))
    put(s, "m", "text.L1", "text", "fra", range(1, 31), rng.standard_normal((30, 4)).astype(np.float32))
    return s


# ------------------------------------------------------------------ limits: one sentence each
def test_row_limit_names_the_limit_and_the_flag(store):
    with pytest.raises(QueryError) as info:
        run_query(store, CROSS3, Limits(max_rows=1000))
    msg = str(info.value)
    assert "more than 1,000 rows" in msg and "--max-rows" in msg and msg.endswith(".") and ". " not in msg


def test_row_limit_zero_means_none(store):
    assert run_query(store, "SELECT * FROM activations a, activations b", Limits(max_rows=None)).height == 3600


def test_time_limit_stops_the_query(store):
    # 60^5 = 7.8e8 rows, each concatenating five strings: DuckDB cannot shortcut it (a bare
    # COUNT(*) of a cross join it counts in 0.08 s), so it never finishes within the limit
    five = ("SELECT sum(length(a.sample_id || b.sample_id || c.sample_id || d.sample_id || e.sample_id)) "
            "FROM activations a, activations b, activations c, activations d, activations e")
    with pytest.raises(QueryError, match=r"longer than 0\.2 s \(the time limit\).*--timeout"):
        run_query(store, five, Limits(timeout_s=0.2))


def test_time_limit_stops_a_streaming_query_and_leaves_no_file(store, tmp_path):
    five = ("SELECT a.sample_id, b.sample_id, c.lang FROM activations a, activations b, activations c, "
            "activations d, activations e")
    with pytest.raises(QueryError, match=r"\(the time limit\)"):  # 7.8e8 rows of text: not in 0.3 s
        stream_query(store, five, tmp_path / "x.parquet", "parquet", Limits(max_rows=None, timeout_s=0.3))
    assert list(tmp_path.iterdir()) == []


def test_memory_limit_stops_the_query(store):
    agg = ("SELECT string_agg(a.sample_id || b.sample_id || c.sample_id, ',') AS s "
           "FROM activations a, activations b, activations c")
    with pytest.raises(QueryError, match=r"more than 8MB of memory \(the memory limit\).*--memory-limit"):
        run_query(store, agg, Limits(memory="8MB"))


def test_bad_memory_limit_is_one_sentence(store):
    with pytest.raises(QueryError, match=r"'lots' is not a size.*--memory-limit"):
        run_query(store, "SELECT 1", Limits(memory="lots"))


# ------------------------------------------------------------------ streaming to a file
@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_stream_writes_what_run_query_returns(store, tmp_path, fmt):
    sql = "SELECT sample_id, lang, sentence_id, vector FROM activations ORDER BY sample_id"
    path = tmp_path / f"x.{fmt}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("actstore.query.BATCH_ROWS", 7)  # many batches
        n = stream_query(store, sql, path, fmt)
    want = run_query(store, sql)
    assert n == want.height == 60
    if fmt == "parquet":
        got = pl.read_parquet(path)
        assert got.equals(want)
    elif fmt == "json":
        rows = json.loads(path.read_text())
        assert [r["sample_id"] for r in rows] == want["sample_id"].to_list()
        np.testing.assert_allclose(rows[3]["vector"], want["vector"][3].to_list(), rtol=1e-6)
    else:
        got = pl.read_csv(path)
        assert got["sample_id"].to_list() == want["sample_id"].to_list() and got.height == 60
        assert got["vector"][0].startswith("[") and got["vector"][0].count(",") == 3


def test_stream_stopped_by_a_limit_leaves_no_file(store, tmp_path):
    path = tmp_path / "big.parquet"
    with pytest.raises(QueryError, match="row limit"):
        stream_query(store, CROSS3, path, "parquet", Limits(max_rows=5000))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ no file outside the store
class _Inotify:
    """Records every open/read of files in one folder, by any code in this process (C and Rust too)."""

    IN_ACCESS, IN_OPEN = 0x1, 0x20

    def __init__(self, folder):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK)
        assert self.fd >= 0
        assert libc.inotify_add_watch(self.fd, str(folder).encode(), self.IN_ACCESS | self.IN_OPEN) >= 0

    def events(self) -> list[str]:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i < len(data):
            _wd, _mask, _cookie, size = struct.unpack_from("iIII", data, i)
            out.append(data[i + 16:i + 16 + size].rstrip(b"\0").decode())
            i += 16 + size
        return out

    def close(self):
        os.close(self.fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_parquet('{dir}/s.parquet')",
    "SELECT * FROM '{dir}/s.parquet'",
    "SELECT * FROM read_csv('{dir}/s.csv')",
    "SELECT * FROM read_csv_auto('{dir}/s.csv') WHERE nosuch = 1",
    "SELECT * FROM glob('{dir}/*')",
    "SELECT nosuch FROM read_text('{dir}/s.csv')",
    "DESCRIBE SELECT * FROM read_parquet('{dir}/s.parquet')",
    "EXPLAIN SELECT * FROM read_json('{dir}/s.json')",
])
def test_refusing_a_file_read_never_opens_the_file(store, tmp_path, sql):
    """The check refuses before any engine plans the statement: not even a schema is read."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    frame = pl.DataFrame({"secret": ["s3cr3t"]})
    frame.write_parquet(secrets / "s.parquet")
    frame.write_csv(secrets / "s.csv")
    frame.write_json(secrets / "s.json")
    watch = _Inotify(secrets)
    try:
        with pytest.raises(QueryError):
            run_query(store, sql.format(dir=secrets))
        assert watch.events() == []
    finally:
        watch.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_engine_itself_cannot_open_files(store, tmp_path):
    """Behind the guard: the engine's connection has file access off and its settings locked."""
    import duckdb

    from actstore.query_engine import connect

    pl.DataFrame({"secret": ["s3cr3t"]}).write_parquet(tmp_path / "s.parquet")
    watch = _Inotify(tmp_path)
    con = connect(store)
    try:
        for sql in (f"SELECT * FROM read_parquet('{tmp_path}/s.parquet')", f"SELECT * FROM '{tmp_path}/s.parquet'",
                    "SET enable_external_access = true", f"COPY (SELECT 1) TO '{tmp_path}/out.csv'"):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert watch.events() == [] and sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"]
    finally:
        con.close()
        watch.close()


# ------------------------------------------------------------------ the CLI: thin, one sentence
def test_cli_row_limit_message_and_exit(store):
    res = CliRunner().invoke(main, ["query", "--db", str(store.uri), CROSS3, "--max-rows", "10"])
    assert res.exit_code == 1 and "--max-rows" in res.output and "Traceback" not in res.output


def test_cli_streams_by_suffix(store, tmp_path):
    out = tmp_path / "all.parquet"
    res = CliRunner().invoke(main, ["query", "--db", str(store.uri), "SELECT * FROM activations", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(out).height == 60


def test_cli_schema(store):
    res = CliRunner().invoke(main, ["query", "--db", str(store.uri), "--schema", "--format", "csv"])
    assert res.exit_code == 0, res.output
    tables = pl.read_csv(res.output.encode())
    assert tables.row(0, named=True)["table"] == "activations" and tables.row(0, named=True)["rows"] == 60
    res = CliRunner().invoke(main, ["query", "--db", str(store.uri), "--schema", "points", "--format", "csv"])
    cols = pl.read_csv(res.output.encode())
    assert "vector_dtype" in cols["column"].to_list() and "VARCHAR" in cols["type"].to_list()
    res = CliRunner().invoke(main, ["query", "--db", str(store.uri), "--schema", "nope"])
    assert res.exit_code == 1 and "tables are: activations" in res.output
