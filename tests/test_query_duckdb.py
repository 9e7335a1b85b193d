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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actstore.errors import QueryError
from actstore.query import Limits, run_query, unique_names

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
        if "(the row limit)" in message:  # refused for its size: DuckDB must agree it is that big
            n = reference.sql(f"SELECT COUNT(*) FROM ({sql})").fetchall()[0][0]
            assert n > Limits().max_rows, f"refused as too large, but DuckDB counts {n} rows: {sql!r}"
            return "agree"
        return "refused"
    table = reference.sql(sql).to_arrow_table()
    want = pl.from_arrow(table.rename_columns(unique_names(table.schema).names))
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


# ------------------------------------------------------------------ seeded generated queries

#: table -> columns (name, kind) the grammar may use: n = number, s = string
COLUMNS = {
    "activations": [("model", "s"), ("point", "s"), ("layer", "n"), ("lang", "s"), ("sentence_id", "n"),
                    ("resource_level", "s"), ("family", "s"), ("n_frames", "n")],
    "runs": [("model", "s"), ("status", "s"), ("n_items", "n"), ("params", "s")],
    "points": [("model", "s"), ("point", "s"), ("layer", "n"), ("width", "n")],
    "sentences": [("lang", "s"), ("sentence_id", "n"), ("text", "s")],
    "similarity": [("model", "s"), ("point", "s"), ("lang_a", "s"), ("score", "n"), ("n", "n")],
    "neurons_top": [("model", "s"), ("point", "s")],
}
LITERALS = {"s": ["'alpha'", "'beta'", "'eng'", "'zho'", "'text.L1'", "'done'", "'high'"],
            "n": ["1", "3", "7", "0.25", "NULL"]}


@st.composite
def generated_query(draw) -> str:
    """One SELECT from a small grammar: 1-3 tables joined any way, filters, aggregates, order."""
    n_tables = draw(st.integers(1, 3))
    names = [draw(st.sampled_from(sorted(COLUMNS))) for _ in range(n_tables)]
    cols = [(f"t{i}.{c}", k) for i, t in enumerate(names) for c, k in COLUMNS[t]]
    sql_from = f"{names[0]} t0"
    for i in range(1, n_tables):
        shared = sorted({c for c, _ in COLUMNS[names[i]]} & {c for j in range(i) for c, _ in COLUMNS[names[j]]})
        kind = draw(st.sampled_from([",", "CROSS JOIN", "JOIN", "LEFT JOIN", "FULL JOIN"] if shared else [",", "CROSS JOIN"]))
        if kind in (",", "CROSS JOIN"):
            sql_from += f"{kind if kind == ',' else ' ' + kind} {names[i]} t{i}"
        else:
            col = draw(st.sampled_from(shared))
            left = next(j for j in range(i) if col in {c for c, _ in COLUMNS[names[j]]})
            sql_from += f" {kind} {names[i]} t{i} ON t{left}.{col} = t{i}.{col}"
    where = ""
    if draw(st.booleans()):
        col, kind = draw(st.sampled_from(cols))
        lit = draw(st.sampled_from(LITERALS[kind]))
        where = " WHERE " + draw(st.sampled_from([
            f"{col} IS NULL", f"{col} IS NOT NULL", f"{col} = {lit}", f"{col} <> {lit}",
            f"{col} IN ({lit}, {draw(st.sampled_from(LITERALS[kind]))})",
            f"{col} BETWEEN 1 AND 5" if kind == "n" else f"{col} LIKE '%a%'",
            f"NOT ({col} > {lit})"]))
    if draw(st.booleans()):  # aggregate
        group = draw(st.sampled_from([None, *[c for c, _ in cols]]))
        num = [c for c, k in cols if k == "n"]
        aggs = draw(st.lists(st.sampled_from(
            ["COUNT(*)", *[f"COUNT({c})" for c, _ in cols], *[f"COUNT(DISTINCT {c})" for c, _ in cols],
             *[f"MIN({c})" for c in num], *[f"SUM({c})" for c in num], *[f"AVG({c})" for c in num]]),
            min_size=1, max_size=3, unique=True))
        select = ", ".join([*([group] if group else []), *[f"{a} AS a{i}" for i, a in enumerate(aggs)]])
        tail = f" GROUP BY {group}" if group else ""
        if group and draw(st.booleans()):
            tail += f" HAVING COUNT(*) > {draw(st.integers(0, 20))}"
        return f"SELECT {select} FROM {sql_from}{where}{tail}"
    picked = draw(st.lists(st.sampled_from([c for c, _ in cols]), min_size=1, max_size=3, unique=True))
    distinct = "DISTINCT " if draw(st.booleans()) else ""
    aliased = draw(st.booleans())  # unaliased: t0.model, t1.model name two columns `model`
    select = ", ".join(f"{c} AS c{i}" if aliased else c for i, c in enumerate(picked))
    tail = ""
    if draw(st.booleans()):
        tail = " ORDER BY " + ", ".join(f"c{i}" if aliased else str(i + 1) for i in range(len(picked)))
        tail += f" LIMIT {draw(st.integers(0, 30))}" if draw(st.booleans()) else ""
    return f"SELECT {distinct}{select} FROM {sql_from}{where}{tail}"


GENERATED = 150


@settings(derandomize=True, max_examples=GENERATED, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(sql=generated_query())
def test_generated_queries_agree_with_duckdb(store, reference, sql):
    assert check_against_duckdb(store, reference, sql) == "agree", sql
