"""Formatting query results for the terminal or files: table, csv, json, parquet.

Two paths: `write_frame` for a result already in memory, `write_batches` for a result of any size
that arrives as Arrow record batches (`actstore query -o FILE`), written batch by batch so memory
stays bounded by one batch.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from actstore.errors import ActstoreError

if TYPE_CHECKING:  # polars is imported when a frame is written, so `actstore --help` stays fast
    import polars as pl
    import pyarrow as pa

FORMATS = ("table", "csv", "json", "parquet")
STREAM_FORMATS = ("csv", "json", "parquet")


def _json_text(name: str) -> "pl.Expr":
    """The JSON text of a column's values (structs as objects, nested lists as arrays)."""
    import json

    import polars as pl

    prefix = len(json.dumps({name: 0}).split(":")[0]) + 1  # '{"name":'
    text = pl.struct(pl.col(name)).struct.json_encode().str.slice(prefix).str.head(-1)
    return pl.when(pl.col(name).is_null()).then(None).otherwise(text)


def _list_text(name: str, inner) -> "pl.Expr":
    """`[v1,v2,...]` for a flat list column, values as Python's str() wrote them before."""
    import polars as pl

    element = pl.element().cast(pl.Float64) if inner.is_float() else pl.element()
    joined = pl.col(name).cast(pl.List(inner)).list.eval(element.cast(pl.String)).list.join(",")
    return pl.when(pl.col(name).is_null()).then(None).otherwise(pl.concat_str(pl.lit("["), joined, pl.lit("]")))


def _flatten_nested(df: pl.DataFrame) -> pl.DataFrame:
    """CSV cannot hold nested values: flat lists become `[v1,v2,...]`, structs a JSON object.

    Vectorised (no Python call per row): a 5 M-row vector column is flattened at Polars speed.
    A struct used to be written as its field names (iterating a dict); its values are kept now.
    """
    import polars as pl

    exprs = []
    for c, t in df.schema.items():
        if isinstance(t, (pl.List, pl.Array)) and not t.inner.is_nested():
            exprs.append(_list_text(c, t.inner).alias(c))
        elif isinstance(t, (pl.List, pl.Array, pl.Struct)):
            exprs.append(_json_text(c).alias(c))
    return df.with_columns(exprs) if exprs else df


def check_output_path(path: Path) -> None:
    """Refuse an output path whose folder is missing or not writable, before anything is written."""
    folder = path.resolve().parent
    if path.is_dir():
        raise ActstoreError(f"{path} is a directory; pass a file path for -o, e.g. {path / 'out.csv'}.")
    if not folder.is_dir():
        raise ActstoreError(f"Cannot write {path}: the folder {folder} does not exist; create it "
                            "(mkdir -p) or pass another -o path.")
    if not os.access(folder, os.W_OK):
        raise ActstoreError(f"Cannot write {path}: the folder {folder} is not writable; pass another -o path.")


def terminal_text(df: pl.DataFrame, *, max_rows: int = 200, width: int | None = None) -> str:
    """The frame as the terminal shows it: a grid if it fits the width, else one block per row.

    A grid wider than the terminal wraps into unreadable lines; like psql's expanded mode, each
    row is then printed as `column | value` lines, long values (vectors) cut to the width.
    """
    import polars as pl

    if df.columns == ["explain_key", "explain_value"]:  # EXPLAIN: the plan is drawn text, print it
        return "\n".join(df["explain_value"].to_list()) + "\n"
    width = width or shutil.get_terminal_size((120, 40)).columns
    with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=10_000,
                   fmt_table_cell_list_len=6, tbl_hide_dataframe_shape=False):
        grid = str(df)
    if max(len(line) for line in grid.splitlines()) <= width or df.width <= 1:
        return grid + "\n"
    shown = df.head(max_rows)
    pad = max(len(c) for c in df.columns)
    keep = max(width - pad - 3, 20)
    lines = []
    for i, row in enumerate(shown.iter_rows()):
        lines.append(f"-[ row {i + 1} ]".ljust(min(width, pad + 20), "-"))
        for name, value in zip(df.columns, row):
            text = "null" if value is None else str(value).replace("\n", " ")
            lines.append(f"{name.ljust(pad)} | {text if len(text) <= keep else text[:keep - 1] + '…'}")
    more = f" (first {max_rows} shown)" if df.height > max_rows else ""
    lines.append(f"({df.height} rows, {df.width} columns{more})")
    return "\n".join(lines) + "\n"


def write_frame(df: pl.DataFrame, fmt: str, output: str | None = None, *, max_rows: int = 200) -> None:
    """Write `df` in `fmt` to `output` (a path) or stdout."""
    if fmt not in FORMATS:
        raise ActstoreError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if output is not None:
        check_output_path(Path(output))
    if fmt == "parquet":
        if output is None:
            buf = io.BytesIO()
            df.write_parquet(buf)
            sys.stdout.buffer.write(buf.getvalue())
            return
        df.write_parquet(output)
        return
    if fmt == "table":
        text = terminal_text(df, max_rows=max_rows, width=None if output is None else 10_000)
    elif fmt == "csv":
        text = _flatten_nested(df).write_csv()
    else:
        text = df.write_json() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")


def write_batches(schema: pa.Schema, batches: Iterable[pa.RecordBatch], fmt: str, path: Path) -> int:
    """Write record batches to `path` in `fmt` one batch at a time; return the rows written.

    The file appears only when every batch is written (a temporary file in the same folder is
    renamed), so a query stopped by a limit or an error leaves nothing behind.
    """
    import polars as pl
    import pyarrow.parquet as pq

    if fmt not in STREAM_FORMATS:
        raise ActstoreError(f"Format {fmt!r} cannot be streamed to a file; use one of "
                            f"{', '.join(STREAM_FORMATS)} with -o.")
    check_output_path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    rows = 0
    try:
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write("[" if fmt == "json" else "")
                first = True
                for batch in batches:
                    if batch.num_rows == 0 and not (first and fmt == "csv"):
                        continue
                    df = pl.from_arrow(pa_table(schema, batch))
                    if fmt == "csv":
                        fh.write(_flatten_nested(df).write_csv(include_header=first))
                    elif df.height:
                        fh.write(("" if first else ",") + df.write_json()[1:-1])
                    first = False
                    rows += batch.num_rows
                fh.write("]\n" if fmt == "json" else "")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def pa_table(schema: pa.Schema, batch: pa.RecordBatch) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_batches([batch], schema=schema)
