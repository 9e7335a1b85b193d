"""The six sections of the report, in page order, and the build of all of them.

Sections 2 and 3 (similarity) are in `similarity_sections`, the pieces every section is made of
(figures, notes, the context) in `section_parts`.
"""

from __future__ import annotations

import html

import altair as alt
import polars as pl

from actstore.reports import charts
from actstore.reports.counts import counts_html
from actstore.reports.lang_lines import FEW_LANGUAGES
from actstore.reports.neuron_study_sections import study_sections
from actstore.reports.explain import CHANCE, OVERLAP_K, blank_cells_note, explain_html
from actstore.reports.pooling import with_pooling
from actstore.reports.inputs import ReportInputs
from actstore.reports.section_parts import (
    FILL_COMMANDS, RANDOM_INIT_BANNER, Context, Figure, Limits, Section, by_language, missing, modalities, note_html, paragraph,
    single_language,
)
from actstore.reports.similarity_sections import cross_lingual_section, cross_modal_section
from actstore.reports.summaries import (
    best_language_neuron, chart_columns, depth_order, language_order, limit_depths, opening_depth,
    retrieval_rows, retrieval_table, rounded, tsne_sample,
)
from actstore.reports.tables import html_table

__all__ = ["FILL_COMMANDS", "Figure", "Limits", "Section", "build_sections"]

RETRIEVAL_PANEL_ORDER = ("speech→text", "text→speech", "speech→speech", "text→text")


def provenance_section(ctx: Context) -> Section:
    """Section 1: what was measured (model, store version, runs, languages), warning on random init."""
    prov = ctx.inputs.provenance
    section = Section("provenance", "Provenance")
    if prov.get("random_init"):
        section.parts.append(RANDOM_INIT_BANNER)
    facts = pl.DataFrame({
        "field": ["model", "random init", "store", "store version", "schema version"],
        "value": [str(prov["model"]), str(bool(prov["random_init"])).lower(), str(prov["store_uri"]),
                  str(prov["store_version"]), str(prov["schema_version"])],
    })
    section.parts.append(html_table(facts))
    runs = prov.get("runs")
    section.parts.append("<h3>Runs</h3>")
    if runs is None or runs.height == 0:
        section.parts.append(missing(ctx, "ingest runs", "runs"))
    else:
        runs = with_pooling(runs)
        wanted = [c for c in ("run_id", "source", "status", "started_at", "ended_at", "n_rows", "points",
                              "pooling options", "dtype", "device", "package_version") if c in runs.columns]
        section.parts.append(html_table(runs.select(wanted).sort("started_at")))
    languages = prov.get("languages")
    section.parts.append("<h3>Languages</h3>")
    section.parts.append(counts_html(ctx.inputs))
    if languages is None or languages.height == 0:
        section.parts.append(missing(ctx, "languages", "runs"))
    else:
        wanted = [c for c in ("lang", "name", "resource_level", "script", "family", "n_speech", "n_text")
                  if c in languages.columns]
        table = by_language(ctx, languages.select(wanted))
        section.parts.append(html_table(table, headers={"n_speech": "speech items",
                                                        "n_text": "text items"}))
    return section


def _diagonal_note(rows: pl.DataFrame) -> str:
    """Why the diagonal of a same-modality panel is blank (when it is)."""
    same = [p for p in set(rows["panel"]) if p.split("→")[0] == p.split("→")[-1]]
    own = rows.filter(pl.col("panel").is_in(same) & (pl.col("query") == pl.col("target")))
    if not same or own.height:
        return ""
    return (f"The diagonal of {' and '.join(sorted(same))} is blank: a language against its own set "
            "would find each sentence itself, so only other languages are searched.")


def retrieval_section(ctx: Context) -> Section:
    """Section 4: nearest-neighbour retrieval grids and a per-language P@1 table."""
    section = Section("retrieval", "Retrieval")
    ret = ctx.inputs.retrieval
    if ret is None:
        section.parts.append(missing(ctx, "retrieval results", "retrieval"))
        return section
    rows = retrieval_rows(ret)
    panels = [p for p in RETRIEVAL_PANEL_ORDER if p in set(rows["panel"])]
    panels += sorted(set(rows["panel"]) - set(panels))
    start = opening_depth(rows, "panel", panels)
    deepest, table = retrieval_table(rows, start)
    rows, dropped = limit_depths(rows, ctx.limits.grid_rows)
    if dropped:
        section.parts.append(note_html(f"{len(dropped)} depths left out to keep the report small: "
                                   f"{', '.join(dropped)}."))
    name = ctx.add("ret_rows", chart_columns(rows))
    langs = [l for l in ctx.langs if l in set(rows["query"]) | set(rows["target"])]
    sizes = sorted(set(rows["n"].to_list()))
    chance = ", ".join(f"1/{n} = {1 / n:.3f}" for n in sizes[:4] if n)
    section.parts.append(Figure(
        "fig-ret-heatmaps", "Query language x target language",
        "Nearest neighbour by cosine among the target side's vectors: P@1, recall@k or 1 - xsim "
        f"error (ratio margin, k = 4) per query/target language at the chosen depth (opening on "
        f"{start}, the deepest depth every panel has). Chance P@1 = {chance}.",
        charts.retrieval_heatmaps(depth_order(rows), langs, panels, start), (name,)))
    section.parts.append(explain_html(
        CHANCE, "xsim error: the share of queries whose true translation does not have the best "
                "margin score; 1 - xsim error is drawn so that higher is better everywhere.",
        _diagonal_note(rows), blank_cells_note(rows, "panel", panels, langs, ("query", "target"),
                                               depth_order(rows)) or ""))
    section.parts.append(f"<h3>P@1 per query language at depth {html.escape(deepest)}</h3>")
    section.parts.append(paragraph(f"Chance P@1 here: {html.escape(chance)} (1/n, n target sentences).", "note"))
    section.parts.append(html_table(by_language(ctx, rounded(table))))
    return section


def tsne_section(ctx: Context) -> Section:
    """Section 5: t-SNE maps per depth (subsampled to the size limit), coloured by language or modality."""
    section = Section("tsne", "t-SNE of speech and text vectors")
    tsne = ctx.inputs.tsne
    if tsne is None:
        section.parts.append(missing(ctx, "t-SNE results", "tsne"))
        return section
    points, texts, note = tsne_sample(tsne, ctx.limits.tsne_points_per_depth)
    if note:
        section.parts.append(note_html(note))
    depths = depth_order(points)
    kl = (tsne.group_by("depth").agg(pl.col("kl_divergence").first())
          .join(pl.DataFrame({"depth": depths, "o": list(range(len(depths)))}), on="depth").sort("o"))
    kl_text = ", ".join(f"{d} {v:.2f}" for d, v, _ in kl.iter_rows() if v is not None)
    langs = [l for l in ctx.langs if l in set(texts["lang"])]
    section.parts.append(Figure(
        "fig-tsne", "t-SNE per depth",
        f"Speech and text vectors of one depth embedded together by t-SNE (triangles: speech, "
        f"circles: text); hover for sentence id and text; click a legend entry to show only that "
        f"language or modality (shift-click for several, double-click to reset); final KL divergence: "
        f"{kl_text}.",
        charts.tsne_scatter(depths, langs, opening_depth(
            points.join(texts.select("key", "modality"), on="key"), "modality", ["speech", "text"])),
        (ctx.add("tsne_points", chart_columns(points)), ctx.add("tsne_texts", texts))))
    return section


def _levels(ctx: Context, langs: list[str]) -> tuple[str, list[str]] | None:
    """The lang -> resource level dataset a many-language line chart looks colours up in, and the
    levels it holds; None for few languages (each line then keeps its own colour)."""
    if len(langs) <= FEW_LANGUAGES:
        return None
    if "lang_levels" not in ctx.datasets:
        table = ctx.inputs.provenance.get("languages")
        known = {} if table is None else dict(table.select("lang", "resource_level").iter_rows())
        ctx.add("lang_levels", pl.DataFrame({"lang": ctx.langs, "level": [known.get(l) or "" for l in ctx.langs]},
                                            schema={"lang": pl.Utf8, "level": pl.Utf8}))
    return "lang_levels", sorted(set(ctx.datasets["lang_levels"]["level"].to_list()))


def _named(chart: str, levels: tuple[str, list[str]] | None) -> tuple[str, str, list[str]] | None:
    return None if levels is None else (chart, *levels)


def _level_data(levels: tuple[str, list[str]] | None) -> tuple[str, ...]:
    return () if levels is None else (levels[0],)


def neurons_section(ctx: Context) -> Section:
    """Section 6: selective dimensions, speech/text overlap of top-k, activation concentration."""
    section = Section("neurons", "Neuron-level summaries")
    top, overlap, conc = ctx.inputs.neurons_top, ctx.inputs.neurons_overlap, ctx.inputs.concentration
    depth_frames = [f for f in (top, conc) if f is not None]
    section.parts.append("<h3>Most selective dimensions</h3>")
    if top is None and single_language(ctx) is not None:
        section.parts.append(paragraph(f"Empty by definition: selective dimensions separate one language from "
                                f"the others, and model {html.escape(ctx.model)} has only one "
                                f"({html.escape(single_language(ctx))}) stored; ingest a second language "
                                "to fill this section.", "missing"))
    elif top is None:
        section.parts.append(missing(ctx, "neuron rankings", "neurons"))
    else:
        max_rank = min(ctx.limits.neuron_ranks, int(top["rank"].max()))
        shown = top.filter(pl.col("rank") <= max_rank).select(
            "depth", "point_order", "target_kind", "target", "modality", "dim", "ap", "rank")
        langs = [l for l in ctx.langs if l in set(shown["target"])]
        others = sorted(set(shown["target"]) - set(langs))
        depths = depth_order(shown)
        section.parts.append(Figure(
            "fig-neu-top", "Top dimensions per target",
            f"The {max_rank} dimensions whose activation best separates a language (or modality) "
            f"from the rest, by average precision (AP; chance = the target's share of vectors, e.g. "
            f"1/{max(len(langs), 1)} for a language); cell text = dimension index.",
            charts.neuron_top_heatmap(depths, [*langs, *others], max_rank, (
                min(0.5, float(shown["ap"].min())), 1.0),
                opening_depth(shown, "modality", modalities(shown))),
            (ctx.add("neu_top", chart_columns(shown, ("point_order", "target_kind"))),)))
        section.parts.append(Figure(
            "fig-neu-best", "Best dimension per language",
            "AP of each language's most selective dimension per depth (solid: speech vectors, "
            "dashed: text, dotted: both).",
            charts.lines_by_lang(alt.Chart(alt.Data(name="neu_best")), depths, langs, "ap:Q", "best AP",
                                 modalities=modalities(top.filter(pl.col("target_kind") == "language")),
                                 levels=_named("neu_best", _levels(ctx, langs))),
            (ctx.add("neu_best", best_language_neuron(top).rename({"target": "lang"})),
             *_level_data(_levels(ctx, langs)))))
    section.parts.append("<h3>Speech/text overlap of top-k dimensions</h3>")
    if overlap is None:
        section.parts.append(missing(ctx, "neuron overlap results", "neurons"))
    else:
        depths = depth_order(*depth_frames)
        depths = [d for d in depths if d in set(overlap["depth"])]
        depths += sorted(set(overlap["depth"]) - set(depths))
        ks = sorted(int(k) for k in overlap["k"].unique())
        langs = [l for l in ctx.langs if l in set(overlap["lang"])]
        section.parts.append(Figure(
            "fig-neu-overlap", "Overlap",
            "Fraction of a language's top-k dimensions for speech that are also in its top-k for "
            "text, per depth (1 = the same dimensions mark the language in both modalities).",
            charts.neuron_overlap_lines(depths, langs, ks, _levels(ctx, langs)),
            (ctx.add("neu_overlap", overlap.select("depth", "lang", "k", "shared")),
             *_level_data(_levels(ctx, langs)))))
        section.parts.append(explain_html(OVERLAP_K))
    section.parts.append("<h3>Activation concentration</h3>")
    if conc is None:
        section.parts.append(missing(ctx, "concentration results", "neurons"))
    else:
        langs = [l for l in ctx.langs if l in set(conc["lang"])]
        section.parts.append(Figure(
            "fig-neu-gini", "Gini concentration",
            "Gini coefficient of mean |activation| over dimensions per language and modality "
            "(solid: speech, dashed: text); 0 = spread evenly, 1 = one dimension carries all.",
            charts.lines_by_lang(alt.Chart(alt.Data(name="neu_gini")), depth_order(conc), langs, "gini:Q", "Gini",
                                 modalities=modalities(conc), levels=_named("neu_gini", _levels(ctx, langs))),
            (ctx.add("neu_gini", conc.select("depth", "point_order", "lang", "modality", "gini")),
             *_level_data(_levels(ctx, langs)))))
    return section


SECTION_BUILDERS = (provenance_section, cross_modal_section, cross_lingual_section, retrieval_section,
                    tsne_section, neurons_section)


def build_sections(inputs: ReportInputs, limits: Limits) -> tuple[list[Section], dict[str, pl.DataFrame]]:
    """Build every section in page order; returns them with the page's datasets."""
    prov = inputs.provenance
    frames = (inputs.similarity, inputs.retrieval, inputs.tsne, inputs.neurons_overlap, inputs.concentration)
    langs = language_order(prov.get("languages"), *frames)
    if inputs.neurons_top is not None:
        lang_targets = inputs.neurons_top.filter(pl.col("target_kind") == "language")
        langs = language_order(prov.get("languages"), *frames, lang_targets, columns=("lang", "lang_a",
                                                                                       "lang_b", "target"))
    ctx = Context(inputs, limits, langs)
    sections = [build(ctx) for build in SECTION_BUILDERS]
    sections += study_sections(ctx)  # only where the neuron study's results are stored
    return sections, ctx.datasets
