"""Writing activation rows: one keyed commit per batch, finalize (compaction, indices), delete.

Every write is a `merge_insert` on `ACTIVATION_KEY`, which the activation tables declare as
their (unenforced) primary key: Lance then detects two concurrent writers inserting the same new
keys and retries one of them against the other's commit, so concurrent ingests of the same
(model, language, modality) leave one row per key (docs/ARCHITECTURE.md, "Store"). A plain `add` has no such guard,
so it is never used for activations.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Callable, Sequence

import polars as pl
import pyarrow as pa
from lancedb.index import Bitmap, BTree

from actstore.errors import StoreError
from actstore.store.connection import retry_race
from actstore.schema import (
    ACTIVATION_KEY,
    POINTS_TABLE,
    activation_schema,
    activation_table_name,
    sql_in,
    sql_quote,
)

#: columns indexed after an ingest (low-cardinality metadata: bitmap; the parallel key: btree)
_INDICES = (("point", Bitmap()), ("lang", Bitmap()), ("modality", Bitmap()), ("sentence_id", BTree()))


class ActivationWriter:
    """Mixin of `Store`: writes to the `act_*` tables (needs `ensure_table`, `points`, `dataset`)."""

    def write_activations(self, model: str, width: int, rows: pa.Table, *,
                          vector_dtype: str = "float32", replace: bool) -> int:
        """Write one batch of activation rows of one width in ONE commit; returns the rows given.

        `replace=True` updates keys already stored and inserts new ones; `replace=False` inserts
        only keys not stored yet (rows whose key another process stored meanwhile are dropped,
        never duplicated).
        """
        name = activation_table_name(model, width)
        schema = activation_schema(width, vector_dtype)
        if not rows.schema.equals(schema, check_metadata=False):
            try:
                rows = rows.select(schema.names).cast(schema)
            except (pa.ArrowInvalid, KeyError, ValueError) as exc:
                raise StoreError(
                    f"Rows for model {model!r} do not match the activation schema of width {width} "
                    f"({exc}); this is a bug in the writer, please report it."
                ) from None
        if rows.num_rows == 0:
            return 0
        tbl = self.ensure_table(name, schema)
        if tbl.schema.names != rows.schema.names:  # a migrated table appended `corpus` at its end
            rows = rows.select(tbl.schema.names)

        def merge_rows():
            # Another ingest's finalize may have compacted the table and removed the version this
            # handle last saw (its files are gone): read the latest one, and retry a conflict.
            tbl.checkout_latest()
            merge = tbl.merge_insert(list(ACTIVATION_KEY))
            if replace:
                merge = merge.when_matched_update_all()
            merge.when_not_matched_insert_all().execute(rows)

        retry_race(merge_rows, f"Writing table {name!r} of {self.uri}")
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

    def finalize_model(self, model: str, on_step: Callable[[str], object] | None = None, *,
                       cleanup: bool = True) -> None:
        """After an ingest: compact fragments, index metadata columns, then drop old versions.

        Each step is idempotent and the order makes an interrupted finalize visible to
        `finalize_needed` (missing indices, or more than one version kept), so the next ingest
        redoes it even when it writes nothing. `on_step("compacted" | "indexed")` is called
        between the steps (fault injection). `cleanup=False` keeps old versions: another
        process may still read them (a concurrent ingest); a later finalize drops them.
        """
        for table_name in self.points(model)["table_name"].unique().to_list():
            self.finalize_table(table_name, on_step, cleanup=cleanup)

    def finalize_table(self, table_name: str, on_step: Callable[[str], object] | None = None, *,
                       cleanup: bool = True) -> None:
        """Index the metadata columns, compact (updating the indices), then drop old versions.

        Indices are created (or brought up to date) BEFORE compaction, so that compaction can
        merge every fragment; the cleanup then drops the versions the work made: a finalized
        table has one fragment per ~1M rows and one version (what `actstore check` verifies).
        Each step is skipped when done, so a retry after a conflict, or the next ingest after a
        finalize killed half-way (`finalize_needed` sees it), resumes. `on_step("indexed" |
        "compacted")` is called between the steps (fault injection).
        """
        tbl = self._open_table(table_name)

        def finalize():
            tbl.checkout_latest()
            if tbl.count_rows() == 0:
                return
            indices = tbl.list_indices()
            existing = {idx.columns[0] for idx in indices}
            for col, config in _INDICES:
                if col not in existing:
                    tbl.create_index(col, config=config)
            if any(getattr(idx, "num_unindexed_rows", 0) for idx in indices):
                # rows appended since the indices were built: Lance does not merge indexed with
                # unindexed fragments, so cover them first or compaction leaves them apart
                tbl.to_lance().optimize.optimize_indices()
                tbl.checkout_latest()
            if on_step is not None:
                on_step("indexed")
            tbl.optimize()  # compaction; old versions stay for now
            if on_step is not None:
                on_step("compacted")
            if not cleanup:
                return
            with warnings.catch_warnings():
                # Keeping old versions doubles disk until a later cleanup; `cleanup=False` while
                # another live ingest may still read them (a concurrent writer whose version
                # vanished retries on the latest).
                warnings.simplefilter("ignore", UserWarning)
                tbl.optimize(cleanup_older_than=timedelta(seconds=0))

        retry_race(finalize, f"Finalizing table {table_name!r} of {self.uri}")

    def finalize_needed(self, model: str) -> list[str]:
        """Why `model`'s activation tables need `finalize_model` (empty: they do not).

        A finalized table has one version, an index on every metadata column and no unindexed
        rows; any later write, or a finalize killed half-way, breaks one of these.
        """
        reasons = []
        for table_name in self.points(model)["table_name"].unique().to_list():
            if not self.has_table(table_name):
                continue
            tbl = self._open_table(table_name)
            tbl.checkout_latest()
            if tbl.count_rows() == 0:
                continue
            indices = {idx.columns[0]: idx for idx in tbl.list_indices()}
            missing = [col for col, _ in _INDICES if col not in indices]
            if missing:
                reasons.append(f"{table_name}: no index on {', '.join(missing)}")
            stale = [c for c, idx in indices.items() if getattr(idx, "num_unindexed_rows", 0)]
            if stale:
                reasons.append(f"{table_name}: unindexed rows in {', '.join(stale)}")
            n_versions = len(tbl.list_versions())
            if n_versions > 1:
                reasons.append(f"{table_name}: {n_versions} versions kept (not compacted/cleaned)")
        return reasons

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
