"""The points registry: which (model, point) is stored, at what width and dtype, in which table.

Readers never guess activation table names: `points` says which table holds each point, and a
width or dtype that differs from what is stored is refused before any model runs.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl
import pyarrow as pa

from actstore.errors import StoreError
from actstore.schema import POINTS_SCHEMA, POINTS_TABLE, activation_table_name


class PointsRegistry:
    """Mixin of `Store`: the `points` table (needs `dataset`, `has_table`, `ensure_table`)."""

    _points_cache: tuple[int, pl.DataFrame] | None = None

    def points(self, model: str | None = None) -> pl.DataFrame:
        """Registered points: model, point, modality, layer, width, vector_dtype, table_name."""
        try:
            ds = self.dataset(POINTS_TABLE)
        except (ValueError, FileNotFoundError, RuntimeError):
            if self.has_table(POINTS_TABLE):
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
                f"Nothing is stored for model {model!r} in {self.uri} (models stored: {have}); "
                "ingest it first with `actstore ingest --model ...`."
            )
        return pts

    def check_points(self, model: str, rows: Sequence[dict]) -> None:
        """Refuse widths/dtypes that differ from what is stored, before any work is done."""
        self._new_point_rows(model, rows, random_init=False)

    def register_points(self, model: str, rows: Sequence[dict], *, random_init: bool = False) -> None:
        """Record (model, point) -> width/table; refuse a width that differs from what is stored.

        Concurrent registrations of the same point are harmless: the insert is keyed on
        (model, point), so a point registered by another process in the meantime is not doubled.
        """
        new = self._new_point_rows(model, rows, random_init=random_init)
        if not new:
            return
        data = pa.Table.from_pylist(new, schema=POINTS_SCHEMA)
        (self.ensure_table(POINTS_TABLE, POINTS_SCHEMA).merge_insert(["model", "point"])
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

    def is_random_init(self, model: str) -> bool:
        pts = self.points(model)
        return bool(pts.height) and bool(pts["random_init"].any())
