"""`actstore delete`: remove a model's activations, or only one corpus, point or run of it.

A user who ingested the wrong manifest, a point they no longer need, or a run with a bad setting
should not have to drop the whole model. Every selection is validated against what is stored
before anything is deleted (an unknown corpus, point or run is one sentence, and nothing
changes). Each activation table is changed by one delete commit; a point is unregistered once no
row of it is left, so readers never see a registered point without rows. A kill between tables
leaves a state the same command completes (deleting is idempotent). Runs and results stay: they
are the record of what was computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import polars as pl

from actstore.errors import StoreError
from actstore.schema import POINTS_TABLE, sql_in, sql_quote


@dataclass
class Deletion:
    """What one delete removed: rows per table and the points no longer registered."""

    rows: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    unregistered: list[str] = field(default_factory=list)


def _stored(store, model: str, column: str) -> list[str]:
    scan = store.scan_activations(model, with_vectors=False)
    return sorted(v for v in scan.select(column).unique().collect()[column].to_list() if v is not None)


def _check_selection(store, model: str, corpus: str | None, points: Sequence[str] | None,
                     run_id: str | None) -> None:
    """Refuse a selection naming something the model does not store, before any change."""
    for label, column, wanted in (("Corpus", "corpus", [corpus] if corpus else []),
                                  ("Point", "point", list(points or [])),
                                  ("Run", "run_id", [run_id] if run_id else [])):
        if not wanted:
            continue
        have = _stored(store, model, column)
        missing = [w for w in wanted if w not in have]
        if missing:
            raise StoreError(f"{label} {', '.join(map(repr, missing))} is not stored for model {model!r}; "
                             f"stored: {', '.join(have) or '(none)'}.")


def selection_filter(model: str, corpus: str | None = None, points: Sequence[str] | None = None,
                     run_id: str | None = None) -> str:
    """The Lance filter of the rows a delete removes."""
    parts = [f"model = {sql_quote(model)}"]
    if corpus:
        parts.append(f"corpus = {sql_quote(corpus)}")
    if points:
        parts.append(sql_in("point", list(points)))
    if run_id:
        parts.append(f"run_id = {sql_quote(run_id)}")
    return " AND ".join(parts)


def delete_activations(store, model: str, *, corpus: str | None = None, points: Sequence[str] | None = None,
                       run_id: str | None = None) -> Deletion:
    """Delete the model's rows matching every given selection (all of them when none is given)."""
    registered = store.require_model(model)
    _check_selection(store, model, corpus, points, run_id)
    where = selection_filter(model, corpus, points, run_id)
    done = Deletion()
    tables = registered
    if points:
        tables = registered.filter(pl.col("point").is_in(list(points)))
    for table_name in tables["table_name"].unique().sort().to_list():
        tbl = store._open_table(table_name)
        n = tbl.count_rows(where)
        if n:
            tbl.delete(where)
            done.tables[table_name] = n
            done.rows += n
    left = set(_stored(store, model, "point"))  # points still holding a row after the deletes
    gone = [p for p in registered["point"].to_list() if p not in left]
    if gone:
        store._open_table(POINTS_TABLE).delete(f"model = {sql_quote(model)} AND {sql_in('point', gone)}")
        done.unregistered = sorted(gone)
    return done

