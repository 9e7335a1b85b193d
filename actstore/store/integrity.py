"""`actstore check`: find (and with `--repair`, fix) what makes a store inconsistent.

Schema version 2 guards new writes (primary keys), but a store written before it, by a buggy
writer, or left half-done by a kill can still hold: keys stored twice (a reader would count
those rows twice), text activations without their sentence texts, activation rows whose point is
not registered (invisible to every reader) or registrations without rows, tables never finalized
(missing or stale indices, small fragments, old versions kept) and `running` runs whose process
is gone. `check_store` reports each as one `Problem` with counts; `repair_store` fixes each
repairable one in ONE commit per table (deduplication: one delete; points: one merge; runs: one
update; finalize: Lance's own compaction/cleanup commits) and names the `actstore ingest` command
for what only the model can recompute (sentence texts).

Like a file-system check, a repair assumes no other process writes the store meanwhile: it
deletes duplicate rows by their row address, which a concurrent compaction would change.

The analyses call `require_unique_keys` before reading a model: a count-distinct over the key
columns of that model's tables (a projection + filter pushed into the Lance scan), cached per
table version, so it costs one scan of five string columns per analysis (~tens of ms at 50k rows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import lancedb
import polars as pl
import pyarrow as pa

from actstore.errors import SchemaVersionError, StoreError
from actstore.store.corpora import rows_with_corpus, shared_sentence_ids, with_corpus
from actstore.schema import (
    ACTIVATION_KEY,
    ACTIVATION_PREFIX,
    META_TABLE,
    MIGRATABLE_VERSIONS,
    POINTS_SCHEMA,
    POINTS_TABLE,
    RUNS_TABLE,
    SCHEMA_VERSION,
    SENTENCES_TABLE,
    sql_in,
    sql_quote,
    table_key,
)
from actstore.store.activations import _INDICES
from actstore.store.api import Store
from actstore.store.connection import list_table_names
from actstore.store.runs import mark_stale_runs, stale_runs

#: fragments smaller than this are merged by Lance's compaction (its default target)
TARGET_ROWS_PER_FRAGMENT = 1024 * 1024
#: a fragment whose deleted share exceeds this is rewritten by compaction (Lance's default)
DELETION_THRESHOLD = 0.1
#: a process that started this much after its run's `started_at` is another process (pid reuse)


@dataclass
class Problem:
    """One inconsistency: what, where, how many, and whether `--repair` fixes it."""

    kind: str  # duplicate-keys, missing-sentences, unregistered-points, empty-points, point-width,
    #            indices, fragments, old-versions, stale-runs, schema-version
    table: str
    count: int
    message: str
    repairable: bool = True
    fix: str | None = None  # the command that fixes it when `--repair` cannot

    def line(self) -> str:
        return f"{self.kind}: {self.message}" + (f"; {self.fix}" if self.fix else "")


@dataclass
class CheckReport:
    uri: str
    problems: list[Problem] = field(default_factory=list)
    #: what a user should know but that is not an inconsistency (e.g. ids shared by corpora)
    notes: list[Problem] = field(default_factory=list)
    tables: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]


# ---------------------------------------------------------------------------------- opening
def open_for_check(uri: str, storage_options: dict | None = None) -> tuple[Store, Problem | None]:
    """Open a store for checking, also one of an older schema version (migrate refuses those
    while they hold duplicates, and names `actstore check --repair`, so check must open them)."""
    try:
        return Store.open(uri, create=False, storage_options=storage_options), None
    except SchemaVersionError:
        db = lancedb.connect(uri, storage_options=storage_options or None)
        store = Store(db, uri, storage_options)
        found = store.meta().get("schema_version", "")
        if not (found.isdigit() and int(found) in MIGRATABLE_VERSIONS):
            raise
        return store, Problem(
            "schema-version", META_TABLE, 1,
            f"the store has schema version {found}, this actstore reads {SCHEMA_VERSION}",
            repairable=False, fix=f"after the repair run `actstore migrate --db {uri}`")


# ---------------------------------------------------------------------------------- duplicates
def _keys(store: Store, table: str, key: tuple[str, ...], where: str | None = None,
          extra: tuple[str, ...] = (), row_address: bool = False) -> pl.DataFrame:
    ds = store.dataset(table)
    cols = [c for c in (*key, *extra) if c in ds.schema.names]
    return pl.from_arrow(ds.to_table(columns=cols, filter=where, with_row_address=row_address))  # type: ignore


def count_duplicates(store: Store, table: str, key: tuple[str, ...], where: str | None = None) -> tuple[int, int]:
    """(keys stored more than once, surplus rows) in `table` (optionally filtered)."""
    keys = _keys(store, table, key, where)
    if keys.height == 0:
        return 0, 0
    groups = keys.group_by(list(key)).len().filter(pl.col("len") > 1)
    return groups.height, int((groups["len"] - 1).sum() or 0)


def _check_duplicates(store: Store, names: list[str], report: CheckReport) -> None:
    for name in names:
        key = table_key(name)
        if key is None:
            continue
        n_keys, surplus = count_duplicates(store, name, key)
        if n_keys:
            report.problems.append(Problem(
                "duplicate-keys", name, surplus,
                f"table {name!r} stores {n_keys} keys ({', '.join(key)}) more than once: "
                f"{surplus} surplus rows"))


_KEY_CHECKED = "_unique_keys_checked"


def require_unique_keys(store: Store, model: str) -> None:
    """Refuse to analyse a model whose activation keys are stored twice (rows would count twice).

    Cached per table version on the store object, so an analysis calling it from several entry
    points pays for one scan.
    """
    cache: dict = store.__dict__.setdefault(_KEY_CHECKED, {})
    for name in store.points(model)["table_name"].unique().sort().to_list():
        if not store.has_table(name):
            continue
        version = store.dataset(name).version
        if cache.get((name, model)) == version:
            continue
        n_keys, surplus = count_duplicates(store, name, ACTIVATION_KEY, f"model = {sql_quote(model)}")
        if n_keys:
            raise StoreError(
                f"Model {model!r} has {n_keys} activation keys stored more than once ({surplus} surplus "
                f"rows, which every analysis would count twice); run `actstore check --repair --db "
                f"{store.uri}` to remove them and analyse again."
            )
        cache[(name, model)] = version


# ---------------------------------------------------------------------------------- sentences
def _missing_sentences(store: Store, act_tables: list[str]) -> pl.DataFrame:
    """Text activation (model, run_id, split, lang, sentence_id) whose text is not stored."""
    frames = []
    for name in act_tables:
        rows = rows_with_corpus(store, name, ["model", "run_id", "split", "lang", "sentence_id"],
                                "modality = 'text'")
        frames.append(rows.select("model", "run_id", "split", "corpus", "lang", "sentence_id"))
    if not frames:
        return pl.DataFrame()
    text = pl.concat(frames).unique()  # type: ignore[arg-type]
    runs = store.runs().select("run_id", "source")
    text = text.join(runs, on="run_id", how="left")  # the source names the fix command
    # texts are matched by corpus (a text belongs to the corpus of its id, whichever run wrote it)
    have = with_corpus(store.sentences()).select("corpus", "split", "lang", "sentence_id")
    unknown = pl.col("corpus").str.starts_with("unknown:")  # the run row is gone: match without corpus
    missing = pl.concat([
        text.filter(~unknown).join(have, on=["corpus", "lang", "sentence_id"], how="anti"),
        text.filter(unknown).join(have.drop("corpus").unique(), on=["split", "lang", "sentence_id"], how="anti"),
    ])
    return missing.unique(["model", "source", "split", "lang", "sentence_id"])


def fill_command(store: Store, model: str, missing: pl.DataFrame) -> str:
    """The `actstore ingest` command that re-encodes the texts of `missing` rows (and stores them)."""
    import json

    runs = store.runs(model)
    run = runs.filter(pl.col("run_id").is_in(missing["run_id"].unique().to_list()))
    row = (run if run.height else runs).tail(1).to_dicts()
    last = row[0] if row else {}
    params = json.loads(last["params"]) if last.get("params") else {}
    text_points = store.points(model).filter(pl.col("modality") == "text")["point"].sort().to_list()
    parts = ["actstore ingest", f"--db {store.uri}", f"--model {last.get('model_id') or model}"]
    if last.get("model_id") and last["model_id"] != model:
        parts.append(f"--name {model}")
    source = missing["source"].drop_nulls().first() if missing["source"].drop_nulls().len() else last.get("source")
    if source:
        parts.append(f"--source {'flores' if str(source).startswith('flores') else source}")
    if params.get("data_dir"):
        parts.append(f"--data-dir {params['data_dir']}")
    parts += [f"--split {missing['split'][0]}", f"--langs {','.join(sorted(missing['lang'].unique().to_list()))}",
              "--modalities text"]
    if text_points:
        parts.append(f"--points {','.join(text_points)}")
    if params.get("limit"):
        parts.append(f"--limit {params['limit']}")
    parts.append("--overwrite")
    return "run `" + " ".join(parts) + "`"


def _check_sentences(store: Store, act_tables: list[str], report: CheckReport) -> None:
    missing = _missing_sentences(store, act_tables)
    if missing.height == 0:
        return
    for (model,), grp in missing.group_by(["model"], maintain_order=True):
        per_lang = grp.group_by("lang").len().sort("lang")
        counts = ", ".join(f"{r['lang']} {r['len']}" for r in per_lang.iter_rows(named=True))
        report.problems.append(Problem(
            "missing-sentences", SENTENCES_TABLE, grp.height,
            f"{grp.height} sentence ids with text activations of {model!r} have no text ({counts})",
            repairable=False, fix=fill_command(store, model, grp)))


# ---------------------------------------------------------------------------------- points
def _stored_points(store: Store, act_tables: list[str]) -> pl.DataFrame:
    """(model, point, table_name, modality, layer, width, vector_dtype, rows) found in the tables."""
    frames = []
    for name in act_tables:
        ds = store.dataset(name)
        vec = ds.schema.field("vector").type
        dtype = "float16" if pa.types.is_float16(vec.value_type) else "float32"
        t = pl.from_arrow(ds.to_table(columns=["model", "point", "modality", "layer"]))
        frames.append(t.group_by("model", "point").agg(  # type: ignore[union-attr]
            pl.col("modality").first(), pl.col("layer").first(), pl.len().alias("rows"))
            .with_columns(pl.lit(name).alias("table_name"), pl.lit(vec.list_size, pl.Int32).alias("width"),
                          pl.lit(dtype).alias("vector_dtype")))
    if not frames:
        return pl.DataFrame(schema={"model": pl.String, "point": pl.String, "modality": pl.String,
                                    "layer": pl.Int32, "rows": pl.UInt32, "table_name": pl.String,
                                    "width": pl.Int32, "vector_dtype": pl.String})
    return pl.concat(frames)


def _points_diff(store: Store, act_tables: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(unregistered, registered without rows, registered with the wrong width/table)."""
    stored = _stored_points(store, act_tables)
    registered = store.points()
    unregistered = stored.join(registered.select("model", "point"), on=["model", "point"], how="anti")
    empty = registered.join(stored.select("model", "point"), on=["model", "point"], how="anti")
    both = registered.join(stored, on=["model", "point"], suffix="_stored")
    wrong = both.filter((pl.col("width") != pl.col("width_stored"))
                        | (pl.col("table_name") != pl.col("table_name_stored"))
                        | (pl.col("vector_dtype") != pl.col("vector_dtype_stored")))
    return unregistered, empty, wrong


def _check_points(store: Store, act_tables: list[str], report: CheckReport) -> None:
    unregistered, empty, wrong = _points_diff(store, act_tables)
    if unregistered.height:
        report.problems.append(Problem(
            "unregistered-points", POINTS_TABLE, unregistered.height,
            f"{unregistered.height} (model, point) pairs have {int(unregistered['rows'].sum())} activation "
            f"rows but are not in the points registry ({_names(unregistered)}), so no reader sees them"))
    if empty.height:
        report.problems.append(Problem(
            "empty-points", POINTS_TABLE, empty.height,
            f"{empty.height} registered (model, point) pairs have no activation rows ({_names(empty)})"))
    if wrong.height:
        report.problems.append(Problem(
            "point-width", POINTS_TABLE, wrong.height,
            f"{wrong.height} registered points disagree with their rows on width, dtype or table "
            f"({_names(wrong)})"))


def _names(frame: pl.DataFrame, n: int = 4) -> str:
    names = [f"{r['model']}/{r['point']}" for r in frame.head(n).iter_rows(named=True)]
    return ", ".join(names) + (f", +{frame.height - n} more" if frame.height > n else "")


# ---------------------------------------------------------------------------------- finalize
def _finalize_state(store: Store, name: str) -> dict[str, int]:
    """What finalize would change in one activation table (all zero when it is finalized)."""
    ds = store.dataset(name)
    if ds.count_rows() == 0:
        return {"missing_indices": 0, "unindexed_rows": 0, "small_fragments": 0,
                "deleted_fragments": 0, "old_versions": 0}
    tbl = store._open_table(name)
    tbl.checkout_latest()
    configs = {idx.columns[0]: idx for idx in tbl.list_indices()}
    missing = [col for col, _ in _INDICES if col not in configs]
    unindexed = max((int(getattr(configs[c], "num_unindexed_rows", 0) or 0) for c in configs), default=0)
    small = deleted = 0
    for frag in ds.get_fragments():
        physical = frag.metadata.physical_rows
        live = frag.count_rows() if frag.metadata.deletion_file is not None else physical
        if physical and (physical - live) / physical > DELETION_THRESHOLD:
            deleted += 1
        if live < TARGET_ROWS_PER_FRAGMENT:
            small += 1
    return {"missing_indices": len(missing), "unindexed_rows": unindexed,
            "small_fragments": small if small > 1 else 0, "deleted_fragments": deleted,
            "old_versions": len(ds.versions()) - 1}


def _check_finalized(store: Store, act_tables: list[str], report: CheckReport) -> None:
    for name in act_tables:
        s = _finalize_state(store, name)
        if s["missing_indices"] or s["unindexed_rows"]:
            report.problems.append(Problem(
                "indices", name, s["missing_indices"] + (1 if s["unindexed_rows"] else 0),
                f"table {name!r} lacks {s['missing_indices']} of its {len(_INDICES)} metadata indices and "
                f"has {s['unindexed_rows']} rows outside them"))
        if s["small_fragments"] or s["deleted_fragments"]:
            report.problems.append(Problem(
                "fragments", name, s["small_fragments"] + s["deleted_fragments"],
                f"table {name!r} is not compacted: {s['small_fragments']} small fragments, "
                f"{s['deleted_fragments']} fragments with over {DELETION_THRESHOLD:.0%} deleted rows"))
        if s["old_versions"]:
            report.problems.append(Problem(
                "old-versions", name, s["old_versions"],
                f"table {name!r} keeps {s['old_versions']} old versions (disk not cleaned up)"))


# ---------------------------------------------------------------------------------- runs
def _check_runs(store: Store, report: CheckReport) -> None:
    stale = stale_runs(store)
    if stale.height:
        report.problems.append(Problem(
            "stale-runs", RUNS_TABLE, stale.height,
            f"{stale.height} runs are marked running but their process is gone "
            f"({', '.join(stale['run_id'].head(4).to_list())})"))


def _note_shared_ids(store: Store, act_tables: list[str], report: CheckReport) -> None:
    """Sentence ids carrying different texts in several corpora of one model (a note)."""
    shared = shared_sentence_ids(store, act_tables)
    if shared.height == 0:
        return
    for (model,), grp in shared.group_by(["model"], maintain_order=True):
        first = grp.row(0, named=True)
        example = " vs ".join(f"{c}: {t!r}" if t else f"{c}: (no text stored)"
                              for c, t in zip(first["corpora"], first["texts"]))
        report.notes.append(Problem(
            "shared-sentence-ids", "activations", grp.height,
            f"{grp.height} sentence ids of {model!r} are used by several corpora with different texts "
            f"(e.g. {first['lang']} id {first['sentence_id']}: {example}); analyses align within one "
            "corpus (pick it with --corpus)", repairable=False,
            fix="if the ids name the same sentences, re-ingest with `--corpus NAME` to declare them parallel"))


# ---------------------------------------------------------------------------------- check
def activation_tables(store: Store) -> list[str]:
    return sorted(n for n in list_table_names(store._db) if n.startswith(ACTIVATION_PREFIX))


def check_store(store: Store, *, first: Problem | None = None) -> CheckReport:
    """Every check over the store; an empty `problems` list means it is consistent."""
    t0 = time.perf_counter()
    names = list_table_names(store._db)
    acts = sorted(n for n in names if n.startswith(ACTIVATION_PREFIX))
    report = CheckReport(uri=store.uri, tables=len(names))
    if first is not None:
        report.problems.append(first)
    _check_duplicates(store, [*acts, *(n for n in (SENTENCES_TABLE, POINTS_TABLE) if n in names)], report)
    _check_sentences(store, acts, report)
    _check_points(store, acts, report)
    _check_finalized(store, acts, report)
    _note_shared_ids(store, acts, report)
    if RUNS_TABLE in names:
        _check_runs(store, report)
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------- repair
def _dedupe(store: Store, name: str, key: tuple[str, ...]) -> int:
    """Delete all but the newest row of every duplicated key in ONE commit; returns rows deleted.

    Newest: the row whose run started last (activation rows carry their run_id), ties and rows
    without a run broken by write order (the highest row address was written last).
    """
    keys = _keys(store, name, key, extra=("run_id",), row_address=True)
    if keys.height == 0:
        return 0
    if "run_id" in keys.columns:
        runs = store.runs().select("run_id", "started_at")
        keys = keys.join(runs, on="run_id", how="left")
    else:
        keys = keys.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("started_at"))
    ranked = keys.sort(["started_at", "_rowaddr"], nulls_last=False).with_columns(
        pl.len().over(list(key)).alias("_n"), pl.int_range(pl.len()).over(list(key)).alias("_i"))
    drop = ranked.filter((pl.col("_n") > 1) & (pl.col("_i") < pl.col("_n") - 1))["_rowaddr"].to_list()
    if not drop:
        return 0
    store.dataset(name).delete(sql_in("_rowaddr", [int(a) for a in drop]))
    store._open_table(name).checkout_latest()
    return len(drop)


def _repair_points(store: Store, acts: list[str]) -> int:
    """Register unregistered points, fix wrong widths/tables and drop empty registrations: one merge."""
    unregistered, empty, wrong = _points_diff(store, acts)
    if not (unregistered.height or empty.height or wrong.height):
        return 0
    runs = store.runs()
    random_models = set(runs.filter(pl.col("random_init").fill_null(False))["model"].to_list())
    random_models |= set(store.points().filter(pl.col("random_init").fill_null(False))["model"].to_list())
    fixed = pl.concat([
        unregistered.select("model", "point", "modality", "layer", "width", "vector_dtype", "table_name"),
        wrong.select("model", "point", pl.col("modality_stored").alias("modality"),
                     pl.col("layer_stored").alias("layer"), pl.col("width_stored").alias("width"),
                     pl.col("vector_dtype_stored").alias("vector_dtype"),
                     pl.col("table_name_stored").alias("table_name")),
    ]).with_columns(pl.col("model").is_in(list(random_models)).alias("random_init"))
    rows = pa.Table.from_pylist(fixed.to_dicts(), schema=POINTS_SCHEMA)
    tbl = store.ensure_table(POINTS_TABLE, POINTS_SCHEMA)
    merge = tbl.merge_insert(["model", "point"]).when_matched_update_all().when_not_matched_insert_all()
    if empty.height:
        merge = merge.when_not_matched_by_source_delete(" OR ".join(
            f"(model = {sql_quote(r['model'])} AND point = {sql_quote(r['point'])})"
            for r in empty.iter_rows(named=True)))
    if rows.num_rows == 0:  # merge_insert needs a source: delete the empty registrations alone
        tbl.delete(" OR ".join(f"(model = {sql_quote(r['model'])} AND point = {sql_quote(r['point'])})"
                               for r in empty.iter_rows(named=True)))
    else:
        merge.execute(rows)
    return unregistered.height + empty.height + wrong.height


def repair_store(store: Store, report: CheckReport) -> list[str]:
    """Fix every repairable problem of `report`; returns one line per action taken."""
    done: list[str] = []
    names = list_table_names(store._db)
    acts = sorted(n for n in names if n.startswith(ACTIVATION_PREFIX))
    for p in report.by_kind("duplicate-keys"):
        n = _dedupe(store, p.table, table_key(p.table))  # type: ignore[arg-type]
        done.append(f"deduplicated {p.table!r}: deleted {n} surplus rows (kept the newest of each key)")
    if any(report.by_kind(k) for k in ("unregistered-points", "empty-points", "point-width")):
        n = _repair_points(store, acts)
        done.append(f"points registry: {n} (model, point) registrations added, fixed or removed")
    touched = {p.table for p in report.problems if p.kind in ("duplicate-keys", "indices", "fragments", "old-versions")}
    for name in acts:
        if name in touched and store.dataset(name).count_rows():
            store.finalize_table(name)
            done.append(f"finalized {name!r}: indices, compaction, old versions removed")
    stale = report.by_kind("stale-runs")
    if stale:
        ids = mark_stale_runs(store)
        done.append(f"runs: marked {len(ids)} stale runs interrupted")
    return done
