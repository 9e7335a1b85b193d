"""Language recovery: a cross-validated linear probe predicting the source language per point.

The study asks whether the decoder can still tell which language it is decoding from what the
encoder handed it, speech-conditioned versus text-conditioned. Here any stored point (decoder
`decoder.L{i}`, encoders `speech.L{i}`/`text.L{i}`, or a neuron site) is probed, separately for
each modality of its rows: for a decoder point that modality is the conditioning.

Probe: standardise, then scikit-learn LogisticRegression (L2, C=1, lbfgs), fitted on k-1 folds
and scored on the held-out fold; StratifiedKFold(shuffle, seeded), so every row is predicted once
by a probe that never saw it (scaling included: it sits in the pipeline).

Reported per (point, modality): accuracy = correct / n over all held-out predictions; a 95%
Wilson interval on that proportion (binomial over items: it treats the n predictions as
independent, which folds only approximately give, so it is a little narrow); the mean and
standard deviation of the per-fold accuracies beside it; chance = the majority class share (1/k
for balanced classes), the accuracy of always answering the commonest language.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Sequence

import numpy as np
import polars as pl

from actstore.errors import AnalysisInputError
from actstore.schema import LANGUAGE_PROBE_TABLE
from actstore.store import Store
from actstore.analyses.aligned import choose_corpus, language_levels, stored_modalities
from actstore.analyses.results import lang_set, load_results, save_results, stamp
from actstore.analyses.site_data import is_site

log = logging.getLogger("actstore.analyses")
TABLE = LANGUAGE_PROBE_TABLE
KEY = ("model", "depth", "modality", "langs", "corpus", "folds", "seed", "c")


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion correct / n."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def probe_accuracy(x: np.ndarray, labels: Sequence[object], *, folds: int = 5, seed: int = 0,
                   c: float = 1.0, max_iter: int = 1000) -> dict[str, float]:
    """Cross-validated accuracy of a linear probe of `labels` from `x` (n, d), with chance and interval."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels).astype(str)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise AnalysisInputError(f"The probe needs at least two languages; only {classes.tolist()} has rows: "
                                 "pass more --langs.")
    if counts.min() < folds:
        raise AnalysisInputError(f"Language {classes[counts.argmin()]} has {counts.min()} rows, fewer than the "
                                 f"{folds} folds; pass --folds {max(2, int(counts.min()))} or ingest more sentences.")
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    correct, per_fold = 0, []
    for train, test in split.split(x, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
        model.fit(x[train], y[train])
        hits = int((model.predict(x[test]) == y[test]).sum())
        correct += hits
        per_fold.append(hits / test.size)
    n = y.size
    lo, hi = wilson(correct, n)
    return {"accuracy": correct / n, "ci_lo": lo, "ci_hi": hi, "fold_mean": float(np.mean(per_fold)),
            "fold_sd": float(np.std(per_fold, ddof=1)), "chance": float(counts.max() / n),
            "n": int(n), "n_classes": int(classes.size)}


def _points(store: Store, model: str, wanted: Sequence[str] | None) -> list[tuple[str, int | None]]:
    pts = store.require_model(model).select("point", "layer").unique().sort("layer", "point", nulls_last=True)
    rows = list(pts.iter_rows())
    if not wanted:
        return [(p, layer) for p, layer in rows if not is_site(p)]
    def match(point: str, pattern: str) -> bool:  # `decoder.L*` names states, `decoder.L*.ffn` sites
        return fnmatch.fnmatchcase(point, pattern) and point.count(".") == pattern.count(".")

    unknown = [w for w in wanted if not any(match(p, w) for p, _ in rows)]
    if unknown:
        raise AnalysisInputError(f"Point(s) {', '.join(unknown)} are not stored for model {model!r}; stored: "
                                 f"{', '.join(p for p, _ in rows[:12])}{' ...' if len(rows) > 12 else ''}.")
    return [(p, layer) for p, layer in rows if any(match(p, w) for w in wanted)]


def language_probe(store: Store, model: str, *, points: Sequence[str] | None = None,
                   langs: Sequence[str] | None = None, folds: int = 5, seed: int = 0, c: float = 1.0,
                   corpus: str | None = None, progress=None) -> pl.DataFrame:
    """Probe accuracy per (point, modality) of `model` (not yet saved).

    points: names or globs (`decoder.L*`; a glob matches names with as many dots, so `decoder.L*`
    names the decoder states and `decoder.L*.ffn` its FFN sites); None: every hidden-state point
    (sites are many and wide: name them to probe them). Every stored row of the corpus is one item (all recordings).
    """
    stored_modalities(store, model)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise AnalysisInputError(f"folds={folds!r} must be an integer of at least 2.")
    lang_list = list(language_levels(store, model, langs))
    if len(lang_list) < 2:
        raise AnalysisInputError(f"The probe needs at least two languages; only {lang_list} is selected: "
                                 "pass more --langs.")
    rows, corpus_used = [], corpus
    for point, layer in _points(store, model, points):
        sl = store.read(model, points=point, langs=lang_list, columns=["lang", "modality", "corpus"])
        corpus_used = choose_corpus(sl.meta, model, corpus_used) if sl.meta.height else corpus_used
        keep = (sl.meta["corpus"] == corpus_used).to_numpy()
        meta, x = sl.meta.filter(pl.Series(keep)), sl.vectors[keep]
        for modality in sorted(set(meta["modality"].to_list())):
            mask = (meta["modality"] == modality).to_numpy()
            labels = meta["lang"].to_numpy()[mask]
            if np.unique(labels).size < 2:
                log.info("probe: %s %s holds one language; skipped", point, modality)
                continue
            stats = probe_accuracy(x[mask], labels, folds=folds, seed=seed, c=c)
            rows.append({"depth": point, "layer": layer, "modality": modality, **stats})
        if progress is not None:
            progress(1)
    if not rows:
        raise AnalysisInputError(f"No point of model {model!r} holds two languages in one modality; "
                                 "the probe has nothing to tell apart.")
    frame = pl.DataFrame(rows).with_columns(
        pl.lit(lang_set(lang_list)).alias("langs"), pl.lit(corpus_used, pl.String).alias("corpus"),
        pl.lit(folds).alias("folds"), pl.lit(seed).alias("seed"), pl.lit(c).alias("c"))
    return stamp(frame, store, model)


def save_probe(store: Store, frame: pl.DataFrame) -> None:
    save_results(store, TABLE, frame, key=KEY)


def load_probe(store: Store, model: str) -> pl.DataFrame | None:
    return load_results(store, TABLE, model)
