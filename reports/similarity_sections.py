"""Report sections 2 and 3: cross-modal and cross-lingual similarity per depth.

Both read the stored `forced` column (canonical correlations that are 1 by construction, counted
by the analysis from the rank of the centred rows) and explain it where it is non-zero; the means
they draw are `actstore.grid_means`', the same numbers the terminal and the comparison show.
"""

from __future__ import annotations

import html

import polars as pl

from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL
from actstore.reports import charts
from actstore.reports.explain import (
    BASELINE, FORCED, KEPT, NULL, baseline_note, blank_cells_note, explain_html, measure_sentence,
)
from actstore.reports.section_parts import (
    Context, Figure, Section, by_language, missing, note_html, paragraph, single_language,
)
from actstore.reports.tables import html_table
from actstore.reports.summaries import (
    chart_columns, cross_lingual_means, cross_lingual_rows, cross_modal_rows, cross_modal_series,
    depth_order, language_order, largest_change, limit_depths, opening_depth, value_range,
)


def _forced_note(rows: pl.DataFrame, measure: str) -> str | None:
    """Caption note when scores include canonical correlations forced to 1 by construction.

    Those correlations are 1 whatever the data, so they inflate SVCCA and make PWCCA undefined;
    the reader needs to know before comparing numbers. The count is the stored `forced` column,
    as the analysis computed it (from the rank of the centred rows, which repeated rows lower);
    rows saved before that column existed carry no count and get no note.
    """
    if measure not in ("svcca", "pwcca"):
        return None
    rows = rows.filter(pl.col("measure") == measure)
    hit = rows.filter(pl.col("forced") > 0)
    if hit.height == 0:
        return None
    share = hit["forced"].cast(pl.Float64) / hit.select(pl.min_horizontal("kx", "ky")).to_series()
    text = (f"{hit.height} of {rows.height} {measure} scores here include canonical correlations that "
            f"are 1 by construction, not by the data: with n sentences spanning r <= n - 1 directions "
            f"once centred (fewer when sentences repeat) and kx, ky kept directions, at least "
            f"max(0, kx + ky - r) correlations are forced to 1 (here up to {int(hit['forced'].max())}, "
            f"{share.max():.0%} of a score's correlations), which inflates SVCCA")
    text += (" and leaves PWCCA undefined (blank cells)" if measure == "pwcca" else "")
    return text + "; read scores beside the random baseline and the null, and compare more sentences."


def _chosen_measure(ctx: Context, frame: pl.DataFrame) -> tuple[str, list[str]]:
    measures = sorted(frame["measure"].unique().to_list())
    wanted = ctx.inputs.measure
    if wanted in measures:
        return wanted, []
    return measures[0], [f"Measure {wanted!r} was not computed; showing {measures[0]!r}."]


def _measure_with_notes(ctx: Context, rows: pl.DataFrame, section: Section) -> str:
    """The measure a section draws, after adding its notes (measure fallback, forced correlations)."""
    measure, notes = _chosen_measure(ctx, rows)
    section.parts.extend(note_html(n) for n in notes)
    forced = _forced_note(rows, measure)
    if forced:
        section.parts.append(note_html(forced))
    return measure


def cross_modal_section(ctx: Context) -> Section:
    """Section 2: speech vs text of the same sentences per depth, overall/per resource level/per language."""
    section = Section("cross-modal", "Cross-modal similarity per depth")
    sim = ctx.inputs.similarity
    rows = None if sim is None else sim.filter(pl.col("kind") == CROSS_MODAL)
    if rows is None or rows.height == 0:
        section.parts.append(missing(ctx, "cross-modal similarity results", "cross-modal"))
        return section
    measure = _measure_with_notes(ctx, rows, section)
    depths = depth_order(rows)
    summary = ctx.add("cm_summary", cross_modal_series(rows))
    n_langs = rows["lang_a"].n_unique()
    sizes = sorted(set(rows["n"].to_list()))
    section.parts.append(Figure(
        "fig-cm-lines", "Mean over languages",
        f"Speech-vs-text similarity of the same sentences per depth, mean over {n_langs} languages "
        f"(black) and per resource level; dashed: random sets of the same shape and shuffled rows; "
        + ("band: mean per-language 95% interval of the mean score at n (half samples); " if rows["ci_low"].null_count() < rows.height else "")
        + f"n = {', '.join(map(str, sizes))} sentences per language.",
        charts.cross_modal_lines(depths, sorted(rows["measure"].unique().to_list()), measure),
        (summary,)))
    chosen = rows.filter(pl.col("measure") == measure)
    section.parts.append(explain_html(measure_sentence(measure), BASELINE, NULL, baseline_note(chosen) or ""))
    per_lang = ctx.add("cm_rows", cross_modal_rows(rows, measure))
    cm_langs = [l for l in ctx.langs if l in set(rows["lang_a"])]
    section.parts.append(Figure(
        "fig-cm-langs", "Per language",
        f"{measure}(speech, text) per language and depth; languages ordered by resource level; hover "
        f"for n, kept directions kx/ky, correlations forced to 1 by construction, random baseline "
        f"and shuffled null.",
        charts.cross_modal_heatmap(depths, cm_langs, measure, value_range(ctx.datasets[per_lang], "score")),
        (per_lang,)))
    section.parts.append(explain_html(KEPT, FORCED, blank_cells_note(
        chosen, "kind", [CROSS_MODAL], ctx.langs, ("lang_a",), depths, "rows") or ""))
    deepest = depths[-1]
    table = by_language(ctx, ctx.datasets[per_lang].filter(pl.col("depth") == deepest)
                         .drop("depth", "point_order"))
    section.parts.append(f"<h3>{html.escape(measure)} at depth {html.escape(deepest)}</h3>")
    section.parts.append(html_table(table, headers={"resource_level_a": "resource level"}))
    return section


def cross_lingual_section(ctx: Context) -> Section:
    """Section 3: language-pair grids per depth, their change between two depths, and per-depth means."""
    section = Section("cross-lingual", "Cross-lingual similarity")
    sim = ctx.inputs.similarity
    rows = None if sim is None else sim.filter(pl.col("kind").is_in(list(CROSS_LINGUAL_KINDS)))
    if rows is None or rows.height == 0:
        lang = single_language(ctx)
        if lang is not None:
            section.parts.append(paragraph(f"Empty by definition: cross-lingual similarity compares pairs of "
                                    f"languages, and model {html.escape(ctx.model)} has only one "
                                    f"({html.escape(lang)}) stored; ingest a second language to fill it.",
                                    "missing"))
        else:
            section.parts.append(missing(ctx, "cross-lingual similarity results", "cross-lingual"))
        return section
    measure = _measure_with_notes(ctx, rows, section)
    grid = cross_lingual_rows(rows, measure, ctx.langs)
    means = ctx.add("xl_means", cross_lingual_means(grid))
    grid, dropped = limit_depths(grid, ctx.limits.grid_rows)
    if dropped:
        section.parts.append(note_html(f"{len(dropped)} depths left out of the heatmaps to keep the "
                                   f"report small ({ctx.limits.grid_rows:,} cells at most): "
                                   f"{', '.join(dropped)}; the mean lines use every depth."))
    name = ctx.add("xl_rows", chart_columns(grid))
    depths = depth_order(grid)
    kinds = [k for k in CROSS_LINGUAL_KINDS if k in set(grid["kind"])]
    langs = language_order(None, grid, columns=("lang_a", "lang_b"))
    langs = [l for l in ctx.langs if l in set(langs)]
    start = opening_depth(grid, "kind", kinds)
    section.parts.append(Figure(
        "fig-xl-heatmaps", "Language-pair heatmaps",
        f"{measure} between the sets of two languages (rows: lang_a, columns: lang_b) at the chosen "
        f"depth (opening on {start}, the deepest depth every kind has), on the sentence ids both "
        f"share, every pair cut to the smallest intersection.",
        charts.cross_lingual_heatmaps(depths, langs, kinds, value_range(grid, "score"), start), (name,)))
    symmetric = [k for k in kinds if k != "speech-text"]
    section.parts.append(explain_html(
        measure_sentence(measure), KEPT, FORCED,
        f"{' and '.join(symmetric)} compare a pair in either order alike, so each pair is drawn once "
        "(the upper triangle is left blank)." if symmetric else "",
        blank_cells_note(grid, "kind", kinds, langs, ("lang_a", "lang_b"), depths) or ""))
    section.parts.append(Figure(
        "fig-xl-deltas", "Change between two depths",
        f"score(to depth) - score(from depth) per language pair; default from = {depths[0]}, "
        f"to = {start}; red = more similar at the later depth.",
        charts.cross_lingual_deltas(depths, langs, kinds, largest_change(grid), start), (name,)))
    section.parts.append(explain_html(
        "A pair is blank when either depth has no score for it; both depths must exist for the kind."))
    section.parts.append(Figure(
        "fig-xl-means", "Mean per depth",
        f"Mean {measure} per depth over language pairs, same-language pairs excluded; dashed: mean "
        f"shuffled-row null.",
        charts.cross_lingual_mean_lines(depth_order(ctx.datasets[means]), kinds), (means,)))
    section.parts.append(explain_html(NULL, "A line stops where its kind has no rows (a depth that "
                                            "exists for one modality only)."))
    return section
