"""What `actstore query` lets through: one read-only query over the store's own tables.

An SQL engine can read any file the process can read (`read_csv('/etc/passwd')`, `FROM
'x.parquet'`, `glob`, ...), so looking at the first keyword is not enough. Every statement is
parsed with a real SQL parser (sqlglot, DuckDB dialect: the engine is DuckDB) and refused unless

- it is exactly one statement, a SELECT (with WITH, subqueries, UNION/INTERSECT/EXCEPT, VALUES);
  `EXPLAIN <select>`, `DESCRIBE <table or select>` and `SHOW TABLES` are the only other forms;
- every table it names is a store table (or one of its own CTEs), unqualified, never a path,
  string or table function (UNNEST of a column and VALUES are allowed);
- every function it calls is on `SAFE_FUNCTIONS` (aggregates, window, math, string, date,
  casting and list functions); anything else, above all a function reading files, is refused.

Each refusal is one sentence naming the problem and the fix. The SQL that runs is the text the
user wrote (sqlglot's re-rendering could change its meaning), so parser differences are closed
from the other side too: the engine runs with file access switched off and its configuration
locked (`actstore.query_engine`), so even a statement the parser misread cannot open a file.
`check_plan` is the same backstop for a Polars plan (the comparison engine in benchmarks/).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import ParseError, TokenError

from actstore.errors import QueryError

DIALECT = "duckdb"

#: Functions a query may call (upper case): DuckDB's aggregate, window, math, string, date,
#: casting and list functions, plus syntax forms (CASE, CAST, EXTRACT) and the canonical sqlglot
#: spellings some of them parse to (GROUP_CONCAT for STRING_AGG, STR_POSITION for STRPOS,
#: REGEXP_LIKE for `~`, EXPLODE for UNNEST in a SELECT list, ...). Nothing here reads a file,
#: the environment or the engine's settings (no READ_*, GLOB, GETENV, CURRENT_SETTING, QUERY).
SAFE_FUNCTIONS = frozenset("""
    COUNT COUNT_STAR COUNT_IF COUNTIF SUM AVG MEAN MIN MAX MEDIAN MODE FIRST LAST ANY_VALUE
    ARG_MIN ARG_MAX ARGMIN ARGMAX MIN_BY MAX_BY ARG_MAX_NULL ARG_MIN_NULL
    STDDEV STDDEV_SAMP STDDEV_POP STDEV VARIANCE VAR_SAMP VAR_POP VAR
    QUANTILE QUANTILE_CONT QUANTILE_DISC PERCENTILE_CONT PERCENTILE_DISC APPROX_QUANTILE
    APPROX_COUNT_DISTINCT APPROX_DISTINCT CORR COVAR COVAR_SAMP COVAR_POP KURTOSIS SKEWNESS
    ENTROPY PRODUCT FSUM FAVG SUMKAHAN BOOL_AND BOOL_OR LOGICAL_AND LOGICAL_OR EVERY HISTOGRAM
    REGR_SLOPE REGR_INTERCEPT REGR_R2 REGR_COUNT REGR_AVGX REGR_AVGY
    ARRAY_AGG LIST STRING_AGG GROUP_CONCAT LISTAGG
    ROW_NUMBER RANK DENSE_RANK PERCENT_RANK CUME_DIST NTILE FIRST_VALUE LAST_VALUE NTH_VALUE LAG LEAD
    ABS CBRT CEIL CEILING DIV EXP FLOOR LN LOG LOG2 LOG10 LOG1P MOD PI POW POWER ROUND SIGN SQRT
    DEGREES RADIANS SIN COS TAN COT ASIN ACOS ATAN ATAN2 GREATEST LEAST ISNAN ISINF ISFINITE
    TRUNC EVEN GAMMA LGAMMA FACTORIAL GCD LCM XOR BIT_COUNT
    COALESCE IFNULL NULLIF IF IFF CASE EXISTS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP NOW
    BIT_LENGTH CONCAT CONCAT_WS ENDS_WITH SUFFIX INITCAP LEFT LENGTH LEN STRLEN CHAR_LENGTH
    CHARACTER_LENGTH LOWER LCASE UPPER UCASE LTRIM RTRIM TRIM LPAD RPAD PAD NORMALIZE OCTET_LENGTH
    REGEXP_LIKE REGEXP_MATCHES REGEXP_FULL_MATCH REGEXP_REPLACE REGEXP_EXTRACT REGEXP_EXTRACT_ALL
    REGEXP_SPLIT_TO_ARRAY REPLACE REVERSE RIGHT SPLIT_PART STARTS_WITH PREFIX STRPOS STR_POSITION
    POSITION INSTR CONTAINS SUBSTR SUBSTRING REPEAT ASCII CHR UNICODE ORD FORMAT PRINTF MD5 HASH
    LEVENSHTEIN EDITDIST3 DAMERAU_LEVENSHTEIN HAMMING JACCARD JARO_SIMILARITY JARO_WINKLER_SIMILARITY
    STRING_TO_ARRAY STRING_SPLIT STR_SPLIT SPLIT TRANSLATE LIKE_ESCAPE ILIKE_ESCAPE
    DATE DATE_PART DATEPART EXTRACT STRFTIME STRPTIME TIMESTAMP DATE_TRUNC DATETRUNC
    TIMESTAMP_TRUNC DATE_DIFF DATEDIFF DATE_SUB DATESUB DATE_ADD DATEADD TIME_TO_UNIX EPOCH EPOCH_MS
    MAKE_DATE MAKE_TIMESTAMP TO_TIMESTAMP AGE YEAR MONTH DAY HOUR MINUTE SECOND DAYOFWEEK
    DAYOFYEAR WEEK QUARTER DAYNAME MONTHNAME LAST_DAY STR_TO_TIME TIME_STR_TO_TIME TS_OR_DS_TO_DATE
    TIME_TO_STR STR_TO_DATE UNIX_TO_TIME TIMESTAMP_DIFF TIMESTAMP_ADD TIMESTAMP_SUB
    CAST TRY_CAST TYPEOF
    ARRAY ARRAY_CONTAINS ARRAY_HAS LIST_CONTAINS LIST_HAS ARRAY_GET ARRAY_EXTRACT LIST_EXTRACT
    LIST_ELEMENT ARRAY_LENGTH ARRAY_SIZE ARRAY_LOWER ARRAY_UPPER ARRAY_MEAN ARRAY_SUM
    ARRAY_REVERSE ARRAY_TO_STRING ARRAY_JOIN ARRAY_UNIQUE UNNEST EXPLODE FLATTEN
    LIST_VALUE LIST_SORT ARRAY_SORT LIST_REVERSE_SORT LIST_DISTINCT ARRAY_DISTINCT LIST_UNIQUE
    LIST_SLICE ARRAY_SLICE LIST_CONCAT ARRAY_CONCAT LIST_CAT LIST_POSITION ARRAY_POSITION
    LIST_AGGREGATE LIST_AGGR ARRAY_AGGREGATE LIST_SUM LIST_AVG LIST_MIN LIST_MAX LIST_COUNT
    LIST_TRANSFORM ARRAY_TRANSFORM TRANSFORM LIST_FILTER ARRAY_FILTER FILTER LIST_REDUCE REDUCE
    LIST_DOT_PRODUCT LIST_INNER_PRODUCT LIST_COSINE_SIMILARITY LIST_DISTANCE ARRAY_DOT_PRODUCT
    ARRAY_INNER_PRODUCT ARRAY_COSINE_SIMILARITY ARRAY_DISTANCE ARRAY_TO_STRING LIST_HAS_ANY
    LIST_HAS_ALL ARRAY_HAS_ANY ARRAY_HAS_ALL ARRAY_OVERLAPS ARRAY_CONTAINS_ALL ARRAY_INTERSECT
    LIST_INTERSECT ARRAY_SUM ARRAY_LENGTH ARRAY_FIRST ARRAY_LAST
    STRUCT_EXTRACT STRUCT_PACK STRUCT ROW BRACKET
""".split())

#: Polars table functions that read files: refused with a message that says so.
FILE_FUNCTIONS = frozenset({"READ_CSV", "READ_PARQUET", "READ_JSON", "READ_NDJSON", "READ_IPC",
                            "READ_DELTA", "READ_EXCEL", "READ_DATABASE", "SCAN_CSV", "SCAN_PARQUET"})

_SHOW_TABLES = re.compile(r"^\s*show\s+tables\s*;?\s*$", re.I)
_KEYWORD_LITERALS = (exp.Null, exp.Boolean)
_EXPLAIN = re.compile(r"^\s*explain\b", re.I)
_ALLOWED_SCANS = {"PYTHON"}  # pl.scan_pyarrow_dataset over the store's Lance datasets

log = logging.getLogger("actstore.query")


def function_names(node: exp.Func) -> set[str]:
    """Every upper-case name under which sqlglot knows this call (user-defined: as written)."""
    if isinstance(node, exp.Anonymous):
        return {str(node.this).upper()}
    return {n.upper() for n in node.sql_names()}


def _describe(exc: Exception) -> str:
    """sqlglot's first error as 'what, near TOKEN at line L, column C' (no sentence breaks)."""
    errors = getattr(exc, "errors", None) or []
    if errors:
        e = errors[0]
        what = str(e.get("description", "syntax error")).split(" but got ")[0].rstrip(". ")
        near = str(e.get("highlight") or "").strip()
        where = f"line {e.get('line')}, column {e.get('col')}"
        return f"{what}, near {near!r} at {where}" if near else f"{what} at {where}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first.rstrip(".")


def _parse(sql: str) -> list[exp.Expression | None]:
    sqlglot_log = logging.getLogger("sqlglot")
    level = sqlglot_log.level
    sqlglot_log.setLevel(logging.ERROR)  # silence "falling back to parsing as a Command"
    try:
        return sqlglot.parse(sql, read=DIALECT)
    except (ParseError, TokenError) as exc:
        raise QueryError(f"The SQL does not parse ({_describe(exc)}); fix the statement and retry.") from None
    finally:
        sqlglot_log.setLevel(level)


def _refuse_statement(tree: exp.Expression) -> None:
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "EXPLAIN":
        inner = str(tree.expression.this if isinstance(tree.expression, exp.Literal) else tree.expression)
        word = inner.strip().split(None, 1)[0].upper() if inner.strip() else "nothing"
        raise QueryError(f"EXPLAIN {word} is refused because actstore query is read-only and the store "
                         "is unchanged; EXPLAIN a SELECT instead.")
    word = (str(tree.this) if isinstance(tree, exp.Command) else tree.key).upper()
    raise QueryError(f"actstore query is read-only: {word} statements are refused and the store is "
                     "unchanged; use SELECT (ingest with `actstore ingest`, remove with `actstore delete`).")


def _check_tables(tree: exp.Expression, tables: set[str]) -> None:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    known = {t.lower() for t in tables} | ctes
    for table in tree.find_all(exp.Table):
        source = table.this
        if isinstance(source, exp.Func):
            _check_function(source, in_from=True)
            continue
        if not isinstance(source, exp.Identifier):
            raise QueryError(f"FROM {table.sql(dialect=DIALECT)} is not a store table; query only "
                             f"the store's tables: {', '.join(sorted(tables))}.")
        if table.args.get("db") or table.args.get("catalog"):
            raise QueryError(f"Qualified table name {table.sql(dialect=DIALECT)!r} is refused; use "
                             f"the bare name of a store table: {', '.join(sorted(tables))}.")
        if source.name.lower() not in known:
            raise QueryError(f"Table {source.name!r} is not in this store; tables are: "
                             f"{', '.join(sorted(tables))}.")


def _check_function(node: exp.Func, in_from: bool = False) -> None:
    names = function_names(node)
    if names & FILE_FUNCTIONS:
        name = sorted(names & FILE_FUNCTIONS)[0]
        raise QueryError(f"{name}() reads files outside the store and is refused; query the store's "
                         "tables (activations, runs, points, sentences, results) instead.")
    if isinstance(node, (exp.Unnest, exp.Explode)):
        return
    if in_from:
        raise QueryError(f"Table function {sorted(names)[0]}() is refused; select FROM the store's "
                         "tables (activations, runs, points, sentences, results) instead.")
    if not names & SAFE_FUNCTIONS:
        raise QueryError(f"Function {sorted(names)[0]}() is not on the list of functions actstore "
                         "query allows; use aggregate, math, string, date, cast or list functions.")


def is_show_tables(sql: str) -> bool:
    """`SHOW TABLES`: answered with the store's table names, not by the engine (which has more)."""
    return bool(_SHOW_TABLES.match(sql))


def check_query(sql: str, tables: Iterable[str]) -> str:
    """Return the statement to run (the user's text, one statement) or raise QueryError.

    `tables` are the store's table names visible to SQL.
    """
    tables = set(tables)
    if _SHOW_TABLES.match(sql):
        return sql.strip().rstrip(";").strip()
    trees = [t for t in _parse(sql) if t is not None]
    if not trees:
        raise QueryError("The query is empty; pass one SELECT statement, e.g. \"SELECT * FROM runs\".")
    if len(trees) > 1:
        raise QueryError("Only one SQL statement is accepted per query; remove the extra statements after ';'.")
    tree = trees[0]
    body = sql.strip().rstrip(";").rstrip()
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "EXPLAIN":
        inner = tree.expression.this if isinstance(tree.expression, exp.Literal) else str(tree.expression)
        inner_trees = [t for t in _parse(inner) if t is not None]
        if len(inner_trees) != 1 or not isinstance(inner_trees[0], exp.Query):
            _refuse_statement(tree)
        tree = inner_trees[0]
    if isinstance(tree, exp.Describe):
        tree = _describe_target(tree, tables)
    if not isinstance(tree, (exp.Query, exp.Values)) or isinstance(tree, exp.Subquery):
        _refuse_statement(tree)
    for node in tree.walk():
        if isinstance(node, (exp.Into, exp.DML, exp.DDL, exp.Command)) and node is not tree:
            raise QueryError("actstore query is read-only: statements that write are refused and the "
                             "store is unchanged; use a plain SELECT.")
        if (isinstance(node, exp.Func) and not isinstance(node, exp.Connector)  # AND/OR are Funcs
                and not isinstance(node.parent, exp.Table)):
            _check_function(node)
    _check_tables(tree, tables)
    return body


def _describe_target(tree: exp.Describe, tables: set[str]) -> exp.Expression:
    """DESCRIBE of a store table or of a SELECT is a read: return what to check as a query."""
    target = tree.this
    if isinstance(target, exp.Table) and isinstance(target.this, exp.Identifier):
        return exp.select("*").from_(target.copy())
    if isinstance(target, exp.Query):
        return target
    raise QueryError("DESCRIBE takes a store table or a SELECT, for example DESCRIBE activations; tables "
                     f"are: {', '.join(sorted(tables))}.")


def keyword_columns(sql: str) -> list[str]:
    """Select-list items that are a bare keyword literal (NULL, TRUE, FALSE) without an alias.

    `SELECT null FROM similarity` is legal SQL for an all-null column, but almost always meant a
    column called "null"; the caller warns so the answer is not silently something else.
    """
    try:
        trees = [t for t in _parse(sql) if t is not None]
    except QueryError:
        return []
    found = []
    for tree in trees:
        while isinstance(tree, (exp.Union, exp.Intersect, exp.Except)):
            tree = tree.left  # the first branch names a set operation's columns
        if isinstance(tree, exp.Select):
            found += [e.sql(dialect=DIALECT) for e in tree.expressions if isinstance(e, _KEYWORD_LITERALS)]
    return found


def check_plan(plan: str) -> None:
    """Refuse a Polars plan (`LazyFrame.explain()`) that scans anything but the store's datasets.

    A backstop behind `check_query`: whatever the parser thought, the engine must not open a file.
    """
    for line in plan.splitlines():
        m = re.match(r"\s*([A-Za-z]+) SCAN\b", line)
        if m and m.group(1).upper() not in _ALLOWED_SCANS:
            raise QueryError(f"The query would read a {m.group(1)} file outside the store and is "
                             "refused; query only the store's tables.")
