"""`actstore migrate`: upgrade a store written by an older schema version in place.

Version 1 -> 2 declares the key columns of the activation, sentence and points tables as Lance's
unenforced primary key (non-nullable, field metadata), which makes concurrent keyed writes safe.
Version 2 -> 3 adds `corpus` to every activation row (the parallel corpus its sentence id belongs
to), derived from the row's run (its source, and for a manifest the file it came from) and split:
FLORES text and espeak-ng speech become `flores200:{split}`, FLEURS `fleurs:{split}`, a manifest
`manifest:{file stem}:{split}`; rows whose run row is gone get `unknown:{split}`. Lance adds the
column as new data files beside the old ones (no vector is rewritten).
Both are schema-only changes: no vector is rewritten, indices stay. Per table, making the key
columns non-nullable and marking them are each one atomic commit, and each is skipped when
already done, so an interrupted migrate is finished by running it again. The version in `meta`
is bumped last, after every table is upgraded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lancedb
import polars as pl
import pyarrow as pa

from actstore.errors import SchemaVersionError, StoreError
from actstore.store_uri import check_uri
from actstore.store.connection import list_table_names
from actstore.store.corpora import run_corpus_bases
from actstore.schema import (ACTIVATION_PREFIX, RUNS_TABLE, META_TABLE, corpus_name, MIGRATABLE_VERSIONS, PRIMARY_KEY_METADATA, SCHEMA_VERSION,
                             sql_quote, table_key)


@dataclass
class MigrationReport:
    """What `migrate` did: the versions and the tables whose keys it declared."""

    uri: str
    from_version: int
    to_version: int
    tables: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.from_version != self.to_version


def _stored_version(db, uri: str) -> int:
    if META_TABLE not in list_table_names(db):
        raise StoreError(f"{uri} is not an actstore store (no 'meta' table); pass the right --db.")
    rows = db.open_table(META_TABLE).to_arrow().to_pylist()
    meta = {r["key"]: r["value"] for r in rows}
    found = meta.get("schema_version", "")
    if not found.isdigit():
        raise SchemaVersionError(f"The store at {uri} records no readable schema version ({found!r}); re-ingest into a new --db.")
    return int(found)


def _refuse_duplicates(tbl, name: str, key: tuple[str, ...]) -> None:
    """A key stored twice cannot become a primary key (a keyed update would hit both rows)."""
    keys = pl.from_arrow(tbl.to_lance().to_table(columns=list(key)))
    dup = keys.select(pl.struct(list(key)).is_duplicated().sum()).item()
    if dup:
        raise StoreError(
            f"Table {name!r} holds {dup} rows whose key ({', '.join(key)}) is stored twice; remove the "
            "duplicates (`actstore check --repair`) and run `actstore migrate` again."
        )


def _corpus_by_run(db) -> dict[str, str]:
    """run_id -> the corpus base of what it ingested (split is added per row)."""
    if RUNS_TABLE not in list_table_names(db):
        return {}
    rows = db.open_table(RUNS_TABLE).to_lance().to_table(columns=["run_id", "source", "params"]).to_pylist()
    return run_corpus_bases(rows)


def _add_corpus(tbl, corpus_of_run: dict[str, str]) -> bool:
    """Add the `corpus` column to an activation table that lacks it; False when it has it."""
    ds = tbl.to_lance()
    if "corpus" in ds.schema.names:
        return False

    def corpus(batch: pa.RecordBatch) -> pa.RecordBatch:
        runs, splits = batch.column("run_id").to_pylist(), batch.column("split").to_pylist()
        values = [corpus_name(corpus_of_run.get(r, "unknown"), s or "") for r, s in zip(runs, splits)]
        return pa.RecordBatch.from_arrays([pa.array(values, pa.string())], ["corpus"])

    ds.add_columns(corpus, read_columns=["run_id", "split"])
    tbl.checkout_latest()
    return True


def _declare_key(tbl, name: str, key: tuple[str, ...]) -> bool:
    """Make `key` non-nullable and mark it as the primary key; False when nothing was needed."""
    ds = tbl.to_lance()
    schema = ds.schema
    changed = False
    nullable = [c for c in key if schema.field(c).nullable]
    if nullable:
        try:
            ds.alter_columns(*({"path": c, "nullable": False} for c in nullable))
        except (ValueError, OSError, RuntimeError) as exc:
            raise StoreError(
                f"Table {name!r} has null values in key column(s) {nullable} ({exc}); delete those rows "
                "and run `actstore migrate` again."
            ) from None
        changed = True
        tbl.checkout_latest()
        ds = tbl.to_lance()
    marker = next(iter(PRIMARY_KEY_METADATA))
    unmarked = [c for c in key if (ds.schema.field(c).metadata or {}).get(marker.encode()) != b"true"]
    if unmarked:
        ds.update_field_metadata({c: dict(PRIMARY_KEY_METADATA) for c in key})
        changed = True
    return changed


def migrate(uri: str | Path, *, storage_options: dict | None = None) -> MigrationReport:
    """Upgrade the store at `uri` to this actstore's schema version, in place (see module docs)."""
    uri = check_uri(str(uri))
    if "://" not in uri and not Path(uri).is_dir():
        raise StoreError(f"No actstore store at {uri}; pass the right --db.")
    db = lancedb.connect(uri, storage_options=storage_options or None)
    found = _stored_version(db, uri)
    report = MigrationReport(uri=uri, from_version=found, to_version=SCHEMA_VERSION)
    if found == SCHEMA_VERSION:
        return report
    if found not in MIGRATABLE_VERSIONS:
        raise SchemaVersionError(
            f"The store at {uri} has schema version {found}, which this actstore (version "
            f"{SCHEMA_VERSION}) cannot migrate; open it with the actstore that wrote it."
        )
    keyed = {name: table_key(name) for name in sorted(list_table_names(db)) if table_key(name)}
    for name, key in keyed.items():  # check every table before changing any
        _refuse_duplicates(db.open_table(name), name, key)
    for name, key in keyed.items():
        if _declare_key(db.open_table(name), name, key):
            report.tables.append(name)
    corpus_of_run = _corpus_by_run(db)
    for name in keyed:
        if (name.startswith(ACTIVATION_PREFIX) and _add_corpus(db.open_table(name), corpus_of_run)
                and name not in report.tables):
            report.tables.append(name)
    db.open_table(META_TABLE).update(where=f"key = {sql_quote('schema_version')}",
                                     values={"value": str(SCHEMA_VERSION)})
    return report
