"""Formatting query results for the terminal or files: table, csv, json, parquet."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from actstore.errors import ActstoreError

if TYPE_CHECKING:  # polars is imported when a frame is written, so `actstore --help` stays fast
    import polars as pl

FORMATS = ("table", "csv", "json", "parquet")


def _flatten_nested(df: pl.DataFrame) -> pl.DataFrame:
    """CSV cannot hold lists (vectors, point lists): write them as JSON-like text."""
    import polars as pl

    nested = [c for c, t in df.schema.items() if isinstance(t, (pl.List, pl.Array, pl.Struct))]
    if not nested:
        return df
    return df.with_columns(
        pl.col(c).map_elements(lambda v: "[" + ",".join(str(x) for x in v) + "]"
                               if v is not None else None, return_dtype=pl.String)
        for c in nested
    )


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
        import polars as pl

        with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200,
                       tbl_hide_dataframe_shape=False):
            text = str(df) + "\n"
    elif fmt == "csv":
        text = _flatten_nested(df).write_csv()
    else:
        text = df.write_json() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
