"""Reading activations: pushdown slices into numpy, lazy scans for SQL, counts and versions.

Reads go through `LanceDataset.to_table(columns=..., filter=...)`: true filter and projection
pushdown with late materialisation (10-18 ms for a 4k-row slice of 200k rows, docs/ARCHITECTURE.md "Store"), and
the fixed-size-list vector column becomes a 2-D numpy array without per-row Python objects.
LanceDB's `table.to_polars()` does no pushdown: never on a hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl

from actstore.errors import StoreError
from actstore.schema import METADATA_COLUMNS, sql_in, sql_quote
from actstore.store.arrow import vectors_to_numpy
from actstore.store.connection import Connection
from actstore.store.points import PointsRegistry


@dataclass
class Slice:
    """Rows read from the store: Polars metadata and the matching (n, d) float32 vectors."""

    meta: pl.DataFrame
    vectors: np.ndarray | None

    def __len__(self) -> int:
        return self.meta.height


class ActivationReader:
    """Reads of the `act_*` tables; `points` says which tables hold a model's points."""

    def __init__(self, conn: Connection, points: PointsRegistry):
        self.conn = conn
        self.points = points

    def read(self, model: str, *, points: str | Sequence[str] | None = None,
             modality: str | Sequence[str] | None = None, langs: Sequence[str] | None = None,
             sentence_ids: Sequence[int] | None = None, columns: Sequence[str] | None = None,
             vectors: bool = True, where: str | None = None) -> Slice:
        """Read a slice with filter/projection pushdown.

        Returns Polars metadata (`columns`, default all metadata columns) and, if `vectors`, an
        (n, d) float32 array in the same row order. All requested points must share one width
        (one table): read points of different widths separately.
        """
        pts = self.points.require_model(model)
        if isinstance(points, str):
            points = [points]
        if points is not None:
            missing = sorted(set(points) - set(pts["point"].to_list()))
            if missing:
                raise StoreError(
                    f"Point(s) {missing} are not stored for model {model!r}; stored points: "
                    f"{', '.join(pts['point'].to_list())}."
                )
            pts = pts.filter(pl.col("point").is_in(list(points)))
        tables = pts["table_name"].unique().to_list()
        if vectors and len(tables) > 1:
            raise StoreError(
                f"The requested points of {model!r} have different widths "
                f"({sorted(set(pts['width'].to_list()))}); read them one width at a time."
            )
        clauses = [f"model = {sql_quote(model)}"]
        if points is not None:
            clauses.append(sql_in("point", list(points)))
        if modality is not None:
            clauses.append(sql_in("modality", [modality] if isinstance(modality, str) else list(modality)))
        if langs is not None:
            clauses.append(sql_in("lang", list(langs)))
        if sentence_ids is not None:
            clauses.append(sql_in("sentence_id", [int(s) for s in sentence_ids]))
        if where:
            clauses.append(f"({where})")
        flt = " AND ".join(clauses)
        cols = list(columns) if columns is not None else list(METADATA_COLUMNS)
        metas, vecs = [], []
        for table_name in tables:
            ds = self.conn.dataset(table_name)
            t = ds.to_table(columns=cols + (["vector"] if vectors else []), filter=flt)
            if vectors:
                vecs.append(vectors_to_numpy(t.column("vector")))
                t = t.drop(["vector"])
            metas.append(pl.from_arrow(t))
        meta = pl.concat(metas) if len(metas) > 1 else metas[0]
        x = None
        if vectors:
            x = vecs[0]
            if x.dtype != np.float32:
                x = x.astype(np.float32)
        return Slice(meta=meta, vectors=x)  # type: ignore[arg-type]

    def scan_activations(self, model: str | None = None, *, with_vectors: bool = True) -> pl.LazyFrame:
        """Every activation row (of one model or all) as one lazy frame with pushdown.

        Tables of different widths cannot share a fixed-size vector column, so the union casts
        the vector to a variable-length list; queries that do not select it never read it.
        """
        pts = self.points.points(model)
        frames = []
        for table_name in pts["table_name"].unique().sort().to_list():
            lf = pl.scan_pyarrow_dataset(self.conn.dataset(table_name))
            if with_vectors:
                lf = lf.with_columns(pl.col("vector").cast(pl.List(pl.Float32)))
            else:
                lf = lf.drop("vector")
            if model is not None:
                lf = lf.filter(pl.col("model") == model)
            frames.append(lf)
        if not frames:
            schema = {f: pl.String for f in METADATA_COLUMNS}
            schema.update({"layer": pl.Int32, "sentence_id": pl.Int64, "n_frames": pl.Int32})
            if with_vectors:
                schema["vector"] = pl.List(pl.Float32)  # type: ignore[assignment]
            return pl.DataFrame(schema=schema).lazy()
        return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]

    def activation_version(self, model: str) -> int:
        """A version stamp for a model's activations (sum of its tables' Lance versions)."""
        tables = self.points.require_model(model)["table_name"].unique().to_list()
        return sum(self.conn.table_version(t) for t in tables)

    def count_rows(self, model: str | None = None) -> int:
        """Activation rows stored (of `model`, or of every model)."""
        total = 0
        pts = self.points.points(model)
        for table_name in pts["table_name"].unique().to_list():
            flt = f"model = {sql_quote(model)}" if model is not None else None
            total += self.conn.table(table_name).count_rows(flt)
        return total
