"""Exceptions a user can act on.

Every error raised for bad input is an `ActstoreError` whose message is one sentence naming the
problem and the fix; the CLI prints it and exits non-zero, and nothing in the store is changed.
"""


class ActstoreError(Exception):
    """Base class: bad input or state that the user can fix (message says how)."""


class UnknownLanguageError(ActstoreError):
    """A language code that the catalogue does not know."""


class UnknownModelError(ActstoreError):
    """A model id or directory that no adapter can load."""


class DataSourceError(ActstoreError):
    """Missing data directory, corrupt or empty audio, empty text, malformed manifest."""


class StoreError(ActstoreError):
    """Store problems: wrong schema version, width mismatch, nothing stored for a request."""


class SchemaVersionError(StoreError):
    """The store on disk was written by another schema version."""


class QueryError(ActstoreError):
    """SQL that writes, does not parse or names an unknown table."""


class AnalysisInputError(ActstoreError, ValueError):
    """Inputs to a measure or analysis that cannot give a meaningful number.

    Also a `ValueError`, the standard type for bad argument values, so library callers can catch
    it without knowing actstore's hierarchy (as with scikit-learn's input checks).
    """


class ReportError(ActstoreError):
    """Inputs a report cannot be drawn from, or an output path it cannot write."""
