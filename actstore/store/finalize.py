"""Finalize after an ingest: index the metadata columns, compact, then drop the old versions that
no live reader may still read (`retention`: every version superseded within the window stays).

A finalized table has an index on every metadata column, no unindexed rows, one fragment per
~1M rows (`compaction_state`), and no version superseded longer ago than the retention window (what `finalize_needed`
and `actstore check` verify). Each step is idempotent and skipped when done, so a retry after a
conflict, or the next ingest after a finalize killed half-way, resumes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

from lancedb.index import Bitmap, BTree

from actstore.store.connection import Connection, retry_race
from actstore.store.points import PointsRegistry
from actstore.store.retention import expired_versions, keep_window

#: columns indexed after an ingest (low-cardinality metadata: bitmap; the parallel key: btree)
INDICES = (("point", Bitmap()), ("lang", Bitmap()), ("modality", Bitmap()), ("sentence_id", BTree()))
#: fragments smaller than this are merged by Lance's compaction (its default target)
TARGET_ROWS_PER_FRAGMENT = 1024 * 1024
#: a fragment whose deleted share exceeds this is rewritten by compaction (Lance's default)
DELETION_THRESHOLD = 0.1

Step = Callable[[str], object]


class Finalizer:
    """Compaction, indices and version cleanup of the activation tables of a model.

    `keep_versions` is the retention window for old versions (a timedelta, a duration such as
    "30m", or seconds); None reads $ACTSTORE_KEEP_VERSIONS at each finalize, else one hour.
    """

    def __init__(self, conn: Connection, points: PointsRegistry,
                 keep_versions: timedelta | str | float | None = None):
        self.conn = conn
        self.points = points
        self.keep_versions = keep_versions

    def keep(self, keep_versions: timedelta | str | float | None = None) -> timedelta:
        """The retention window in force: the argument, else this finalizer's, else the env/default."""
        return keep_window(keep_versions if keep_versions is not None else self.keep_versions)

    def _tables(self, model: str) -> list[str]:
        return self.points.points(model)["table_name"].unique().to_list()

    def finalize_model(self, model: str, on_step: Step | None = None, *, cleanup: bool = True,
                       keep_versions: timedelta | str | float | None = None) -> None:
        """After an ingest: index, compact and clean up every activation table of `model`.

        The order makes an interrupted finalize visible to `finalize_needed` (missing indices,
        small fragments or expired versions kept), so the next ingest redoes it even when it
        writes nothing. `on_step("indexed" | "compacted")` is called between the steps (fault
        injection). `cleanup=False` keeps every old version (another live ingest may read them;
        a later finalize drops them); `keep_versions` overrides the retention window.
        """
        for table_name in self._tables(model):
            self.finalize_table(table_name, on_step, cleanup=cleanup, keep_versions=keep_versions)

    def finalize_table(self, table_name: str, on_step: Step | None = None, *, cleanup: bool = True,
                       keep_versions: timedelta | str | float | None = None) -> None:
        """Index the metadata columns, compact (updating the indices), then drop expired versions.

        Indices are created (or brought up to date) BEFORE compaction, so that compaction can
        merge every fragment. Compaction and index optimisation call Lance directly rather than
        LanceDB's `optimize()`, whose built-in cleanup drops versions by their write time (see
        `retention`): the only versions deleted here are those superseded before the window.
        """
        keep = self.keep(keep_versions)
        tbl = self.conn.table(table_name)

        def finalize():
            tbl.checkout_latest()
            if tbl.count_rows() == 0:
                return
            indices = tbl.list_indices()
            existing = {idx.columns[0] for idx in indices}
            for col, config in INDICES:
                if col not in existing:
                    tbl.create_index(col, config=config)
            if any(getattr(idx, "num_unindexed_rows", 0) for idx in indices):
                # rows appended since the indices were built: Lance does not merge indexed with
                # unindexed fragments, so cover them first or compaction leaves them apart
                tbl.to_lance().optimize.optimize_indices()
                tbl.checkout_latest()
            if on_step is not None:
                on_step("indexed")
            ds = tbl.to_lance()
            ds.optimize.compact_files()
            ds.optimize.optimize_indices()
            tbl.checkout_latest()
            if on_step is not None:
                on_step("compacted")
            if cleanup:
                drop_expired_versions(tbl, keep)

        retry_race(finalize, f"Finalizing table {table_name!r} of {self.conn.uri}")

    def finalize_needed(self, model: str, keep_versions: timedelta | str | float | None = None) -> list[str]:
        """Why `model`'s activation tables need `finalize_model` (empty: they do not).

        A finalized table has an index on every metadata column, no unindexed rows, compacted
        fragments and no version superseded before the retention window; any later write, or a
        finalize killed half-way, breaks one of these. (Versions kept inside the window are not a
        reason: they are kept on purpose, so a finalize killed after compaction needs nothing
        until the window has passed.)
        """
        keep = self.keep(keep_versions)
        reasons = []
        for table_name in self._tables(model):
            if not self.conn.has_table(table_name):
                continue
            tbl = self.conn.table(table_name)
            tbl.checkout_latest()
            if tbl.count_rows() == 0:
                continue
            indices = {idx.columns[0]: idx for idx in tbl.list_indices()}
            missing = [col for col, _ in INDICES if col not in indices]
            if missing:
                reasons.append(f"{table_name}: no index on {', '.join(missing)}")
            stale = [c for c, idx in indices.items() if getattr(idx, "num_unindexed_rows", 0)]
            if stale:
                reasons.append(f"{table_name}: unindexed rows in {', '.join(stale)}")
            small, deleted = compaction_state(tbl.to_lance())
            if small or deleted:
                reasons.append(f"{table_name}: not compacted ({small} small fragments, {deleted} with "
                               "deleted rows)")
            n_old = len(expired_versions(tbl.list_versions(), keep))
            if n_old:
                reasons.append(f"{table_name}: {n_old} old versions kept (not compacted/cleaned)")
        return reasons


def drop_expired_versions(tbl, keep: timedelta) -> int:
    """Delete the versions of `tbl` superseded more than `keep` ago; returns how many."""
    ds = tbl.to_lance()
    expired = expired_versions(ds.versions(), keep)
    if expired:
        ds.cleanup_old_versions(versions=expired)
        tbl.checkout_latest()
    return len(expired)


def compaction_state(ds) -> tuple[int, int]:
    """(small fragments, fragments over the deleted-rows threshold) that compaction would merge
    or rewrite; (0, 0) for a compacted dataset (one small fragment is not worth merging)."""
    small = deleted = 0
    for frag in ds.get_fragments():
        physical = frag.metadata.physical_rows
        live = frag.count_rows() if frag.metadata.deletion_file is not None else physical
        if physical and (physical - live) / physical > DELETION_THRESHOLD:
            deleted += 1
        if live < TARGET_ROWS_PER_FRAGMENT:
            small += 1
    return (small if small > 1 else 0), deleted
