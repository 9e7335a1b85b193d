"""Data sources: where parallel speech and text items come from.

    source = open_source("flores", catalogue=Catalogue.load())   # offline default
    for item in source.items("deu", "speech", sentence_ids=range(1, 11)):
        ...

Kinds:
- `flores`: FLORES-200 text shipped in the package (or `data_dir`) + espeak-ng speech
  (name "flores200+espeak-ng"; `speech=False` for text only).
- `fleurs`: FLEURS raw files from `data_dir` or the HF hub cache (name "fleurs").
- `manifest`: a CSV/Parquet listing your own items; `data_dir` is the manifest file (or pass
  `path=`) (name "manifest").
"""

from __future__ import annotations

from pathlib import Path

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError
from actstore.ingest.sources.audio import load_audio, resample
from actstore.ingest.sources.base import Entry, Source
from actstore.ingest.sources.espeak import EspeakSynthesizer
from actstore.ingest.sources.fleurs import FleursSource
from actstore.ingest.sources.flores import FloresSource, FloresText
from actstore.ingest.sources.manifest import ManifestSource

KINDS = ("flores", "fleurs", "manifest")
_OPTIONS = {"flores": {"speech", "workers", "synthesizer"}, "fleurs": {"revision"}, "manifest": {"path"}}

__all__ = [
    "KINDS", "Entry", "EspeakSynthesizer", "FleursSource", "FloresSource", "FloresText",
    "ManifestSource", "Source", "load_audio", "open_source", "resample",
]


def open_source(
    kind: str,
    *,
    catalogue: Catalogue,
    data_dir: str | Path | None = None,
    split: str = "devtest",
    cache_dir: str | Path | None = None,
    **kw,
) -> Source:
    """Open a source by kind (see module doc). Only locates and indexes data; nothing is decoded.

    Extra keywords go to the source: flores `speech`, `workers`; fleurs `revision`;
    manifest `path`.
    """
    if kind not in KINDS:
        raise DataSourceError(f"Unknown source {kind!r}; use one of {', '.join(KINDS)}.")
    unknown = set(kw) - _OPTIONS[kind]
    if unknown:
        raise DataSourceError(
            f"Unknown option(s) {', '.join(sorted(unknown))} for the {kind} source; "
            f"allowed: {', '.join(sorted(_OPTIONS[kind]))}."
        )
    if kind == "flores":
        return FloresSource(catalogue, data_dir, split, cache_dir, **kw)
    if kind == "fleurs":
        return FleursSource(catalogue, data_dir, split, **kw)
    if kind == "manifest":
        path = kw.pop("path", None) or data_dir
        if path is None:
            raise DataSourceError("The manifest source needs a file; pass --data-dir path/to/manifest.csv.")
        return ManifestSource(catalogue, path, split)
