"""Neuron sites as the analyses see them: names, which are stored, and their rows.

A *site* is a set of neurons inside a layer, stored like a point (one pooled vector per item):
`<stack>.L<i>.<site>` with stack `speech`, `text` or `decoder` (or a dotted stack such as
`speech.llm` of the decoder-only families, split by position as their hidden states are) and site
`ffn` (a conformer's two macaron FFNs: `ffn1`, `ffn2`), `self_attn.q|k|v` or `cross_attn.q|k|v`
(`speech.L3.ffn`, `speech.L3.ffn1`, `decoder.L5.cross_attn.v`).

Why the modality is read from the rows and not from the point: a decoder site holds the SAME
neurons under two conditions (decoding conditioned on the speech or on the text encoding), and
its rows carry that conditioning as their modality. Encoder sites hold one modality. So whether a
site can be compared across modalities (speech-vs-text AP, speech/text overlap) is decided by
the rows it holds, never by pairing `speech.L3.ffn` with `text.L3.ffn` (different encoders,
different neurons).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl

from actstore.errors import AnalysisInputError
from actstore.store import Store
from actstore.analyses.aligned import choose_corpus

SITE_RE = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)\.L(\d+)\."
                     r"(ffn[12]?|self_attn\.[qkv]|cross_attn\.[qkv])$")
#: page order of stacks (others, e.g. `speech.llm`, follow by name)
STACK_ORDER = {"speech": 0, "text": 1, "decoder": 2}
#: the columns an analysis of a site reads besides the vector (catalogue facts on every row)
SITE_COLUMNS = ["lang", "modality", "sentence_id", "sample_id", "corpus", "script",
                "resource_level", "family"]


@dataclass(frozen=True)
class Site:
    """One stored site: `name` = `<stack>.L<layer>.<kind>`."""

    name: str
    stack: str
    layer: int
    kind: str


def parse_site(name: str) -> Site | None:
    """The site a point name names, or None when it is a hidden-state point."""
    m = SITE_RE.match(name)
    return None if m is None else Site(name, m.group(1), int(m.group(2)), m.group(3))


def is_site(name: str) -> bool:
    return SITE_RE.match(name) is not None


def model_sites(store: Store, model: str, wanted: Sequence[str] | None = None) -> list[Site]:
    """The model's stored sites, optionally those matching names or globs (`decoder.*.cross_attn.*`).

    Sorted by stack (speech, text, decoder), layer and kind, so tables and heatmaps read in
    model order. An unknown name (no stored site matches it) is refused.
    """
    # a decoder site is registered once per conditioning (modality): list each site once
    points = list(dict.fromkeys(store.require_model(model)["point"].to_list()))
    sites = [s for s in (parse_site(p) for p in points) if s is not None]
    if wanted:
        unknown = [w for w in wanted if not any(fnmatch.fnmatchcase(s.name, w) for s in sites)]
        if unknown:
            raise AnalysisInputError(
                f"Site(s) {', '.join(unknown)} are not stored for model {model!r}; stored sites: "
                f"{', '.join(s.name for s in sites[:12]) or '(none: ingest with sites)'}"
                f"{' ...' if len(sites) > 12 else ''}.")
        sites = [s for s in sites if any(fnmatch.fnmatchcase(s.name, w) for w in wanted)]
    return sorted(sites, key=lambda s: (STACK_ORDER.get(s.stack, len(STACK_ORDER)), s.stack, s.layer, s.kind))


@dataclass
class SiteRows:
    """One site's rows of one corpus: metadata (SITE_COLUMNS) and (n, width) vectors."""

    site: Site
    meta: pl.DataFrame
    x: np.ndarray

    @property
    def modalities(self) -> list[str]:
        return sorted(set(self.meta["modality"].to_list()))

    def mask(self, **equal: str) -> np.ndarray:
        """Boolean row mask of rows whose columns equal the given values."""
        out = np.ones(self.meta.height, dtype=bool)
        for column, value in equal.items():
            out &= (self.meta[column] == value).to_numpy()
        return out


def load_site(store: Store, model: str, site: Site | str, *, langs: Sequence[str] | None = None,
              corpus: str | None = None) -> SiteRows:
    """Every row of one site (all modalities, every recording) in one corpus.

    Every stored item counts (several FLEURS recordings of one sentence are several items): the
    per-neuron statistics here are over items, not over sentence pairs.
    """
    s = site if isinstance(site, Site) else (parse_site(site) or Site(site, "", -1, "point"))
    sl = store.read(model, points=s.name, langs=langs, columns=SITE_COLUMNS)
    if sl.meta.height == 0:
        raise AnalysisInputError(f"Site {s.name!r} of model {model!r} holds no rows"
                                 f"{' for ' + ','.join(langs) if langs else ''}; ingest it first.")
    chosen = choose_corpus(sl.meta, model, corpus)
    keep = (sl.meta["corpus"] == chosen).to_numpy() if chosen is not None else np.ones(sl.meta.height, bool)
    meta = sl.meta.filter(pl.Series(keep)).with_columns(pl.col("script").fill_null("unknown"))
    return SiteRows(site=s, meta=meta, x=np.ascontiguousarray(sl.vectors[keep]))
