"""Opening a store for `actstore check`, also one written by an older schema version.

Its own module because it needs the whole `Store` (which is built from `Integrity`), so it cannot
live in `integrity` without an import cycle.
"""

from __future__ import annotations

import lancedb

from actstore.errors import SchemaVersionError
from actstore.schema import META_TABLE, MIGRATABLE_VERSIONS, SCHEMA_VERSION
from actstore.store.api import Store
from actstore.store.connection import Connection
from actstore.store.problems import Problem


def open_for_check(uri: str, storage_options: dict | None = None) -> tuple[Store, Problem | None]:
    """Open a store for checking, also one of an older schema version (migrate refuses those
    while they hold duplicates, and names `actstore check --repair`, so check must open them)."""
    try:
        return Store.open(uri, create=False, storage_options=storage_options), None
    except SchemaVersionError:
        db = lancedb.connect(uri, storage_options=storage_options or None)
        store = Store(Connection(db, uri, storage_options))
        found = store.meta().get("schema_version", "")
        if not (found.isdigit() and int(found) in MIGRATABLE_VERSIONS):
            raise
        return store, Problem(
            "schema-version", META_TABLE, 1,
            f"the store has schema version {found}, this actstore reads {SCHEMA_VERSION}",
            repairable=False, fix=f"after the repair run `actstore migrate --db {uri}`")
