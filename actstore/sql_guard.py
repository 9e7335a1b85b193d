"""What `actstore query` lets through: one read-only query over the store's own tables.

Polars SQL can read any file the process can read (`read_csv('/etc/passwd')`, `read_parquet`,
`read_json`, `read_ipc`, ...), so looking at the first keyword is not enough. Every statement is
parsed with a real SQL parser (sqlglot, PostgreSQL dialect: Polars SQL follows PostgreSQL's
syntax, `::` casts, `~` regex, 1-based list indexing) and refused unless

- it is exactly one statement, a SELECT (with WITH, subqueries, UNION/INTERSECT/EXCEPT, VALUES);
  `EXPLAIN <select>` and `SHOW TABLES` are the only other forms;
- every table it names is a store table (or one of its own CTEs), unqualified, never a path,
  string or table function (UNNEST of a column and VALUES are allowed);
- every function it calls is on `SAFE_FUNCTIONS` (aggregates, window, math, string, date,
  casting and list functions); anything else, above all a function reading files, is refused.

Each refusal is one sentence naming the problem and the fix. The SQL that runs is the text the
user wrote (sqlglot's re-rendering would change function spellings Polars needs), so parser
differences are closed from the other side too: `check_plan` refuses any Polars plan that scans
something other than the store's own lazy scans (e.g. a `Csv SCAN [/etc/passwd]`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import ParseError, TokenError

from actstore.errors import QueryError

DIALECT = "postgres"

#: Functions a query may call (upper case). Names are those Polars SQL 2.1 implements (each one
#: checked to run), plus syntax forms (CASE, CAST, EXTRACT) and the canonical sqlglot spellings
#: some of them parse to (GROUP_CONCAT for STRING_AGG, STR_POSITION
#: for STRPOS, ARRAY_SIZE for ARRAY_LENGTH, EXPLODE for UNNEST in a SELECT list).
SAFE_FUNCTIONS = frozenset("""
    COUNT SUM AVG MIN MAX MEDIAN FIRST LAST STDDEV STDDEV_SAMP STDEV VARIANCE
    VAR_SAMP VAR QUANTILE_CONT QUANTILE_DISC CORR COVAR COVAR_SAMP COVAR_POP
    ARRAY_AGG STRING_AGG GROUP_CONCAT
    ROW_NUMBER RANK DENSE_RANK FIRST_VALUE LAST_VALUE LAG LEAD
    ABS CBRT CEIL CEILING DIV EXP FLOOR LN LOG LOG2 LOG10 LOG1P MOD PI POW POWER ROUND SIGN SQRT
    DEGREES RADIANS SIN COS TAN COT ASIN ACOS ATAN ATAN2 SIND COSD TAND COTD ASIND ACOSD ATAND
    ATAN2D GREATEST LEAST
    COALESCE IFNULL NULLIF IF CASE EXISTS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP
    BIT_LENGTH CONCAT CONCAT_WS ENDS_WITH INITCAP LEFT LENGTH CHAR_LENGTH CHARACTER_LENGTH LOWER
    LTRIM RTRIM TRIM NORMALIZE OCTET_LENGTH REGEXP_LIKE REPLACE REVERSE RIGHT SPLIT_PART
    STARTS_WITH STRPOS STR_POSITION SUBSTR SUBSTRING UPPER STRING_TO_ARRAY
    DATE DATE_PART EXTRACT STRFTIME STRPTIME TIMESTAMP
    CAST TRY_CAST
    ARRAY_CONTAINS ARRAY_GET ARRAY_LENGTH ARRAY_SIZE ARRAY_LOWER ARRAY_UPPER ARRAY_MEAN
    ARRAY_SUM ARRAY_REVERSE ARRAY_TO_STRING ARRAY_UNIQUE UNNEST EXPLODE
""".split())

#: Polars table functions that read files: refused with a message that says so.
FILE_FUNCTIONS = frozenset({"READ_CSV", "READ_PARQUET", "READ_JSON", "READ_NDJSON", "READ_IPC",
                            "READ_DELTA", "READ_EXCEL", "READ_DATABASE", "SCAN_CSV", "SCAN_PARQUET"})

_SHOW_TABLES = re.compile(r"^\s*show\s+tables\s*;?\s*$", re.I)
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
    if not isinstance(tree, exp.Query) or isinstance(tree, exp.Subquery):
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


def check_plan(plan: str) -> None:
    """Refuse a Polars plan (`LazyFrame.explain()`) that scans anything but the store's datasets.

    A backstop behind `check_query`: whatever the parser thought, the engine must not open a file.
    """
    for line in plan.splitlines():
        m = re.match(r"\s*([A-Za-z]+) SCAN\b", line)
        if m and m.group(1).upper() not in _ALLOWED_SCANS:
            raise QueryError(f"The query would read a {m.group(1)} file outside the store and is "
                             "refused; query only the store's tables.")
