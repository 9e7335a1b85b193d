"""How many languages each analysis in a report used, for the header and the provenance section.

The languages table counts what was *stored*; an analysis may use fewer (a language without speech
has no cross-modal score). A header that says "36 languages" over a grid of 35 misleads, so the
counts here are taken from the very frames the sections draw, per analysis, and a shortfall names
the languages left out.
"""

from __future__ import annotations

import html

import polars as pl

from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL
from actstore.reports.inputs import ReportInputs


def _langs(frame: pl.DataFrame | None, *columns: str) -> set[str]:
    if frame is None or frame.height == 0:
        return set()
    return set().union(*(set(frame[c].drop_nulls().cast(pl.Utf8).to_list()) for c in columns))


def analysis_languages(inputs: ReportInputs) -> dict[str, set[str]]:
    """Analysis label -> the languages its rows cover (only analyses that have rows)."""
    out: dict[str, set[str]] = {}
    sim = inputs.similarity
    if sim is not None and inputs.measure in set(sim["measure"].to_list()):
        sim = sim.filter(pl.col("measure") == inputs.measure)
    if sim is not None:
        out["cross-modal"] = _langs(sim.filter(pl.col("kind") == CROSS_MODAL), "lang_a")
        for kind in CROSS_LINGUAL_KINDS:
            out[f"cross-lingual {kind}"] = _langs(sim.filter(pl.col("kind") == kind), "lang_a", "lang_b")
    out["retrieval"] = _langs(inputs.retrieval, "lang_a", "lang_b")
    out["t-SNE"] = _langs(inputs.tsne, "lang")
    top = inputs.neurons_top
    out["neurons"] = _langs(None if top is None else top.filter(pl.col("target_kind") == "language"), "target")
    return {k: v for k, v in out.items() if v}


def _sides(inputs: ReportInputs) -> dict[str, str]:
    """For speech-text, "35 as speech, 36 as text" when its two sides cover different languages."""
    sim = inputs.similarity
    out = {}
    for kind, (ma, mb) in CROSS_LINGUAL_KINDS.items():
        if sim is None or ma == mb:
            continue
        rows = sim.filter(pl.col("kind") == kind)
        a, b = _langs(rows, "lang_a"), _langs(rows, "lang_b")
        if a != b:
            out[f"cross-lingual {kind}"] = f"{len(a)} as {ma}, {len(b)} as {mb}"
    return out


def stored_languages(inputs: ReportInputs) -> dict[str, set[str]]:
    """'stored' (every language of the languages table) and per modality, from the provenance."""
    table = inputs.provenance.get("languages")
    if table is None or table.height == 0:
        return {}
    out = {"stored": set(table["lang"].cast(pl.Utf8).to_list())}
    for modality in ("text", "speech"):
        column = f"n_{modality}"
        out[f"{modality} stored"] = set(table.filter(pl.col(column) > 0)["lang"].cast(pl.Utf8).to_list())
    return out


def counts_html(inputs: ReportInputs) -> str:
    """One line: languages stored (per modality) and used by each analysis, shortfalls named."""
    stored = stored_languages(inputs)
    every = stored.get("stored", set())
    parts = [f"{len(v)} {k}" if k != "stored" else f"{len(v)} languages stored" for k, v in stored.items()]
    sides = _sides(inputs)
    for label, langs in analysis_languages(inputs).items():
        left_out = sorted(every - langs)
        notes = [f"not {', '.join(left_out)}"] if left_out and len(left_out) <= 6 else []
        if label in sides:
            notes.append(sides[label])
        parts.append(f"{label}: {len(langs)}" + (f" ({'; '.join(notes)})" if notes else ""))
    text = " · ".join(parts)
    return f'<p class="counts" data-role="language-counts">Languages: {html.escape(text)}</p>' if parts else ""
