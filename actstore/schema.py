"""The store's schema: table names, Arrow schemas and the schema version.

Layout of a store (a LanceDB database: a local directory or any Lance URI):

- `meta`: key/value rows; `schema_version` is checked on every open.
- `points`: one row per (model, point): width, layer, modality, the activation table holding it.
- `act_<model slug>_d<width>`: pooled activations, one row per (model, point, modality, lang,
  sample_id). A fixed-size-list column has one width, so every distinct vector width of a model
  gets its own table (SeamlessM4T v2: one table of 1024; a model mixing a 1280-wide audio encoder
  and a 4096-wide LLM: two tables). `points` says which table holds which point; readers never
  guess table names.
- `runs`: provenance of every ingest, one row per run.
- `sentences`: sentence text by (source, split, lang, sentence_id), for tooltips and SQL joins.
- result tables written by analyses (`similarity`, `retrieval`, `tsne`, `neurons_top`, ...).

Key columns (`ACTIVATION_KEY`, `SENTENCES_KEY`, `POINTS_KEY`) are non-nullable and carry Lance's
unenforced-primary-key field metadata: a `merge_insert` on them then detects concurrent inserts
of the same key, so two processes writing the same keys leave one row per key (docs/ARCHITECTURE.md, "Store").

Bump `SCHEMA_VERSION` whenever a change makes an old store unreadable by this code, and teach
`actstore migrate` (actstore/store/migration.py) to upgrade the previous version in place.
Version history: 1 = no primary keys; 2 = key columns declared as unenforced primary keys;
3 = activation rows carry `corpus` (the parallel corpus their sentence id belongs to).
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa

SCHEMA_VERSION = 3
#: older versions `actstore migrate` upgrades in place
MIGRATABLE_VERSIONS = (1, 2)

#: Lance's field metadata marking a column as part of the table's unenforced primary key
PRIMARY_KEY_METADATA = {"lance-schema:unenforced-primary-key": "true"}

META_TABLE = "meta"
POINTS_TABLE = "points"
RUNS_TABLE = "runs"
SENTENCES_TABLE = "sentences"
ACTIVATION_PREFIX = "act_"
#: the tables every store keeps for itself: never a result table's name
RESERVED_TABLES = (META_TABLE, POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE)

# The result tables of the built-in analyses, defined once: the analyses write them, the reports
# and the CLI read them by these names.
SIMILARITY_TABLE = "similarity"
RETRIEVAL_TABLE = "retrieval"
TSNE_TABLE = "tsne"
NEURONS_TOP_TABLE = "neurons_top"
NEURONS_OVERLAP_TABLE = "neurons_overlap"
CONCENTRATION_TABLE = "concentration"
#: the neuron study over sites (issue 16): per-site top neurons, where the global top neurons sit
#: (site x layer), speech/text top-set overlap on decoder sites, concentration with intervals
NEURON_SITES_TOP_TABLE = "neuron_sites_top"
NEURON_SITES_SPREAD_TABLE = "neuron_sites_spread"
NEURON_SITES_OVERLAP_TABLE = "neuron_sites_overlap"
SITE_CONCENTRATION_TABLE = "site_concentration"
#: cross-validated linear probe of the source language per point (issue 16, item 6)
LANGUAGE_PROBE_TABLE = "language_probe"
#: teacher-forced target log-likelihood with a neuron set held at a value (issue 16, item 4)
INTERVENTIONS_TABLE = "interventions"
#: one row per retrieval query: which sentence it retrieved first, the true one's rank
RETRIEVAL_ITEMS_TABLE = "retrieval_items"
#: the tables a report draws (retrieval_items is read with SQL)
RESULT_TABLES = (SIMILARITY_TABLE, RETRIEVAL_TABLE, TSNE_TABLE, NEURONS_TOP_TABLE,
                 NEURONS_OVERLAP_TABLE, CONCENTRATION_TABLE)

#: the key a re-ingest replaces on (never duplicates); the activation tables' primary key
ACTIVATION_KEY = ("model", "point", "modality", "lang", "sample_id")
SENTENCES_KEY = ("source", "split", "lang", "sentence_id")
POINTS_KEY = ("model", "point")


def corpus_name(source: str, split: str) -> str:
    """The parallel corpus of a source's sentence ids: `{corpus}:{split}`, e.g. `flores200:devtest`.

    FLORES-200 read as text and synthesised as speech is one corpus (the ids name the same
    sentences); FLEURS, and each user manifest, is its own. Rows of different corpora never align
    unless the user declares them parallel (`ingest --corpus NAME`).
    """
    base = "flores200" if source.startswith("flores200") else source
    return f"{base}:{split}"


def key_field(name: str, typ: pa.DataType) -> pa.Field:
    """A non-nullable primary-key column (Lance reads the key from this field metadata)."""
    return pa.field(name, typ, nullable=False, metadata=PRIMARY_KEY_METADATA)

VECTOR_DTYPES = {"float32": pa.float32(), "float16": pa.float16()}

METADATA_FIELDS = [
    key_field("model", pa.string()),
    key_field("point", pa.string()),
    pa.field("layer", pa.int32()),
    key_field("modality", pa.string()),
    key_field("lang", pa.string()),
    pa.field("sentence_id", pa.int64(), nullable=False),
    # what makes two rows the same sentence: (corpus, sentence_id), never the id alone
    pa.field("corpus", pa.string()),
    key_field("sample_id", pa.string()),
    pa.field("split", pa.string()),
    pa.field("n_frames", pa.int32()),
    pa.field("resource_level", pa.string()),
    pa.field("script", pa.string()),
    pa.field("family", pa.string()),
    pa.field("run_id", pa.string()),
]
METADATA_COLUMNS = [f.name for f in METADATA_FIELDS]


def activation_schema(width: int, vector_dtype: str = "float32") -> pa.Schema:
    """Arrow schema of an activation table holding vectors of `width`."""
    return pa.schema(METADATA_FIELDS + [
        pa.field("vector", pa.list_(VECTOR_DTYPES[vector_dtype], width), nullable=False)
    ])


META_SCHEMA = pa.schema([pa.field("key", pa.string()), pa.field("value", pa.string())])

POINTS_SCHEMA = pa.schema([
    key_field("model", pa.string()),
    key_field("point", pa.string()),
    pa.field("modality", pa.string()),
    pa.field("layer", pa.int32()),
    pa.field("width", pa.int32()),
    pa.field("vector_dtype", pa.string()),
    pa.field("table_name", pa.string()),
    pa.field("random_init", pa.bool_()),
])

RUNS_SCHEMA = pa.schema([
    pa.field("run_id", pa.string()),
    pa.field("model", pa.string()),
    pa.field("model_id", pa.string()),
    pa.field("model_revision", pa.string()),
    pa.field("adapter", pa.string()),
    pa.field("random_init", pa.bool_()),
    pa.field("source", pa.string()),
    pa.field("dataset_revision", pa.string()),
    pa.field("split", pa.string()),
    pa.field("langs", pa.list_(pa.string())),
    pa.field("modalities", pa.list_(pa.string())),
    pa.field("points", pa.list_(pa.string())),
    pa.field("pooling", pa.string()),
    pa.field("dtype", pa.string()),
    pa.field("vector_dtype", pa.string()),
    pa.field("device", pa.string()),
    pa.field("batch_size", pa.int32()),
    pa.field("package_version", pa.string()),
    pa.field("started_at", pa.timestamp("us", tz="UTC")),
    pa.field("ended_at", pa.timestamp("us", tz="UTC")),
    pa.field("status", pa.string()),
    pa.field("n_items", pa.int64()),
    pa.field("n_rows", pa.int64()),
    pa.field("params", pa.string()),
    # who ran it (issue 10, item 5): a `running` run whose process is gone is marked `interrupted`
    pa.field("host", pa.string()),
    pa.field("pid", pa.int64()),
    pa.field("pid_start", pa.int64()),  # the process's start time (clock ticks since boot, Linux)
])

#: runs columns added after schema version 1; older stores get them on their next ingest
RUNS_PROCESS_FIELDS = ("host", "pid", "pid_start")

SENTENCES_SCHEMA = pa.schema([
    key_field("source", pa.string()),
    key_field("split", pa.string()),
    key_field("lang", pa.string()),
    key_field("sentence_id", pa.int64()),
    pa.field("text", pa.string()),
])


def model_slug(model: str) -> str:
    """A table-name-safe, collision-free slug for a model name."""
    readable = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:40] or "model"
    digest = hashlib.sha1(model.encode("utf-8")).hexdigest()[:8]
    return f"{readable}_{digest}"


def activation_table_name(model: str, width: int) -> str:
    return f"{ACTIVATION_PREFIX}{model_slug(model)}_d{width}"


def sql_quote(value: str) -> str:
    """Quote a string literal for a Lance/DataFusion filter."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values) -> str:
    vals = list(values)
    if len(vals) == 1:
        v = vals[0]
        return f"{column} = {v}" if isinstance(v, int) else f"{column} = {sql_quote(v)}"
    inner = ", ".join(str(v) if isinstance(v, int) else sql_quote(v) for v in vals)
    return f"{column} IN ({inner})"


def table_key(name: str) -> tuple[str, ...] | None:
    """The primary key of a store table by name (None for meta, runs and result tables)."""
    if name.startswith(ACTIVATION_PREFIX):
        return ACTIVATION_KEY
    return {SENTENCES_TABLE: SENTENCES_KEY, POINTS_TABLE: POINTS_KEY}.get(name)
