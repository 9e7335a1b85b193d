"""Differential SQL testing: every corpus query answered by `actstore query` and by DuckDB agree.

DuckDB, reading the same tables from memory as plain Arrow tables (tests/_sql_store.py), is the
outside reference. The fixed corpus lives in tests/sql_corpus/*.sql; a seeded generated set
(hypothesis, derandomised) adds queries nobody wrote down. Results are compared as sets of rows
unless the query orders them, floats with a tolerance. A query actstore refuses must be listed
in REFUSED with the sentence fragment that explains why (so an unexpected refusal still fails).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from actstore.errors import QueryError
from actstore.query import run_query

from _sql_store import build_sql_store, reference_tables

CORPUS_DIR = Path(__file__).parent / "sql_corpus"

#: corpus queries actstore refuses on purpose, with the fragment of the sentence it answers
REFUSED: dict[str, str] = {}


def load_corpus() -> list[str]:
    """Statements of every corpus file: comment lines dropped, ';' at a line's end ends one."""
    out = []
    for path in sorted(CORPUS_DIR.glob("*.sql")):
        current = []
        for line in path.read_text("utf-8").splitlines():
            if line.lstrip().startswith("--") or not line.strip():
                continue
            current.append(line)
            if line.rstrip().endswith(";"):
                out.append("\n".join(current).rstrip().rstrip(";"))
                current = []
    return out


CORPUS = load_corpus()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_sql_store(tmp_path_factory.mktemp("sqlstore") / "db")


@pytest.fixture(scope="module")
def reference(store):
    con = duckdb.connect()
    for name, table in reference_tables(store).items():
        con.register(name, table)
    return con


def _ordered(sql: str) -> bool:
    """Whether the outermost query has ORDER BY (then row order is part of the answer)."""
    depth, last_order = 0, None
    for m in re.finditer(r"\(|\)|\border\s+by\b", sql, re.I):
        tok = m.group(0)
        depth += 1 if tok == "(" else -1 if tok == ")" else 0
        if tok not in "()" and depth == 0:
            last_order = m.start()
    return last_order is not None


def _norm(v):
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _norm(x)) for k, x in v.items()))
    return v


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    return a == b


def assert_same(sql: str, got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == want.columns, f"columns differ for {sql!r}: {got.columns} vs {want.columns}"
    g, w = got.rows(), want.rows()
    assert len(g) == len(w), f"{len(g)} rows, DuckDB {len(w)}, for {sql!r}"
    if not _ordered(sql):
        key = lambda r: tuple((x is None, repr(_norm(x))) for x in r)  # noqa: E731
        g, w = sorted(g, key=key), sorted(w, key=key)
    for rg, rw in zip(g, w):
        assert all(_close(a, b) for a, b in zip(rg, rw)), f"row {rg} vs DuckDB {rw} for {sql!r}"


def check_against_duckdb(store, reference, sql: str) -> str:
    """'agree' or 'refused' (with an expected one-sentence reason); fails on any disagreement."""
    try:
        got = run_query(store, sql)
    except QueryError as exc:
        message = str(exc)
        assert message.endswith(".") and ". " not in message, message
        return "refused"
    want = pl.from_arrow(reference.sql(sql).to_arrow_table())
    assert_same(sql, got, want)
    return "agree"


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 200 and len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("sql", CORPUS)
def test_corpus_agrees_with_duckdb(store, reference, sql):
    outcome = check_against_duckdb(store, reference, sql)
    if sql in REFUSED:
        assert outcome == "refused", f"{sql!r} was expected to be refused"
    else:
        assert outcome == "agree", f"{sql!r} was refused but is not listed in REFUSED"


def test_count_over_implicit_and_cross_joins_is_right(store):
    """Issue 14: Polars SQL answered 0 for these; the store has 3 runs and 144 activation rows."""
    assert run_query(store, "SELECT COUNT(*) AS n FROM runs a, runs b")["n"].to_list() == [9]
    assert run_query(store, "SELECT COUNT(*) AS n FROM runs a CROSS JOIN runs b")["n"].to_list() == [9]
    assert run_query(store, "SELECT count(a.run_id) AS n FROM runs a, runs b")["n"].to_list() == [9]
    assert run_query(store, "SELECT COUNT(*) AS n FROM activations a, runs b, points c")["n"].to_list() == [144 * 15]
