"""`actstore check`: find (and with `--repair`, fix) what makes a store inconsistent.

Schema version 2 guards new writes (primary keys), but a store written before it, by a buggy
writer, or left half-done by a kill can still hold: keys stored twice (a reader would count
those rows twice), text activations without their sentence texts, activation rows whose point is
not registered (invisible to every reader) or registrations without rows, tables never finalized
(missing or stale indices, small fragments, versions kept past the retention window) and
`running` runs whose process is gone. `Integrity.check` reports each as one `Problem` with
counts; `Integrity.repair` fixes each repairable one in ONE commit per table (deduplication: one
delete; points: one merge; runs: one update; finalize: Lance's own compaction/cleanup commits)
and names the `actstore ingest` command for what only the model can recompute (sentence texts).

Like a file-system check, a repair assumes no other process writes the store meanwhile: it
deletes duplicate rows by their row address, which a concurrent compaction would change.

The checks live in modules of their own (`duplicates`, `sentence_check`, `points_check`); this
one composes them, checks finalize state and runs, and keeps the functions the CLI calls.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from actstore.schema import (
    ACTIVATION_PREFIX,
    POINTS_TABLE,
    RUNS_TABLE,
    SENTENCES_TABLE,
    table_key,
)
from actstore.store.connection import Connection
from actstore.store.duplicates import check_duplicates, count_duplicates, dedupe
from actstore.store.duplicates import require_unique_keys as _require_unique_keys
from actstore.store.finalize import DELETION_THRESHOLD, INDICES, Finalizer, compaction_state
from actstore.store.points import PointsRegistry
from actstore.store.points_check import check_points, repair_points
from actstore.store.problems import CheckReport, Problem
from actstore.store.retention import expired_versions
from actstore.store.runs import RunLog, mark_stale_runs, stale_runs
from actstore.store.sentence_check import check_sentences, note_shared_ids
from actstore.store.sentences import SentenceTexts

if TYPE_CHECKING:  # pragma: no cover
    from actstore.store.api import Store

#: the attribute of `Integrity` holding the per-table-version cache of `require_unique_keys`
_KEY_CHECKED = "_unique_keys_checked"

__all__ = ["CheckReport", "Integrity", "Problem", "check_store", "count_duplicates",
           "repair_store", "require_unique_keys"]


class Integrity:
    """Consistency checks and repairs over the pieces of one store."""

    def __init__(self, conn: Connection, points: PointsRegistry, runs: RunLog, sentences: SentenceTexts,
                 finalizer: Finalizer):
        self.conn = conn
        self.points = points
        self.runs = runs
        self.sentences = sentences
        self.finalizer = finalizer
        setattr(self, _KEY_CHECKED, {})

    def require_unique_keys(self, model: str) -> None:
        """Refuse to analyse `model` while any of its activation keys is stored twice."""
        _require_unique_keys(self.conn, self.points, model, getattr(self, _KEY_CHECKED))

    def _activation_tables(self, names: list[str]) -> list[str]:
        return sorted(n for n in names if n.startswith(ACTIVATION_PREFIX))

    def check(self, *, first: Problem | None = None) -> CheckReport:
        """Every check over the store; an empty `problems` list means it is consistent."""
        t0 = time.perf_counter()
        names = self.conn.table_names()
        acts = self._activation_tables(names)
        report = CheckReport(uri=self.conn.uri, tables=len(names))
        if first is not None:
            report.problems.append(first)
        check_duplicates(self.conn, [*acts, *(n for n in (SENTENCES_TABLE, POINTS_TABLE) if n in names)], report)
        check_sentences(self.conn, self.runs, self.sentences, self.points, acts, report)
        note_shared_ids(self.conn, self.runs, self.sentences, acts, report)
        check_points(self.conn, self.points, acts, report)
        self._check_finalized(acts, report)
        if RUNS_TABLE in names:
            self._check_runs(report)
        report.seconds = time.perf_counter() - t0
        return report

    def repair(self, report: CheckReport) -> list[str]:
        """Fix every repairable problem of `report`; returns one line per action taken."""
        done: list[str] = []
        acts = self._activation_tables(self.conn.table_names())
        for p in report.by_kind("duplicate-keys"):
            n = dedupe(self.conn, self.runs, p.table, table_key(p.table))  # type: ignore[arg-type]
            done.append(f"deduplicated {p.table!r}: deleted {n} surplus rows (kept the newest of each key)")
        if any(report.by_kind(k) for k in ("unregistered-points", "empty-points", "point-width")):
            n = repair_points(self.conn, self.points, self.runs, acts)
            done.append(f"points registry: {n} (model, point) registrations added, fixed or removed")
        touched = {p.table for p in report.problems
                   if p.kind in ("duplicate-keys", "indices", "fragments", "old-versions")}
        for name in acts:
            if name in touched and self.conn.dataset(name).count_rows():
                self.finalizer.finalize_table(name)
                done.append(f"finalized {name!r}: indices, compaction, old versions removed")
        if report.by_kind("stale-runs"):
            ids = mark_stale_runs(self.runs)
            done.append(f"runs: marked {len(ids)} stale runs interrupted")
        return done

    # ------------------------------------------------------------------ finalize state
    def finalize_state(self, name: str) -> dict[str, int]:
        """What finalize would change in one activation table (all zero when it is finalized)."""
        ds = self.conn.dataset(name)
        if ds.count_rows() == 0:
            return {"missing_indices": 0, "unindexed_rows": 0, "small_fragments": 0,
                    "deleted_fragments": 0, "old_versions": 0}
        tbl = self.conn.table(name)
        tbl.checkout_latest()
        configs = {idx.columns[0]: idx for idx in tbl.list_indices()}
        missing = [col for col, _ in INDICES if col not in configs]
        unindexed = max((int(getattr(configs[c], "num_unindexed_rows", 0) or 0) for c in configs), default=0)
        small, deleted = compaction_state(ds)
        return {"missing_indices": len(missing), "unindexed_rows": unindexed,
                "small_fragments": small, "deleted_fragments": deleted,
                "old_versions": len(expired_versions(ds.versions(), self.finalizer.keep()))}

    def _check_finalized(self, act_tables: list[str], report: CheckReport) -> None:
        for name in act_tables:
            s = self.finalize_state(name)
            if s["missing_indices"] or s["unindexed_rows"]:
                report.problems.append(Problem(
                    "indices", name, s["missing_indices"] + (1 if s["unindexed_rows"] else 0),
                    f"table {name!r} lacks {s['missing_indices']} of its {len(INDICES)} metadata indices "
                    f"and has {s['unindexed_rows']} rows outside them"))
            if s["small_fragments"] or s["deleted_fragments"]:
                report.problems.append(Problem(
                    "fragments", name, s["small_fragments"] + s["deleted_fragments"],
                    f"table {name!r} is not compacted: {s['small_fragments']} small fragments, "
                    f"{s['deleted_fragments']} fragments with over {DELETION_THRESHOLD:.0%} deleted rows"))
            if s["old_versions"]:
                report.problems.append(Problem(
                    "old-versions", name, s["old_versions"],
                    f"table {name!r} keeps {s['old_versions']} old versions (disk not cleaned up)"))

    def _check_runs(self, report: CheckReport) -> None:
        stale = stale_runs(self.runs)
        if stale.height:
            report.problems.append(Problem(
                "stale-runs", RUNS_TABLE, stale.height,
                f"{stale.height} runs are marked running but their process is gone "
                f"({', '.join(stale['run_id'].head(4).to_list())})"))


# ---------------------------------------------------------------------------------- entry points
def check_store(store: "Store", *, first: Problem | None = None) -> CheckReport:
    """Every check over `store` (`store.integrity.check`)."""
    return store.integrity.check(first=first)


def repair_store(store: "Store", report: CheckReport) -> list[str]:
    """Fix every repairable problem of `report` (`store.integrity.repair`)."""
    return store.integrity.repair(report)


def require_unique_keys(store: "Store", model: str) -> None:
    """Refuse to analyse a model whose activation keys are stored twice (the analyses call this)."""
    store.integrity.require_unique_keys(model)
