"""The `runs` table: provenance of every ingest, one row per run, written before any activation."""

from __future__ import annotations

import json
import time
import uuid

import polars as pl
import pyarrow as pa

from actstore import __version__
from actstore.schema import RUNS_SCHEMA, RUNS_TABLE, sql_quote
from actstore.store.connection import utcnow


class RunLog:
    """Mixin of `Store`: start, finish and list runs (needs `ensure_table`, `dataset`)."""

    def start_run(self, record: dict) -> str:
        """Write a provenance row with status 'running'; returns the run id."""
        run_id = record.get("run_id") or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        row = {f.name: None for f in RUNS_SCHEMA}
        row.update(record)
        row.update({"run_id": run_id, "status": "running", "started_at": utcnow(),
                    "package_version": __version__})
        if isinstance(row.get("params"), dict):
            row["params"] = json.dumps(row["params"], sort_keys=True)
        data = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
        self.ensure_table(RUNS_TABLE, RUNS_SCHEMA).add(data)
        return run_id

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
        return pl.from_arrow(self.dataset(RUNS_TABLE).to_table(filter=flt)).sort("started_at")  # type: ignore
