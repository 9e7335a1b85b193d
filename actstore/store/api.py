"""`Store`: one class assembled from the store's modules (see the package docstring)."""

from __future__ import annotations

from actstore.store.activations import ActivationWriter
from actstore.store.connection import Connection
from actstore.store.points import PointsRegistry
from actstore.store.reads import ActivationReader
from actstore.store.results import ResultTables
from actstore.store.runs import RunLog
from actstore.store.sentences import SentenceTexts


class Store(Connection, PointsRegistry, ActivationWriter, ActivationReader, RunLog, SentenceTexts,
            ResultTables):
    """A LanceDB database holding activations, provenance and analysis results.

    Use `Store.open(uri)`; `create=False` refuses to make a new store (for read-only commands);
    `storage_options` are passed to `lancedb.connect` (object-store credentials and endpoints).
    """

