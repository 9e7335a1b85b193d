"""Read-only SQL over the store: named queries, refusals, parse errors."""

import numpy as np
import pytest

from actstore.errors import QueryError
from actstore.query import check_read_only, named_queries, run_query
from actstore.store import Store

from _store_data import put


@pytest.fixture()
def store(tmp_path):
    s = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    put(s, "m", "text.L1", "text", "eng", range(1, 11), rng.standard_normal((10, 4)).astype(np.float32))
    put(s, "m", "text.L1", "text", "fra", range(5, 15), rng.standard_normal((10, 4)).astype(np.float32))
    put(s, "m", "speech.L1", "speech", "eng", range(1, 8), rng.standard_normal((7, 4)).astype(np.float32))
    put(s, "m2", "text.L1", "text", "eng", range(3), rng.standard_normal((3, 6)).astype(np.float32))
    return s


def test_activations_spans_every_model(store):
    df = run_query(store, "SELECT model, COUNT(*) AS n FROM activations GROUP BY model ORDER BY model")
    assert df.rows() == [("m", 27), ("m2", 3)]


def test_vectors_are_queryable(store):
    df = run_query(store, "SELECT vector FROM activations WHERE model = 'm2' LIMIT 1")
    assert len(df["vector"][0]) == 6


@pytest.mark.parametrize("sql", [
    "DROP TABLE activations", "delete from activations", "INSERT INTO runs VALUES (1)",
    "UPDATE activations SET lang = 'x'", "CREATE TABLE x AS SELECT 1",
    "SELECT 1; DROP TABLE activations", "  -- comment\n drop table runs",
])
def test_writes_are_refused(store, sql):
    before = store.count_rows()
    with pytest.raises(QueryError):
        run_query(store, sql)
    assert store.count_rows() == before


def test_parse_error_is_one_clear_sentence(store):
    with pytest.raises(QueryError, match="does not parse"):
        run_query(store, "SELECT (1 + FROM activations")


def test_unknown_table(store):
    with pytest.raises(QueryError, match="tables are: activations"):
        run_query(store, "SELECT * FROM nope")


def test_semicolon_inside_string_is_not_a_second_statement():
    assert check_read_only("SELECT 'a;b' AS x;") == "SELECT 'a;b' AS x"


def test_named_queries(store):
    assert {"coverage", "shared_ids", "cross_modal_ids", "runs", "points"} <= set(named_queries())
    cov = run_query(store, named_queries()["coverage"])
    row = cov.filter((cov["lang"] == "fra")).row(0, named=True)
    assert row["n_sentences"] == 10
    shared = run_query(store, named_queries()["shared_ids"])
    pair = shared.filter((shared["model"] == "m") & (shared["modality"] == "text")).row(0, named=True)
    assert (pair["lang_a"], pair["lang_b"], pair["shared_ids"]) == ("eng", "fra", 6)
    xm = run_query(store, named_queries()["cross_modal_ids"])
    assert xm.filter(xm["model"] == "m")["ids_with_speech_and_text"].to_list() == [7]


# ------------------------------------------------------------------ issue 10 item 2: no file reads
ATTACKS = [
    "SELECT * FROM read_csv('/etc/passwd', has_header => false, separator => ':')",
    "select * from READ_CSV('/etc/passwd')",
    "SELECT * FROM /* hidden */ read_csv('/etc/passwd') -- trailing",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM read_json('{json}')",
    "SELECT * FROM read_ipc('{ipc}')",
    "SELECT (SELECT COUNT(*) FROM read_csv('/etc/passwd')) AS n FROM runs",
    "WITH x AS (SELECT * FROM read_parquet('{parquet}')) SELECT * FROM x",
    "SELECT model FROM activations UNION ALL SELECT column_0 FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM \"{parquet}\"",
    "SELECT * FROM other.activations",
    "EXPLAIN INSERT INTO runs VALUES (1)",
    "explain delete from activations",
    "EXPLAIN SELECT * FROM read_csv('/etc/passwd')",
    "SELECT 1; DROP TABLE activations",
    "SELECT 1 ; select * from read_csv('/etc/passwd')",
    "SELECT nosuchfn(lang) FROM activations",
    "SELECT * FROM generate_series(1, 3)",
    # DuckDB's own ways to reach files, settings and the environment (issue 14: the engine is DuckDB)
    "SELECT * FROM glob('/etc/*')", "SELECT getenv('HOME')", "SELECT current_setting('memory_limit')",
    "SELECT * FROM duckdb_settings()", "ATTACH '{parquet}.db' AS x", "COPY runs TO '{parquet}.csv'",
    "INSTALL httpfs", "LOAD httpfs", "PRAGMA database_list", "SET enable_external_access = true",
    "SELECT * FROM query('SELECT 1')", "SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM __act_0",
    "SELECT * FROM sniff_csv('/etc/passwd')", "FROM '{parquet}'", "SELECT * FROM main.runs",
    "SELECT * FROM activations a, LATERAL read_csv('/etc/passwd')", "DESCRIBE read_csv('/etc/passwd')",
    "DESCRIBE SELECT * FROM read_parquet('{parquet}')", "SELECT * FROM parquet_metadata('{parquet}')",
    "SELECT list_transform([1], x -> getenv('HOME'))", "SUMMARIZE runs", "EXPORT DATABASE '/tmp/x'",
]


@pytest.fixture()
def secret_files(tmp_path):
    """Readable files of every format Polars SQL has a reader for, outside the store."""
    import polars as pl

    frame = pl.DataFrame({"secret": ["s3cr3t"]})
    paths = {"parquet": tmp_path / "s.parquet", "json": tmp_path / "s.json", "ipc": tmp_path / "s.arrow"}
    frame.write_parquet(paths["parquet"])
    frame.write_json(paths["json"])
    frame.write_ipc(paths["ipc"])
    return paths


@pytest.mark.parametrize("sql", ATTACKS)
def test_query_reaches_store_tables_only(store, secret_files, sql):
    sql = sql.format(**secret_files)
    before = store.count_rows()
    with pytest.raises(QueryError) as info:
        run_query(store, sql)
    message = str(info.value)
    assert message.endswith(".") and message.count(". ") == 0, message  # one sentence
    assert "s3cr3t" not in message and "/bin/bash" not in message
    assert store.count_rows() == before


@pytest.mark.parametrize("sql, fragment", [
    ("SELECT * FROM read_csv('/etc/passwd')", "READ_CSV() reads files"),
    ("SELECT * FROM read_parquet('/x.parquet')", "READ_PARQUET() reads files"),
    ("EXPLAIN INSERT INTO runs VALUES (1)", "EXPLAIN INSERT is refused"),
    ("SELECT 1; DROP TABLE activations", "Only one SQL statement"),
    ("SELECT nosuchfn(lang) FROM activations", "NOSUCHFN() is not on the list"),
    ("SELECT * FROM '/etc/passwd'", "Table '/etc/passwd' is not in this store"),
])
def test_refusals_name_the_problem(store, sql, fragment):
    with pytest.raises(QueryError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        run_query(store, sql)


def test_plan_backstop_refuses_file_scans():
    """Whatever the parser thought, a Polars plan that opens a file is refused."""
    import polars as pl

    from actstore.sql_guard import check_plan

    lf = pl.SQLContext().execute("SELECT * FROM read_csv('/etc/passwd', has_header => false)")
    with pytest.raises(QueryError, match="outside the store"):
        check_plan(lf.explain(optimized=False))


@pytest.mark.parametrize("sql", [
    "SELECT lang, modality, COUNT(*) AS n FROM activations WHERE point = 'text.L1' GROUP BY ALL",  # README
    "select lang, count(*) as n from activations group by lang order by lang",
    "-- a comment\nSELECT DISTINCT lang FROM activations /* block */ ORDER BY lang;",
    "WITH a AS (SELECT lang, sentence_id FROM activations) SELECT COUNT(*) AS n FROM a",
    "SELECT lang FROM activations WHERE model = 'm' UNION SELECT lang FROM activations WHERE model = 'm2'",
    "SELECT sentence_id::float8 AS f, UPPER(lang) AS u, LENGTH(lang) AS l, ROUND(AVG(layer), 2) AS r "
    "FROM activations GROUP BY sentence_id, lang",
    "SELECT ARRAY_LENGTH(vector) AS d, vector[1] AS v1, CAST(layer AS DOUBLE) AS x FROM activations",
    "SELECT lang, ROW_NUMBER() OVER (PARTITION BY lang ORDER BY sentence_id) AS r FROM activations",
    "SELECT CASE WHEN lang = 'eng' AND layer >= 1 THEN 1 ELSE 0 END AS e, COALESCE(family, '-') AS f "
    "FROM activations WHERE lang ~ '^e' OR lang LIKE 'f%'",
    "SELECT * FROM (SELECT lang, COUNT(*) AS n FROM activations GROUP BY lang) AS t WHERE n > 1",
    "SELECT a.lang FROM activations AS a JOIN points AS p ON a.point = p.point LIMIT 3",
    "SHOW TABLES",
    "EXPLAIN SELECT lang FROM activations",
])
def test_ordinary_queries_still_run(store, sql):
    assert run_query(store, sql).height >= 1


def test_every_named_query_passes_the_guard():
    for name, sql in named_queries().items():
        assert check_read_only(sql) == sql.strip().rstrip(";").rstrip(), name
