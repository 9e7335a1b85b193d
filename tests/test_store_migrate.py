"""`actstore migrate`: a store written with schema version 1 (no primary keys) upgraded in place."""

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from actstore.cli import main
from actstore.errors import SchemaVersionError, StoreError
from actstore.schema import (
    ACTIVATION_KEY, META_SCHEMA, POINTS_SCHEMA, SCHEMA_VERSION, SENTENCES_SCHEMA, activation_schema,
    activation_table_name,
)
from actstore.store import Store, migrate
from _store_data import activation_rows

PK = b"lance-schema:unenforced-primary-key"


def _v1(schema: pa.Schema, *, nullable_keys: bool) -> pa.Schema:
    """The version-1 form of a schema: no key metadata; sentences/points keys were nullable."""
    return pa.schema([pa.field(f.name, f.type, True if nullable_keys else f.nullable) for f in schema])


def _old_store(path, *, duplicate: bool = False) -> str:
    """A store as actstore 0.1.0 (schema version 1) wrote it: meta, points, sentences, activations."""
    uri = str(path)
    db = lancedb.connect(uri)
    db.create_table("meta", pa.table({"key": ["schema_version", "created_by", "created_at"],
                                      "value": ["1", "actstore 0.1.0", "2026-01-01T00:00:00+00:00"]},
                                     schema=META_SCHEMA))
    db.create_table("points", pa.Table.from_pylist(
        [{"model": "m", "point": "text.L1", "modality": "text", "layer": 1, "width": 4,
          "vector_dtype": "float32", "table_name": activation_table_name("m", 4), "random_init": False}],
        schema=_v1(POINTS_SCHEMA, nullable_keys=True)))
    sids = [0, 1, 2, 2] if duplicate else [0, 1, 2]  # a duplicate in the LAST table migrated
    db.create_table("sentences", pa.table(
        {"source": ["flores"] * len(sids), "split": ["devtest"] * len(sids), "lang": ["eng"] * len(sids),
         "sentence_id": sids, "text": ["a", "b", "c", "c"][:len(sids)]},
        schema=_v1(SENTENCES_SCHEMA, nullable_keys=True)))
    ids = [0, 1, 2]
    rows = activation_rows("m", "text.L1", "text", "eng", ids, np.arange(4 * len(ids), dtype=np.float32).reshape(-1, 4))
    rows = rows.drop_columns(["corpus"])  # version 1 (and 2) rows carry no corpus
    schema = _v1(pa.schema([f for f in activation_schema(4) if f.name != "corpus"]), nullable_keys=False)
    db.create_table(activation_table_name("m", 4), rows.cast(schema))
    return uri


def test_old_store_is_refused_with_the_migrate_command_named(tmp_path):
    uri = _old_store(tmp_path / "old")
    with pytest.raises(SchemaVersionError, match=f"schema version 1 .*`actstore migrate --db {uri}`"):
        Store.open(uri)


def test_migrate_declares_keys_keeps_rows_and_is_idempotent(tmp_path):
    uri = _old_store(tmp_path / "old")
    result = CliRunner().invoke(main, ["migrate", "--db", uri])
    assert result.exit_code == 0, result.output
    assert f"from schema version 1 to {SCHEMA_VERSION} (3 tables upgraded)" in result.output
    store = Store.open(uri)
    act = store.dataset(activation_table_name("m", 4)).schema
    assert [f.name for f in act if (f.metadata or {}).get(PK) == b"true"] == list(ACTIVATION_KEY)
    assert all(not act.field(c).nullable for c in ACTIVATION_KEY)
    sent = store.dataset("sentences").schema
    assert all((sent.field(c).metadata or {}).get(PK) == b"true" and not sent.field(c).nullable
               for c in ("source", "split", "lang", "sentence_id"))
    got = store.read("m", points="text.L1")
    np.testing.assert_array_equal(got.vectors[np.argsort(got.meta["sentence_id"].to_numpy())],
                                  np.arange(12, dtype=np.float32).reshape(3, 4))
    assert store.sentences()["text"].sort().to_list() == ["a", "b", "c"]
    # the migrated store takes keyed writes like a new one
    store.write_activations("m", 4, activation_rows("m", "text.L1", "text", "eng", [2, 3],
                                                    np.ones((2, 4), np.float32)), replace=False)
    assert store.count_rows("m") == 4
    again = CliRunner().invoke(main, ["migrate", "--db", uri])
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_migrate_refuses_a_table_with_duplicate_keys_and_changes_nothing(tmp_path):
    uri = _old_store(tmp_path / "dup", duplicate=True)
    before = {n: lancedb.connect(uri).open_table(n).version for n in ("points", "sentences", activation_table_name("m", 4))}
    with pytest.raises(StoreError, match="'sentences' holds 2 rows whose key .* is stored twice"):
        migrate(uri)
    after = {n: lancedb.connect(uri).open_table(n).version for n in before}
    assert after == before
    with pytest.raises(SchemaVersionError):
        Store.open(uri)


def test_migrate_of_a_missing_store_fails_clearly(tmp_path):
    result = CliRunner().invoke(main, ["migrate", "--db", str(tmp_path / "none")])
    assert result.exit_code != 0 and "No actstore store" in result.output
