"""Plain HTML tables from Polars frames (escaped, numbers right-aligned, long tables cut).

Tables carry the exact numbers the charts only show as colour, and they need no JavaScript, so
a report opened in a restricted viewer still shows them.
"""

from __future__ import annotations

import html
from datetime import datetime

import polars as pl


def _cell(value: object, digits: int) -> tuple[str, bool]:
    """Text of one cell and whether it is numeric (right-aligned)."""
    if value is None:
        return "", False
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, float):
        return f"{value:.{digits}f}", True
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S"), False
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value), False
    return str(value), False


def html_table(frame: pl.DataFrame, digits: int = 3, max_rows: int = 200,
               headers: dict[str, str] | None = None) -> str:
    """Render `frame` as an escaped <table class="data">; rows beyond `max_rows` are summarised."""
    headers = headers or {}
    head = "".join(f"<th>{html.escape(headers.get(c, c))}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = []
        for value in row:
            text, numeric = _cell(value, digits)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if frame.height > max_rows:
        more = (f'<p class="note">Showing the first {max_rows} of {frame.height} rows.</p>')
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'
