"""The `runs` table: provenance of every ingest, one row per run, written before any activation.

A run starts as `running` and its process sets the final status (`complete`, `failed`,
`interrupted`). A process killed abruptly (SIGKILL, power loss, OOM killer) cannot, so its row
would stay `running` forever. Each row therefore records the host, pid and the process's start
time; `mark_stale_runs` (called at the start of every ingest, and reusable by `actstore check`)
marks `running` runs of this host whose process is gone, or whose pid now belongs to another
process (a different start time), as `interrupted`. Runs of other hosts cannot be checked from
here and are left alone; rows written before these columns existed carry no process and are
left alone too (unknown, not stale).

The runs table is the one source of truth for `random_init` (was the model random-initialised?):
the ingest writes it into its run row from the adapter's `ModelInfo`. `RunLog.is_random_init`
reads it there; the copies elsewhere are derived from it and never guessed independently: the
`points.random_init` column is written from the runs at registration, and each analysis result
row's `random_init` is `Store.is_random_init(model)` at the time the row was computed (a derived
snapshot, kept so a result table read alone, e.g. by SQL, still carries the label).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import timezone

import polars as pl
import pyarrow as pa

from actstore import __version__
from actstore.schema import RUNS_PROCESS_FIELDS, RUNS_SCHEMA, RUNS_TABLE, sql_in, sql_quote
from actstore.store.connection import Connection, utcnow


def process_start(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot (Linux /proc), else None.

    With the pid it identifies a process: a pid reused by a later process has another start.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # after "pid (comm) ": state is field 3
    try:
        return int(fields[19])  # field 22 of proc(5): starttime
    except (IndexError, ValueError):
        return None


def this_process() -> dict:
    """host, pid and pid_start of the calling process (for a new runs row)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": process_start(pid)}


def process_alive(pid: int, start: int | None, started_at=None) -> bool:
    """True when `pid` runs and is the run's process: it started at `start` (when recorded), or,
    for rows without a recorded start, it was created no later than the run (`started_at`)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is gone for our purposes
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        if stat[stat.rfind(b")") + 2:].split()[:1] == [b"Z"]:
            return False
    except OSError:
        pass
    if start is None:
        if started_at is None:
            return True
        import psutil

        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            return True
        when = started_at if started_at.tzinfo is not None else started_at.replace(tzinfo=timezone.utc)
        return created <= when.timestamp() + 1.0  # a pid reused after the run started: not it
    now = process_start(pid)
    return now is None or now == start


def _log(store) -> "RunLog":
    """The RunLog of a Store (or a RunLog itself): these functions accept either."""
    return getattr(store, "run_log", store)


def stale_runs(store) -> pl.DataFrame:
    """`running` runs of this host whose process is gone (or is another process by now)."""
    runs = _log(store).runs()
    if not runs.height or any(c not in runs.columns for c in RUNS_PROCESS_FIELDS):
        return runs.clear()
    host = socket.gethostname()
    running = runs.filter((pl.col("status") == "running") & (pl.col("host") == host)
                          & pl.col("pid").is_not_null())
    dead = [not process_alive(int(r["pid"]), r["pid_start"], r["started_at"])
            for r in running.iter_rows(named=True)]
    return running.filter(pl.Series(dead, dtype=pl.Boolean)) if running.height else running


def other_live_runs(store, run_id: str) -> list[str]:
    """`running` runs other than `run_id` that may still be working on the store.

    Stale runs of this host are not live; runs of other hosts cannot be checked and count as
    live; rows without a recorded process (written before these columns existed) do not.
    Finalize drops old versions only when this is empty: deleting the files of an old version
    under a concurrent writer that still reads it makes that writer fail.
    """
    runs = _log(store).runs()
    if not runs.height or any(c not in runs.columns for c in RUNS_PROCESS_FIELDS):
        return []
    running = runs.filter((pl.col("status") == "running") & (pl.col("run_id") != run_id)
                          & pl.col("pid").is_not_null())
    stale = set(stale_runs(store)["run_id"].to_list())
    return [r for r in running["run_id"].to_list() if r not in stale]


def mark_stale_runs(store) -> list[str]:
    """Mark this host's `running` runs whose process is gone as `interrupted`; returns their ids.

    One commit; the `status = 'running'` guard keeps a run that finished meanwhile untouched.
    """
    stale = stale_runs(store)
    ids = stale["run_id"].to_list()
    if ids:
        _log(store).conn.table(RUNS_TABLE).update(
            where=f"{sql_in('run_id', ids)} AND status = {sql_quote('running')}",
            values={"status": "interrupted"})
    return ids


class RunLog:
    """Start, finish and list runs; say whether a model is random-initialised."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def start_run(self, record: dict) -> str:
        """Write a provenance row with status 'running' (and this process); returns the run id."""
        run_id = record.get("run_id") or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        row = {f.name: None for f in RUNS_SCHEMA}
        row.update(this_process())
        row.update(record)
        row.update({"run_id": run_id, "status": "running", "started_at": utcnow(),
                    "package_version": __version__})
        if isinstance(row.get("params"), dict):
            row["params"] = json.dumps(row["params"], sort_keys=True)
        data = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
        tbl = self.conn.ensure_table(RUNS_TABLE, RUNS_SCHEMA)
        data = data.select(self._runs_columns(tbl))
        tbl.add(data)
        return run_id

    def _runs_columns(self, tbl) -> list[str]:
        """The runs columns to write: adds the process columns to a store made before them.

        Adding all-null nullable columns is a metadata-only commit; if it fails (a concurrent
        writer added them first, or a backend without schema evolution) the row is written
        without them and its process is unknown.
        """
        names = tbl.schema.names
        missing = [f for f in RUNS_PROCESS_FIELDS if f not in names]
        if missing:
            try:
                tbl.add_columns([RUNS_SCHEMA.field(f) for f in missing])
            except (ValueError, RuntimeError, OSError):
                pass
            tbl.checkout_latest()
            names = tbl.schema.names
        return [f.name for f in RUNS_SCHEMA if f.name in names]

    def finish_run(self, run_id: str, *, status: str, n_items: int, n_rows: int) -> None:
        tbl = self.conn.table(RUNS_TABLE)
        tbl.update(
            where=f"run_id = {sql_quote(run_id)}",
            values={"status": status, "n_items": n_items, "n_rows": n_rows, "ended_at": utcnow()},
        )

    def runs(self, model: str | None = None) -> pl.DataFrame:
        """Every run (of `model`), oldest first, with the process columns even on old stores."""
        if not self.conn.has_table(RUNS_TABLE):
            return pl.DataFrame(schema=pl.Schema(RUNS_SCHEMA))  # type: ignore[arg-type]
        flt = f"model = {sql_quote(model)}" if model is not None else None
        runs = pl.from_arrow(self.conn.dataset(RUNS_TABLE).to_table(filter=flt))
        for name in RUNS_PROCESS_FIELDS:  # a store written before these columns existed
            if name not in runs.columns:  # type: ignore[union-attr]
                dtype = pl.Int64 if pa.types.is_integer(RUNS_SCHEMA.field(name).type) else pl.String
                runs = runs.with_columns(pl.lit(None, dtype).alias(name))  # type: ignore[union-attr]
        return runs.sort("started_at")  # type: ignore

    def is_random_init(self, model: str) -> bool:
        """True when any run of `model` recorded a random-initialised model (the source of truth)."""
        runs = self.runs(model)
        return bool(runs.height) and bool(runs["random_init"].fill_null(False).any())
