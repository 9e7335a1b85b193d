"""t-SNE maps per depth: speech and text vectors of every language in one embedding.

Rows are the same one-recording-per-sentence selection as the similarity grids, at most
`per_language` sentence ids per (language, modality) (first by id) so maps stay readable and
fast; widths are zero-padded (as the study did). Coordinates go to the `tsne` table with
modality, language, sentence id and the sentence text (for tooltips).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from actstore.schema import TSNE_TABLE
from actstore.store import Store
from actstore.analyses.aligned import first_points, language_levels, stored_modalities, choose_depths, load_depth_sets, select_recordings
from actstore.analyses.devices import resolve_device
from actstore.analyses.results import lang_set, load_results, save_results, stamp, widest_units
from actstore.analyses.tsne import pad_widths, tsne_embed
from actstore.store.corpora import corpus_texts

RESULT_TABLE = TSNE_TABLE
#: a map is one embedding of one language set (`langs`): it is replaced as a whole (UNIT)
KEY = ("model", "depth", "langs", "corpus", "modality", "lang", "sentence_id")
UNIT = ("model", "depth", "langs", "corpus")


def tsne_maps(store: Store, model: str, *, depths: Sequence[str] | None = None,
              langs: Sequence[str] | None = None, per_language: int | None = 100,
              perplexity: float = 30.0, max_iter: int = 1000, seed: int = 0,
              progress=None, device: str | None = None, corpus: str | None = None) -> pl.DataFrame:
    """One joint t-SNE per depth over every stored modality and language (not yet saved).

    corpus: the corpus whose sentences are mapped (None: the model's largest).

    device: t-SNE runs on the CPU; None or "cpu" (anything else is refused, as for every analysis).
    """
    resolve_device(device, what="t-SNE", torch_backend=False)
    modalities = tuple(sorted(stored_modalities(store, model)))
    lang_list = list(language_levels(store, model, langs))
    chosen = choose_depths(store, model, depths, need=())
    if not depths:  # by default the depths holding every modality; named depths are all kept
        chosen = [d for d in chosen if set(d.points) == set(modalities)] or chosen
    selection = select_recordings(store, model, first_points(chosen), lang_list, seed=seed, corpus=corpus)
    text_of = corpus_texts(store.sentences(lang_list), selection.corpus)
    frames = []
    for depth in chosen:
        mods = [m for m in modalities if m in depth.points]
        sets = load_depth_sets(store, model, depth, selection, mods)
        blocks, meta = [], []
        for (lang, modality), x in sorted(sets.vectors.items()):
            ids = sets.ids[(lang, modality)]
            take = slice(None) if per_language is None else slice(0, per_language)
            blocks.append(x[take])
            for sid in ids[take]:
                meta.append((modality, lang, int(sid), text_of.get((lang, int(sid)))))
        result = tsne_embed(pad_widths(blocks), perplexity=perplexity, max_iter=max_iter, seed=seed)
        frames.append(pl.DataFrame({
            "depth": depth.name, "point_order": depth.order,
            "modality": [m[0] for m in meta], "lang": [m[1] for m in meta],
            "sentence_id": pl.Series([m[2] for m in meta], dtype=pl.Int64),
            "x": result.coords[:, 0].astype(np.float32), "y": result.coords[:, 1].astype(np.float32),
            "text": pl.Series([m[3] for m in meta], dtype=pl.String),
            "kl_divergence": result.kl_divergence, "perplexity": result.perplexity,
            "method": result.method, "langs": lang_set(lang_list), "corpus": selection.corpus,
        }))
        if progress is not None:
            progress(1)
    return stamp(pl.concat(frames), store, model)


def save_tsne(store: Store, frame: pl.DataFrame) -> None:
    """Write t-SNE maps, replacing each stored map of the same depth and language set."""
    save_results(store, RESULT_TABLE, frame, key=KEY, unit_by=UNIT)


def load_tsne(store: Store, model: str, *, current: bool = True) -> pl.DataFrame | None:
    """Stored maps of `model`; `current` keeps, per depth, the map over the most languages."""
    frame = load_results(store, RESULT_TABLE, model)
    return widest_units(frame) if current else frame
