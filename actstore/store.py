"""The activation store: LanceDB tables of pooled vectors, provenance and results.

Why it looks like this (measurements in DESIGN §2):
- Reads go through `LanceDataset.to_table(columns=..., filter=...)`: true filter and projection
  pushdown with late materialisation (10-18 ms for a 4k-row slice of 200k rows), and the
  fixed-size-list vector column becomes a 2-D numpy array without per-row Python objects.
  LanceDB's `table.to_polars()` does no pushdown: never on a hot path.
- Every `add` is a commit, so writes come in big batches (one commit per ingest job); commits are
  atomic, so a killed ingest leaves the previous version intact. Re-ingesting a key replaces it
  (`merge_insert` on `ACTIVATION_KEY`); new keys are appended.
- The store records its schema version in `meta`; a store of another version is refused.
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

import lancedb
from lancedb.index import Bitmap, BTree
import numpy as np
import polars as pl
import pyarrow as pa

from actstore import __version__
from actstore.errors import SchemaVersionError, StoreError
from actstore.schema import (
    ACTIVATION_KEY,
    ACTIVATION_PREFIX,
    META_SCHEMA,
    META_TABLE,
    METADATA_COLUMNS,
    POINTS_SCHEMA,
    POINTS_TABLE,
    RUNS_SCHEMA,
    RUNS_TABLE,
    SCHEMA_VERSION,
    SENTENCES_KEY,
    SENTENCES_SCHEMA,
    SENTENCES_TABLE,
    activation_schema,
    activation_table_name,
    sql_in,
    sql_quote,
)
from actstore.storage import check_uri, object_store_reason

DEFAULT_URI = "./actstore.lance"


@dataclass
class Slice:
    """Rows read from the store: Polars metadata and the matching (n, d) float32 vectors."""

    meta: pl.DataFrame
    vectors: np.ndarray | None

    def __len__(self) -> int:
        return self.meta.height


def vectors_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column -> (n, d) numpy array; zero-copy for a single float32 chunk."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    width = column.type.list_size
    flat = column.flatten()  # respects slice offsets
    arr = flat.to_numpy(zero_copy_only=False)
    return arr.reshape(-1, width)


def numpy_to_vectors(x: np.ndarray, vector_dtype: str = "float32") -> pa.FixedSizeListArray:
    """(n, d) array -> fixed-size-list Arrow array (one contiguous buffer, no per-row objects)."""
    if x.ndim != 2:
        raise StoreError(f"Vectors must be a 2-D array, got shape {x.shape}; pass (n_rows, width).")
    flat = np.ascontiguousarray(x, dtype=np.float16 if vector_dtype == "float16" else np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), x.shape[1])


def _plain_type(typ: pa.DataType) -> pa.DataType:
    """large/view strings and lists -> plain ones: Lance's filter pushdown (Substrait) needs them."""
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return pa.string()
    if pa.types.is_large_list(typ) or pa.types.is_list_view(typ) or pa.types.is_large_list_view(typ):
        return pa.list_(_plain_type(typ.value_type))
    if pa.types.is_list(typ):
        return pa.list_(_plain_type(typ.value_type))
    return typ


def frame_to_arrow(frame: pl.DataFrame) -> pa.Table:
    """A Polars frame as an Arrow table with plain types, fit for LanceDB and filter pushdown."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    schema = pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in table.schema])
    return table.cast(schema)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    """A LanceDB database holding activations, provenance and analysis results.

    Use `Store.open(uri)`; `create=False` refuses to make a new store (for read-only commands).
    """

    def __init__(self, db: lancedb.DBConnection, uri: str, storage_options: dict | None = None):
        self._db = db
        self.uri = uri
        #: object-store options (credentials, endpoint) for any direct `lance.dataset` open
        self.storage_options = dict(storage_options or {})
        self._tables: dict[str, object] = {}
        self._datasets: dict[str, object] = {}
        self._points_cache: tuple[int, pl.DataFrame] | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, uri: str | Path = DEFAULT_URI, *, create: bool = True,
             storage_options: dict | None = None) -> "Store":
        """Open (or create) a store at a local path or any Lance URI (actstore/storage.py).

        storage_options: object-store settings (endpoint, region, credentials) passed to
        LanceDB; the standard environment variables (AWS_ENDPOINT_URL, ...) apply without them.
        """
        uri = check_uri(str(uri))
        is_local = "://" not in uri
        if is_local and not create and not Path(uri).exists():
            raise StoreError(
                f"No actstore store at {uri}; run `actstore ingest --db {uri} ...` first or pass "
                "the right --db."
            )
        if is_local and Path(uri).exists() and not Path(uri).is_dir():
            raise StoreError(f"{uri} is a file, not a store directory; pass a directory for --db.")
        try:
            db = lancedb.connect(uri, storage_options=storage_options or None)
            store = cls(db, uri, storage_options)
            names = store.table_names()
        except (OSError, RuntimeError, ValueError) as exc:
            if is_local:
                raise
            raise StoreError(
                f"Cannot read the store at {uri} ({object_store_reason(exc)}); check the bucket "
                "name, credentials and endpoint (AWS_* variables or --storage-option)."
            ) from None
        if META_TABLE in names:
            store._check_version()
        elif names:
            raise StoreError(
                f"{uri} is a LanceDB database but not an actstore store (no 'meta' table); "
                "pass another --db."
            )
        elif create:
            store._init_meta()
        else:
            raise StoreError(f"The store at {uri} is empty; run `actstore ingest --db {uri} ...` first.")
        return store

    def table_names(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            page = self._db.list_tables(page_token=token, limit=1000)
            names.extend(page.tables)
            token = getattr(page, "page_token", None)
            if not token:
                return names

    def _init_meta(self) -> None:
        rows = pa.table(
            {
                "key": ["schema_version", "created_by", "created_at"],
                "value": [str(SCHEMA_VERSION), f"actstore {__version__}", _utcnow().isoformat()],
            },
            schema=META_SCHEMA,
        )
        self._db.create_table(META_TABLE, rows)

    def meta(self) -> dict[str, str]:
        t = self._open_table(META_TABLE).to_arrow()
        return dict(zip(t.column("key").to_pylist(), t.column("value").to_pylist()))

    def _check_version(self) -> None:
        meta = self.meta()
        found = meta.get("schema_version")
        if found != str(SCHEMA_VERSION):
            raise SchemaVersionError(
                f"The store at {self.uri} has schema version {found} (written by "
                f"{meta.get('created_by', 'an unknown actstore')}), but this actstore reads version "
                f"{SCHEMA_VERSION}; open it with that actstore version or re-ingest into a new --db."
            )

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    # ------------------------------------------------------------------ tables
    def _open_table(self, name: str):
        tbl = self._tables.get(name)
        if tbl is None:
            tbl = self._db.open_table(name)
            self._tables[name] = tbl
        return tbl

    def has_table(self, name: str) -> bool:
        return name in self.table_names()

    def dataset(self, name: str):
        """The Lance dataset of a table at its latest version (for pushdown scans).

        Datasets are cached and reopened only when a newer version exists (a cheap check), so
        reads see other processes' commits without paying to reopen the table every time.
        """
        ds = self._datasets.get(name)
        if ds is not None and ds.latest_version == ds.version:
            return ds
        tbl = self._open_table(name)
        tbl.checkout_latest()
        ds = tbl.to_lance()
        self._datasets[name] = ds
        return ds

    def table_version(self, name: str) -> int:
        tbl = self._open_table(name)
        tbl.checkout_latest()
        return int(tbl.version)

    # ------------------------------------------------------------------ points registry
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
        """Record (model, point) -> width/table; refuse a width that differs from what is stored."""
        new = self._new_point_rows(model, rows, random_init=random_init)
        if not new:
            return
        data = pa.Table.from_pylist(new, schema=POINTS_SCHEMA)
        if self.has_table(POINTS_TABLE):
            self._open_table(POINTS_TABLE).add(data)
        else:
            self._tables[POINTS_TABLE] = self._db.create_table(POINTS_TABLE, data)

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

    # ------------------------------------------------------------------ activations: write
    def write_activations(self, model: str, width: int, rows: pa.Table, *,
                          vector_dtype: str = "float32", replace: bool) -> int:
        """Write one batch of activation rows of one width in ONE commit.

        `replace=True` merges on ACTIVATION_KEY (existing keys are updated, never duplicated);
        `replace=False` appends (the caller guarantees the keys are new, e.g. resume filtering).
        """
        name = activation_table_name(model, width)
        schema = activation_schema(width, vector_dtype)
        if rows.schema != schema:
            try:
                rows = rows.select(schema.names).cast(schema)
            except (pa.ArrowInvalid, KeyError, ValueError) as exc:
                raise StoreError(
                    f"Rows for model {model!r} do not match the activation schema of width {width} "
                    f"({exc}); this is a bug in the writer, please report it."
                ) from None
        if rows.num_rows == 0:
            return 0
        if not self.has_table(name):
            self._tables[name] = self._db.create_table(name, rows, schema=schema)
            return rows.num_rows
        tbl = self._open_table(name)
        if replace:
            (tbl.merge_insert(list(ACTIVATION_KEY))
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(rows))
        else:
            tbl.add(rows)
        return rows.num_rows

    def stored_keys(self, model: str, modality: str, lang: str, points: Sequence[str]) -> pl.DataFrame:
        """(point, sample_id) rows already stored for one ingest job (for resume)."""
        pts = self.points(model)
        pts = pts.filter(pl.col("point").is_in(list(points)))
        frames = []
        for table_name in pts["table_name"].unique().to_list():
            ds = self.dataset(table_name)
            flt = " AND ".join([
                f"model = {sql_quote(model)}", f"modality = {sql_quote(modality)}",
                f"lang = {sql_quote(lang)}", sql_in("point", list(points)),
            ])
            frames.append(pl.from_arrow(ds.to_table(columns=["point", "sample_id"], filter=flt)))
        if not frames:
            return pl.DataFrame(schema={"point": pl.String, "sample_id": pl.String})
        return pl.concat(frames)  # type: ignore[arg-type]

    def finalize_model(self, model: str) -> None:
        """After an ingest: compact fragments, drop old versions, index metadata columns."""
        for table_name in self.points(model)["table_name"].unique().to_list():
            tbl = self._open_table(table_name)
            with warnings.catch_warnings():
                # Keeping old versions doubles disk until a later cleanup; one writer per model
                # is the supported pattern, so the latest version is all anyone reads.
                warnings.simplefilter("ignore", UserWarning)
                tbl.optimize(cleanup_older_than=timedelta(seconds=0))
            existing = {idx.columns[0] for idx in tbl.list_indices()}
            for col, config in (("point", Bitmap()), ("lang", Bitmap()), ("modality", Bitmap()),
                                ("sentence_id", BTree())):
                if col not in existing:
                    tbl.create_index(col, config=config)

    def delete_model(self, model: str) -> int:
        """Remove every activation row and point of a model (results stay, runs stay)."""
        pts = self.points(model)
        n = 0
        for table_name in pts["table_name"].unique().to_list():
            tbl = self._open_table(table_name)
            n += tbl.count_rows(f"model = {sql_quote(model)}")
            tbl.delete(f"model = {sql_quote(model)}")
        if pts.height:
            self._open_table(POINTS_TABLE).delete(f"model = {sql_quote(model)}")
        return n

    # ------------------------------------------------------------------ activations: read
    def read(self, model: str, *, points: str | Sequence[str] | None = None,
             modality: str | Sequence[str] | None = None, langs: Sequence[str] | None = None,
             sentence_ids: Sequence[int] | None = None, columns: Sequence[str] | None = None,
             vectors: bool = True, where: str | None = None) -> Slice:
        """Read a slice with filter/projection pushdown.

        Returns Polars metadata (`columns`, default all metadata columns) and, if `vectors`, an
        (n, d) float32 array in the same row order. All requested points must share one width
        (one table): read points of different widths separately.
        """
        pts = self.require_model(model)
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
            ds = self.dataset(table_name)
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
        pts = self.points(model)
        frames = []
        for table_name in pts["table_name"].unique().sort().to_list():
            lf = pl.scan_pyarrow_dataset(self.dataset(table_name))
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
        return sum(self.table_version(t) for t in self.require_model(model)["table_name"].unique().to_list())

    def count_rows(self, model: str | None = None) -> int:
        total = 0
        pts = self.points(model)
        for table_name in pts["table_name"].unique().to_list():
            flt = f"model = {sql_quote(model)}" if model is not None else None
            total += self._open_table(table_name).count_rows(flt)
        return total

    # ------------------------------------------------------------------ runs
    def start_run(self, record: dict) -> str:
        """Write a provenance row with status 'running'; returns the run id."""
        run_id = record.get("run_id") or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        row = {f.name: None for f in RUNS_SCHEMA}
        row.update(record)
        row.update({"run_id": run_id, "status": "running", "started_at": _utcnow(),
                    "package_version": __version__})
        if isinstance(row.get("params"), dict):
            row["params"] = json.dumps(row["params"], sort_keys=True)
        data = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
        if self.has_table(RUNS_TABLE):
            self._open_table(RUNS_TABLE).add(data)
        else:
            self._tables[RUNS_TABLE] = self._db.create_table(RUNS_TABLE, data)
        return run_id

    def finish_run(self, run_id: str, *, status: str, n_items: int, n_rows: int) -> None:
        tbl = self._open_table(RUNS_TABLE)
        tbl.update(
            where=f"run_id = {sql_quote(run_id)}",
            values={"status": status, "n_items": n_items, "n_rows": n_rows, "ended_at": _utcnow()},
        )

    def runs(self, model: str | None = None) -> pl.DataFrame:
        if not self.has_table(RUNS_TABLE):
            return pl.DataFrame(schema=pl.Schema(RUNS_SCHEMA))  # type: ignore[arg-type]
        flt = f"model = {sql_quote(model)}" if model is not None else None
        return pl.from_arrow(self.dataset(RUNS_TABLE).to_table(filter=flt)).sort("started_at")  # type: ignore

    # ------------------------------------------------------------------ sentences
    def write_sentences(self, rows: pa.Table) -> None:
        """Upsert sentence texts (one commit)."""
        rows = rows.select(SENTENCES_SCHEMA.names).cast(SENTENCES_SCHEMA)
        if rows.num_rows == 0:
            return
        if self.has_table(SENTENCES_TABLE):
            (self._open_table(SENTENCES_TABLE).merge_insert(list(SENTENCES_KEY))
                .when_matched_update_all().when_not_matched_insert_all().execute(rows))
        else:
            self._tables[SENTENCES_TABLE] = self._db.create_table(SENTENCES_TABLE, rows)

    def sentences(self, langs: Sequence[str] | None = None) -> pl.DataFrame:
        if not self.has_table(SENTENCES_TABLE):
            return pl.DataFrame(schema=pl.Schema(SENTENCES_SCHEMA))  # type: ignore[arg-type]
        flt = sql_in("lang", list(langs)) if langs else None
        return pl.from_arrow(self.dataset(SENTENCES_TABLE).to_table(filter=flt))  # type: ignore

    # ------------------------------------------------------------------ results
    def write_results(self, name: str, frame: pl.DataFrame, *, replace_where: str | None) -> None:
        """Replace the rows of a result table matching `replace_where`, then add `frame`.

        Delete-then-add is two commits; a reader between them sees the old rows gone. Results are
        derived data (recomputable), so this is acceptable; activations never use it.
        """
        if name.startswith(ACTIVATION_PREFIX) or name in (META_TABLE, POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE):
            raise StoreError(f"{name!r} is a reserved table name; choose another result table name.")
        data = frame_to_arrow(frame)
        if self.has_table(name):
            tbl = self._open_table(name)
            if replace_where:
                tbl.delete(replace_where)
            try:
                tbl.add(data)
            except Exception:  # schema evolved between versions of an analysis: rewrite the table
                old = pl.from_arrow(tbl.to_lance().to_table())
                merged = pl.concat([old, frame], how="diagonal_relaxed")  # type: ignore[list-item]
                self._tables[name] = self._db.create_table(name, frame_to_arrow(merged), mode="overwrite")
        else:
            self._tables[name] = self._db.create_table(name, data)

    def read_results(self, name: str, where: str | None = None) -> pl.DataFrame | None:
        """A result table (filtered), or None when it was never written."""
        if not self.has_table(name):
            return None
        return pl.from_arrow(self.dataset(name).to_table(filter=where))  # type: ignore[return-value]

    def result_tables(self) -> list[str]:
        reserved = {META_TABLE, POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE}
        return sorted(n for n in self.table_names() if n not in reserved and not n.startswith(ACTIVATION_PREFIX))


def open_store(uri: str | Path = DEFAULT_URI, *, create: bool = True,
               storage_options: dict | None = None) -> Store:
    return Store.open(uri, create=create, storage_options=storage_options)

