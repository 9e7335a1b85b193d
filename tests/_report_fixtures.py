"""Synthetic analysis frames with the exact columns the analyses produce (6 languages, 4 depths).

Scores follow simple formulas so tests can check the report's numbers against known answers:
- cross-modal score(lang i, depth d) = 0.5 + 0.1 d + 0.01 i (baseline 0.3, null 0.2 + 0.01 d);
- cross-lingual score(kind, i, j, d) = 0.3 + d (0.05 + 0.01 i) + 0.01 j + KIND_OFFSET[kind];
- retrieval p_at_1(query i, target j, d) = 0.2 + 0.2 d - 0.01 |i - j| (1.0 when i == j at the last
  depth), xsim_error = 1 - p_at_1.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from actstore.reports import ReportInputs

MODEL = "toy/seamless-tiny"
LANGS = ("eng", "fra", "hin", "swh", "khm", "yor")
LEVELS = ("high", "high", "medium", "medium", "low", "low")
NAMES = ("English", "French", "Hindi", "Swahili", "Khmer", "Yoruba")
DEPTHS = ("embed", "L4", "L12", "L24")
KIND_OFFSET = {"speech-speech": 0.0, "text-text": 0.05, "speech-text": -0.05}
N_SENT = 194


def provenance(random_init: bool = True) -> dict:
    runs = pl.DataFrame({
        "run_id": ["r-001", "r-002"], "model": [MODEL, MODEL], "source": ["flores+espeak", "flores"],
        "started_at": [datetime(2026, 1, 5, 10, 0), datetime(2026, 1, 5, 11, 0)],
        "ended_at": [datetime(2026, 1, 5, 10, 30), datetime(2026, 1, 5, 11, 5)],
        "status": ["complete", "complete"], "n_rows": [12_000, 6_000],
        "points": [["speech.embed", "speech.L4", "speech.L12", "speech.L24"],
                   ["text.embed", "text.L4", "text.L12", "text.L24"]],
        "dtype": ["float32", "float32"], "device": ["cpu", "cpu"], "package_version": ["0.1.0", "0.1.0"],
    })
    languages = pl.DataFrame({
        "lang": list(LANGS), "name": list(NAMES), "resource_level": list(LEVELS),
        "script": ["Latn", "Latn", "Deva", "Latn", "Khmr", "Latn"],
        "family": ["Indo-European", "Indo-European", "Indo-European", "Niger-Congo", "Austroasiatic",
                   "Niger-Congo"],
        "n_speech": [251] * 6, "n_text": [251] * 6,
    })
    return {"model": MODEL, "random_init": random_init, "store_uri": "/tmp/actstore.lance",
            "store_version": 7, "schema_version": 1, "runs": runs, "languages": languages}


def cross_modal_score(i: int, d: int) -> float:
    return 0.5 + 0.1 * d + 0.01 * i


def cross_lingual_score(kind: str, i: int, j: int, d: int) -> float:
    return 0.3 + d * (0.05 + 0.01 * i) + 0.01 * j + KIND_OFFSET[kind]


def retrieval_p1(i: int, j: int, d: int) -> float:
    if i == j and d == len(DEPTHS) - 1:
        return 1.0
    return 0.2 + 0.2 * d - 0.01 * abs(i - j)


def similarity(measures: tuple[str, ...] = ("svcca", "cka"), with_ci: bool = True) -> pl.DataFrame:
    rows = []
    for m_index, measure in enumerate(measures):
        for d, depth in enumerate(DEPTHS):
            for i, lang in enumerate(LANGS):
                score = cross_modal_score(i, d) - 0.1 * m_index
                rows.append(dict(
                    model=MODEL, measure=measure, kind="cross-modal", point=depth, layer=None if d == 0 else d,
                    depth=depth, point_order=d, lang_a=lang, lang_b=lang, modality_a="speech",
                    modality_b="text", resource_level_a=LEVELS[i], n=251, kx=40 + d, ky=38 + d, forced=0,
                    score=score, baseline=0.3, null=0.2 + 0.01 * d,
                    ci_low=score - 0.02 if with_ci else None, ci_high=score + 0.02 if with_ci else None))
                for kind in KIND_OFFSET:
                    ma, mb = kind.split("-")
                    for j, other in enumerate(LANGS):
                        if kind != "speech-text" and j >= i:
                            continue  # symmetric kinds: lower triangle only, as the analysis stores them
                        rows.append(dict(
                            model=MODEL, measure=measure, kind=kind, point=depth, layer=None if d == 0 else d,
                            depth=depth, point_order=d, lang_a=lang, lang_b=other, modality_a=ma,
                            modality_b=mb, resource_level_a=LEVELS[i], n=194, kx=30, ky=31, forced=0,
                            score=cross_lingual_score(kind, i, j, d) - 0.1 * m_index, baseline=0.25,
                            null=0.15, ci_low=None, ci_high=None))
    return pl.DataFrame(rows, schema_overrides={"layer": pl.Int64, "forced": pl.Int32, "ci_low": pl.Float64, "ci_high": pl.Float64})


def retrieval() -> pl.DataFrame:
    rows = []
    for d, depth in enumerate(DEPTHS):
        for kind in ("speech-text", "speech-speech", "text-text"):
            for i, lang in enumerate(LANGS):
                for j, other in enumerate(LANGS):
                    if kind != "speech-text" and j >= i:
                        continue
                    for direction in ("a->b", "b->a"):
                        q, t = (i, j) if direction == "a->b" else (j, i)
                        p1 = retrieval_p1(q, t, d)
                        rows.append(dict(
                            model=MODEL, point=depth, depth=depth, point_order=d, kind=kind, lang_a=lang,
                            lang_b=other, direction=direction, n=194, p_at_1=p1,
                            recall_at_5=min(1.0, p1 + 0.1), recall_at_10=min(1.0, p1 + 0.15),
                            xsim_error=1.0 - p1))
    return pl.DataFrame(rows)


def tsne(n_sentences: int = 20, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d, depth in enumerate(DEPTHS):
        for i, lang in enumerate(LANGS):
            for modality in ("speech", "text"):
                centre = np.array([np.cos(i), np.sin(i)]) * 30 * (1 - d / 4) + (
                    (8.0 if modality == "speech" else -8.0) * (1 - d / 4))
                xy = centre + rng.normal(0, 3, size=(n_sentences, 2))
                for s in range(n_sentences):
                    rows.append(dict(
                        model=MODEL, depth=depth, point_order=d, modality=modality, lang=lang,
                        sentence_id=1000 + s, x=float(xy[s, 0]), y=float(xy[s, 1]),
                        text=f"{NAMES[i]} sentence {s} <b>&amp; 'quoted'</b> ✓", kl_divergence=1.5 - 0.1 * d))
    return pl.DataFrame(rows)


def neurons_top(n_ranks: int = 12) -> pl.DataFrame:
    rows = []
    for d, depth in enumerate(DEPTHS):
        targets = [("language", lang, m) for lang in LANGS for m in ("speech", "text", "all")]
        targets += [("modality", "speech", "all"), ("modality", "text", "all")]
        for t, (target_kind, target, modality) in enumerate(targets):
            for rank in range(1, n_ranks + 1):
                rows.append(dict(
                    model=MODEL, depth=depth, point_order=d, target_kind=target_kind, target=target,
                    modality=modality, dim=(37 * t + 11 * rank + d) % 1024,
                    ap=round(max(0.5, 0.99 - 0.02 * rank - 0.02 * d * (1 + t % 7) / 3), 4), rank=rank))
    return pl.DataFrame(rows)


def neurons_overlap() -> pl.DataFrame:
    rows = [dict(model=MODEL, depth=depth, lang=lang, k=k, shared=round(k * min(1.0, 0.1 + 0.15 * d + 0.05 * i)))
            for d, depth in enumerate(DEPTHS) for i, lang in enumerate(LANGS) for k in (10, 100)]
    return pl.DataFrame(rows)


def concentration() -> pl.DataFrame:
    rows = [dict(model=MODEL, depth=depth, point_order=d, lang=lang, modality=m,
                 gini=0.3 + 0.05 * d + 0.01 * i + (0.05 if m == "speech" else 0.0))
            for d, depth in enumerate(DEPTHS) for i, lang in enumerate(LANGS) for m in ("speech", "text")]
    return pl.DataFrame(rows)


def full_inputs(random_init: bool = True, tsne_sentences: int = 20) -> ReportInputs:
    return ReportInputs(
        provenance=provenance(random_init), similarity=similarity(), retrieval=retrieval(),
        tsne=tsne(tsne_sentences), neurons_top=neurons_top(), neurons_overlap=neurons_overlap(),
        concentration=concentration(),
    )
