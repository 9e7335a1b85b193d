"""The `runs` table: provenance of every ingest, one row per run, written before any activation.

Each row records the host and pid of the process that runs it, so `actstore check` can tell a
`running` run whose process is gone (a kill) from one that is still writing.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import polars as pl
import pyarrow as pa

from actstore import __version__
from actstore.schema import RUNS_LATE_COLUMNS, RUNS_SCHEMA, RUNS_TABLE, sql_quote
from actstore.store.connection import retry_race, utcnow


class RunLog:
    """Mixin of `Store`: start, finish and list runs (needs `ensure_table`, `dataset`)."""

    def start_run(self, record: dict) -> str:
        """Write a provenance row with status 'running'; returns the run id."""
        run_id = record.get("run_id") or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        row = {f.name: None for f in RUNS_SCHEMA}
        row.update(record)
        row.update({"run_id": run_id, "status": "running", "started_at": utcnow(),
                    "package_version": __version__, "host": socket.gethostname(), "pid": os.getpid()})
        if isinstance(row.get("params"), dict):
            row["params"] = json.dumps(row["params"], sort_keys=True)
        data = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
        tbl = self.ensure_table(RUNS_TABLE, RUNS_SCHEMA)
        self._add_late_run_columns(tbl)
        tbl.add(data)
        return run_id

    def _add_late_run_columns(self, tbl) -> None:
        """Give a runs table written before `host`/`pid` existed those columns (old rows: null).

        Two first runs may race to add them: a conflict is retried and succeeds once the other
        process's columns are visible.
        """
        def add_missing():
            tbl.checkout_latest()
            missing = [RUNS_SCHEMA.field(c) for c in RUNS_LATE_COLUMNS if c not in tbl.schema.names]
            if missing:
                tbl.add_columns([pa.field(f.name, f.type, nullable=True) for f in missing])

        retry_race(add_missing, f"The runs table of {self.uri}")

    def finish_run(self, run_id: str, *, status: str, n_items: int, n_rows: int) -> None:
        tbl = self._open_table(RUNS_TABLE)
        tbl.update(
            where=f"run_id = {sql_quote(run_id)}",
            values={"status": status, "n_items": n_items, "n_rows": n_rows, "ended_at": utcnow()},
        )

    def runs(self, model: str | None = None) -> pl.DataFrame:
        if not self.has_table(RUNS_TABLE):
            return pl.DataFrame(schema=pl.Schema(RUNS_SCHEMA))  # type: ignore[arg-type]
        flt = f"model = {sql_quote(model)}" if model is not None else None
        runs = pl.from_arrow(self.dataset(RUNS_TABLE).to_table(filter=flt))
        for name in RUNS_LATE_COLUMNS:  # a store written before these columns existed
            if name not in runs.columns:  # type: ignore[union-attr]
                dtype = pl.Int64 if pa.types.is_integer(RUNS_SCHEMA.field(name).type) else pl.String
                runs = runs.with_columns(pl.lit(None, dtype).alias(name))  # type: ignore[union-attr]
        return runs.sort("started_at")  # type: ignore
