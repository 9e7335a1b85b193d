"""Check an ingest request and open its inputs, before any store is written or model loaded.

`check_request` is the one library check of a request's arguments, for Python callers; the CLI
declares the same rules as click types (`click.Choice`, `click.IntRange`), so a command-line
mistake is refused by click before a request is even built.
"""

from __future__ import annotations

from actstore.catalogue import Catalogue
from actstore.errors import ActstoreError
from actstore.schema import VECTOR_DTYPES
from actstore.ingest.items import MODALITIES
from actstore.ingest.memory import parse_size
from actstore.ingest.requests import ENGINES
from actstore.ingest.steps.jobs import IngestRequest


def check_request(request: IngestRequest) -> None:
    """Refuse malformed arguments before anything is opened or loaded."""
    if request.vector_dtype not in VECTOR_DTYPES:
        raise ActstoreError(f"--vector-dtype {request.vector_dtype!r} is not supported; use "
                            f"{' or '.join(VECTOR_DTYPES)}.")
    if request.batch_size < 1:
        raise ActstoreError("--batch-size must be at least 1.")
    if request.max_seconds is not None and not request.max_seconds > 0:
        raise ActstoreError(f"--max-seconds {request.max_seconds} must be more than 0; e.g. --max-seconds 60.")
    parse_size(request.memory_budget)  # refuses a malformed size now
    if request.limit is not None and request.limit < 1:
        raise ActstoreError("--limit must be at least 1 (or omitted for every sentence).")
    if request.langs == "" or (isinstance(request.langs, (list, tuple)) and not request.langs):
        raise ActstoreError("--langs names no language; pass codes such as --langs eng,fra, or --langs all.")
    if not request.modalities:
        raise ActstoreError("--modalities names no modality; use speech, text or speech,text.")
    bad_mod = [m for m in request.modalities if m not in MODALITIES]
    if bad_mod:
        raise ActstoreError(f"Unknown modality {bad_mod[0]!r}; use speech and/or text.")
    if request.engine not in ENGINES:
        raise ActstoreError(f"--engine {request.engine!r} is not known; use one of {', '.join(ENGINES)}.")
    if request.ray_actors is not None and request.ray_actors < 1:
        raise ActstoreError("--ray-actors must be at least 1.")


def open_inputs(request: IngestRequest):
    """(catalogue, source, languages to ingest): explicit languages the source lacks are an error."""
    from actstore.ingest.sources import open_source

    catalogue = Catalogue.load(request.languages_csv)
    wanted = catalogue.resolve(request.langs)  # validates codes
    source = open_source(request.source, catalogue=catalogue, data_dir=request.data_dir,
                         split=request.split, cache_dir=request.cache_dir)
    if request.corpus is not None:
        source.declared_corpus = request.corpus
    available = set(source.languages())
    explicit = request.langs not in (None, "all", ["all"], [])
    missing = [c for c in wanted if c not in available]
    if explicit and missing:
        raise ActstoreError(
            f"Source {source.name} has no data for {', '.join(missing)}; drop them from --langs "
            "or point --data-dir at data that has them."
        )
    return catalogue, source, [c for c in wanted if c in available]
