"""Opening a store: connection, the `meta` table, the schema version and race-free table creation.

Several processes may open and write a store that does not exist yet (two first ingests started
together). LanceDB lists a table as soon as its directory exists, before its first commit, so a
second process can see `meta` and fail to open it, or two processes can both try to create it.
Every create here is "create or open what another process just created", retried for a short
while, so the first writers of a new store all succeed (issue 10, item 4).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

import lancedb
import pyarrow as pa

from actstore import __version__
from actstore.errors import SchemaVersionError, StoreError
from actstore.schema import (
    META_SCHEMA,
    META_TABLE,
    MIGRATABLE_VERSIONS,
    POINTS_SCHEMA,
    POINTS_TABLE,
    RUNS_SCHEMA,
    RUNS_TABLE,
    SCHEMA_VERSION,
    SENTENCES_SCHEMA,
    SENTENCES_TABLE,
)

from actstore.store_uri import DEFAULT_URI, check_uri, object_store_reason

#: tables every store has from its creation on (result and activation tables come later)
CORE_TABLES = {POINTS_TABLE: POINTS_SCHEMA, RUNS_TABLE: RUNS_SCHEMA, SENTENCES_TABLE: SENTENCES_SCHEMA}

#: how long to wait for another process that is creating the same table
_RACE_SECONDS = 20.0

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _is_race(exc: BaseException) -> bool:
    """True for the errors a concurrent create/open of the same table produces."""
    text = str(exc).lower()
    return "already exists" in text or "not found" in text or "commit conflict" in text


def retry_race(action: Callable[[], T], what: str) -> T:
    """Run `action`, retrying while another process is half-way through creating a table."""
    deadline = time.monotonic() + _RACE_SECONDS
    delay = 0.01
    while True:
        try:
            return action()
        except (ValueError, RuntimeError, OSError, FileNotFoundError) as exc:
            if not _is_race(exc):
                raise
            if time.monotonic() > deadline:
                raise StoreError(
                    f"{what} did not become readable within {_RACE_SECONDS:.0f} s ({exc}); another "
                    "process may have died while creating it: run the command again, and if it "
                    "keeps failing, remove that half-created table's directory from the store."
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def list_table_names(db: lancedb.DBConnection) -> list[str]:
    """Every table of a LanceDB connection (paged: object stores list 1000 at a time)."""
    names: list[str] = []
    token = None
    while True:
        page = db.list_tables(page_token=token, limit=1000)
        names.extend(page.tables)
        token = getattr(page, "page_token", None)
        if not token:
            return names


class Connection:
    """The LanceDB connection of one store and its table handles (cached per process).

    The one piece every other store object depends on: it opens (or creates) the store, checks
    its schema version and hands out tables and Lance datasets. It knows nothing of what the
    tables hold.
    """

    def __init__(self, db: lancedb.DBConnection, uri: str, storage_options: dict | None = None):
        self._db = db
        self.uri = uri
        #: object-store options (credentials, endpoint) for any direct `lance.dataset` open
        self.storage_options = dict(storage_options or {})
        self._tables: dict[str, object] = {}
        self._datasets: dict[str, object] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, uri: str | Path = DEFAULT_URI, *, create: bool = True,
             storage_options: dict | None = None) -> "Connection":
        """Open (or with `create`, make) the store at `uri`.

        `storage_options` go to `lancedb.connect` unchanged (object-store credentials, endpoints;
        actstore/store_uri.py); the standard environment variables (AWS_ENDPOINT_URL, ...) apply
        without them. An unreachable or refusing object store is one sentence, not a traceback.
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
            conn = cls(db, uri, storage_options)
            names = conn.table_names()
        except (OSError, RuntimeError, ValueError) as exc:
            if is_local:
                raise
            raise StoreError(
                f"Cannot read the store at {uri} ({object_store_reason(exc)}); check the bucket "
                "name, credentials and endpoint (AWS_* variables or --storage-option)."
            ) from None
        if META_TABLE in names:
            retry_race(conn.meta, f"The meta table of {uri}")
            conn.check_version()
        elif names:
            raise StoreError(
                f"{uri} is a LanceDB database but not an actstore store (no 'meta' table); "
                "pass another --db."
            )
        elif create:
            conn._create_store()
        else:
            raise StoreError(f"The store at {uri} is empty; run `actstore ingest --db {uri} ...` first.")
        return conn

    def _create_store(self) -> None:
        """Create meta (first: it marks the directory as a store) and the core tables, idempotently."""
        rows = pa.table(
            {
                "key": ["schema_version", "created_by", "created_at"],
                "value": [str(SCHEMA_VERSION), f"actstore {__version__}", utcnow().isoformat()],
            },
            schema=META_SCHEMA,
        )

        def create_meta():
            try:
                self._tables[META_TABLE] = self._db.create_table(META_TABLE, rows)
            except (ValueError, RuntimeError, OSError) as exc:
                if "already exists" not in str(exc).lower():
                    raise
                self.meta()  # another process created it: it must be readable now (or retried)

        retry_race(create_meta, f"The meta table of {self.uri}")
        self.check_version()
        for name, schema in CORE_TABLES.items():
            self.ensure_table(name, schema)

    def table_names(self) -> list[str]:
        return list_table_names(self._db)

    # ------------------------------------------------------------------ meta
    def meta(self) -> dict[str, str]:
        t = self.table(META_TABLE)
        t.checkout_latest()
        rows = t.to_arrow()
        return dict(zip(rows.column("key").to_pylist(), rows.column("value").to_pylist()))

    def check_version(self) -> None:
        """Refuse a store of another schema version, naming `actstore migrate` where it upgrades it."""
        meta = self.meta()
        found = meta.get("schema_version")
        if found != str(SCHEMA_VERSION):
            older = found is not None and found.isdigit() and int(found) in MIGRATABLE_VERSIONS
            fix = (f"upgrade it in place with `actstore migrate --db {self.uri}`" if older else
                   "open it with the actstore version that wrote it or re-ingest into a new --db")
            raise SchemaVersionError(
                f"The store at {self.uri} has schema version {found} (written by "
                f"{meta.get('created_by', 'an unknown actstore')}), but this actstore reads version "
                f"{SCHEMA_VERSION}; {fix}."
            )

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    # ------------------------------------------------------------------ tables
    def table(self, name: str):
        """The LanceDB table `name` (a cached handle: call `checkout_latest` to see new commits)."""
        tbl = self._tables.get(name)
        if tbl is None:
            tbl = self._db.open_table(name)
            self._tables[name] = tbl
        return tbl

    def has_table(self, name: str) -> bool:
        return name in self.table_names()

    def ensure_table(self, name: str, schema: pa.Schema):
        """The table `name`, created empty with `schema` if absent (safe against concurrent creators)."""
        tbl = self._tables.get(name)
        if tbl is not None:
            return tbl

        def open_or_create():
            try:
                return self._db.open_table(name)
            except (ValueError, FileNotFoundError, RuntimeError) as exc:
                if "not found" not in str(exc).lower():
                    raise
            if self._create_empty(name, schema):
                return self._db.open_table(name)
            return self._db.create_table(name, schema=schema, exist_ok=True)

        tbl = retry_race(open_or_create, f"Table {name!r} of {self.uri}")
        self._tables[name] = tbl
        return tbl

    def _create_empty(self, name: str, schema: pa.Schema) -> bool:
        """Create table `name` as version 1 of an empty dataset, refusing if it exists; False
        where the table's location cannot be derived (a URI with a query: LanceDB creates it).

        Why not `create_table(exist_ok=True)`: when two processes create the same table at once
        on S3, the loser's create is retried by Lance as an Overwrite at version 2, which wipes
        whatever the winner appended meanwhile or fails the winner's append ("Append transaction
        is incompatible with concurrent transaction Overwrite"), measured: 1 in 4-6 starts of four
        processes on a new S3 store (moto). A commit without retries lets the loser fail instead;
        `retry_race` then opens the winner's table.
        """
        import lance

        if "?" in self.uri:
            return False
        path = f"{self.uri.rstrip('/')}/{name}.lance"
        lance.LanceDataset.commit(path, lance.LanceOperation.Overwrite(schema, []), read_version=0,
                                  max_retries=0, storage_options=self.storage_options or None)
        return True

    def dataset(self, name: str):
        """The Lance dataset of a table at its latest version (for pushdown scans).

        Datasets are cached and reopened only when a newer version exists (a cheap check), so
        reads see other processes' commits without paying to reopen the table every time.
        """
        ds = self._datasets.get(name)
        if ds is not None and ds.latest_version == ds.version:
            return ds
        tbl = self.table(name)
        tbl.checkout_latest()
        ds = tbl.to_lance()
        self._datasets[name] = ds
        return ds

    def table_version(self, name: str) -> int:
        tbl = self.table(name)
        tbl.checkout_latest()
        return int(tbl.version)
