"""The points registry: which (model, point) is stored, at what width and dtype, in which table.

Readers never guess activation table names: `points` says which table holds each point, and a
width or dtype that differs from what is stored is refused before any model runs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import polars as pl
import pyarrow as pa

from actstore.errors import StoreError
from actstore.schema import POINTS_SCHEMA, POINTS_TABLE, activation_table_name
from actstore.store.connection import Connection


class PointsRegistry:
    """The `points` table: register, check and list the stored points of each model.

    `random_init_of(model)` answers whether a model is random-initialised (the runs table,
    `RunLog.is_random_init`): the registry's `random_init` column is a copy written from it.
    """

    def __init__(self, conn: Connection, random_init_of: Callable[[str], bool]):
        self.conn = conn
        self.random_init_of = random_init_of
        self._points_cache: tuple[int, pl.DataFrame] | None = None

    def points(self, model: str | None = None) -> pl.DataFrame:
        """Registered points: model, point, modality, layer, width, vector_dtype, table_name."""
        try:
            ds = self.conn.dataset(POINTS_TABLE)
        except (ValueError, FileNotFoundError, RuntimeError):
            if self.conn.has_table(POINTS_TABLE):
                raise
            return pl.DataFrame(schema=pl.Schema(POINTS_SCHEMA))  # type: ignore[arg-type]
        if self._points_cache is None or self._points_cache[0] != ds.version:
            self._points_cache = (ds.version, pl.from_arrow(ds.to_table()))  # type: ignore[assignment]
        allpts = self._points_cache[1]
        return allpts if model is None else allpts.filter(pl.col("model") == model)

    def models(self) -> list[str]:
        return sorted(self.points()["model"].unique().to_list())

    def require_model(self, model: str) -> pl.DataFrame:
        pts = self.points(model)
        if pts.height == 0:
            have = ", ".join(self.models()) or "none"
            raise StoreError(
                f"Nothing is stored for model {model!r} in {self.conn.uri} (models stored: {have}); "
                "ingest it first with `actstore ingest --model ...`."
            )
        return pts

    def check_points(self, model: str, rows: Sequence[dict]) -> None:
        """Refuse widths/dtypes that differ from what is stored, before any work is done."""
        self._new_point_rows(model, rows, random_init=False)

    def register_points(self, model: str, rows: Sequence[dict], *, random_init: bool | None = None) -> None:
        """Record (model, point) -> width/table; refuse a width that differs from what is stored.

        The `random_init` column is copied from the runs table (`random_init_of`; the ingest
        writes its run row first); the `random_init` argument is accepted for old callers and
        not used, so the copy can never disagree with its source. Concurrent registrations of
        the same point are harmless: the insert is keyed on (model, point), so a point
        registered by another process in the meantime is not doubled.
        """
        del random_init  # derived from the runs table, never taken from the caller
        new = self._new_point_rows(model, rows, random_init=self.random_init_of(model))
        if not new:
            return
        data = pa.Table.from_pylist(new, schema=POINTS_SCHEMA)
        (self.conn.ensure_table(POINTS_TABLE, POINTS_SCHEMA).merge_insert(["model", "point"])
            .when_not_matched_insert_all().execute(data))

    def _new_point_rows(self, model: str, rows: Sequence[dict], *, random_init: bool) -> list[dict]:
        existing = self.points(model)
        known = {r["point"]: r for r in existing.iter_rows(named=True)}
        new = []
        for r in rows:
            old = known.get(r["point"])
            if old is not None:
                if old["width"] != r["width"]:
                    raise StoreError(
                        f"Vector width {r['width']} for point {r['point']} of model {model!r} does "
                        f"not match the stored width {old['width']}; ingest under another --name "
                        "or into another --db."
                    )
                if old["vector_dtype"] != r["vector_dtype"]:
                    raise StoreError(
                        f"Point {r['point']} of model {model!r} is stored as {old['vector_dtype']}, "
                        f"not {r['vector_dtype']}; use --vector-dtype {old['vector_dtype']}."
                    )
                continue
            new.append({
                "model": model, "point": r["point"], "modality": r["modality"],
                "layer": r["layer"], "width": r["width"], "vector_dtype": r["vector_dtype"],
                "table_name": activation_table_name(model, r["width"]), "random_init": random_init,
            })
        return new
