"""Exceptions a user can act on.

Every error raised for bad input is an `ActstoreError` whose message is one sentence naming the
problem and the fix; the CLI prints it and exits non-zero.

What an error leaves in the store:
- input errors (arguments, language codes, manifest rows, model, points, a read-only store) are
  found BEFORE anything is written: the store is unchanged and no `runs` row is added;
- errors found while an ingest runs (undecodable audio, NaN activations, a full disk) keep every
  job committed before them, write nothing of the failing job (each job is one atomic commit),
  and leave the run's `runs` row with status `failed`, so provenance records the attempt;
- `actstore query` never writes; analyses write their result table only after computing it all.
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


class UnsupportedLanguageError(ActstoreError):
    """A model that cannot encode one language (no language token or per-language checkpoint).

    The ingest pipeline reports that (language, modality) job as skipped and goes on.
    """
