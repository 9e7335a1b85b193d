"""The six sections of the report: each turns its frames into HTML parts, figures and datasets.

A section never fails for lack of data: a missing or empty frame becomes a sentence naming the
command that fills it. Figures name the datasets they draw; `Context.datasets` collects each
dataset once for the whole page.
"""

from __future__ import annotations

import html
import shlex
from dataclasses import dataclass, field

import altair as alt
import polars as pl

from actstore.reports import charts
from actstore.reports.inputs import ReportInputs
from actstore.reports.summaries import (
    CROSS_LINGUAL_KINDS, best_language_neuron, cross_lingual_means, cross_lingual_rows,
    cross_modal_rows, cross_modal_summary, depth_order, language_order, largest_change, limit_depths,
    chart_columns, retrieval_rows, retrieval_table, rounded, tsne_sample, value_range,
)
from actstore.reports.tables import html_table

#: The command that produces each analysis frame (shown when a section has nothing to draw).
FILL_COMMANDS = {
    "cross-modal": "actstore analyze similarity --model {model} --kind cross-modal --measure {measure}",
    "cross-lingual": "actstore analyze similarity --model {model} --kind cross-lingual --measure {measure}",
    "retrieval": "actstore analyze retrieval --model {model}",
    "tsne": "actstore analyze tsne --model {model}",
    "neurons": "actstore analyze neurons --model {model}",
    "runs": "actstore ingest --model {model}",
}
RETRIEVAL_PANEL_ORDER = ("speech→text", "text→speech", "speech→speech", "text→text")


@dataclass(frozen=True)
class Limits:
    """Size limits that keep the HTML small (a few MB at most); beyond them the report subsamples
    and says so in a note."""

    tsne_points_per_depth: int = 5000
    grid_rows: int = 40_000
    neuron_ranks: int = 10


@dataclass
class Figure:
    """One chart: its div id, a one-line caption and the named datasets its spec reads."""

    id: str
    title: str
    caption: str
    chart: alt.TopLevelMixin
    datasets: tuple[str, ...]


@dataclass
class Section:
    """A titled part of the page: a list of HTML fragments (already escaped) and figures."""

    id: str
    title: str
    parts: list[str | Figure] = field(default_factory=list)


@dataclass
class Context:
    """Shared state while building: the model, the language colour order, limits, datasets."""

    inputs: ReportInputs
    limits: Limits
    langs: list[str]
    datasets: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.inputs.model

    def add(self, name: str, frame: pl.DataFrame) -> str:
        self.datasets[name] = rounded(frame)
        return name


def _p(text: str, cls: str | None = None) -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{text}</p>"


def missing(ctx: Context, what: str, command: str) -> str:
    """The sentence a section shows instead of charts: what is missing and the command to run."""
    cmd = FILL_COMMANDS[command].format(model=shlex.quote(ctx.model), measure=shlex.quote(ctx.inputs.measure))
    return _p(f"No {html.escape(what)} for model {html.escape(ctx.model)}: run "
              f"<code>{html.escape(cmd)}</code>.", "missing")


def _note(text: str) -> str:
    return _p(html.escape(text), "note")


def _single_language(ctx: Context) -> str | None:
    """The one stored language when the model has only one (comparisons across languages are then
    empty by definition, not missing), else None."""
    languages = ctx.inputs.provenance.get("languages")
    if languages is None or languages.height != 1:
        return None
    return str(languages["lang"][0])


def _forced_note(rows: pl.DataFrame, measure: str) -> str | None:
    """Caption note when scores include canonical correlations forced to 1 (kx + ky > n - 1).

    Those correlations are 1 whatever the data, so they inflate SVCCA and make PWCCA undefined;
    the reader needs to know before comparing numbers. Computed from kx, ky and n, so results
    saved before the `forced` column existed are explained too.
    """
    if not {"kx", "ky", "n"} <= set(rows.columns) or measure not in ("svcca", "pwcca"):
        return None
    rows = rows.filter(pl.col("measure") == measure) if "measure" in rows.columns else rows
    forced = (pl.col("kx") + pl.col("ky") - (pl.col("n") - 1)).clip(lower_bound=0)
    hit = rows.filter((pl.col("kx") >= 0) & (forced > 0)).with_columns(forced.alias("_f"))
    if hit.height == 0:
        return None
    share = hit["_f"].cast(pl.Float64) / hit.select(pl.min_horizontal("kx", "ky")).to_series()
    text = (f"{hit.height} of {rows.height} {measure} scores here include canonical correlations that "
            f"are 1 by construction, not by the data: with n sentences and kx, ky kept directions, at "
            f"least max(0, kx + ky - (n - 1)) correlations are forced to 1 (here up to {int(hit['_f'].max())}, "
            f"{share.max():.0%} of a score's correlations), which inflates SVCCA")
    text += (" and leaves PWCCA undefined (blank cells)" if measure == "pwcca" else "")
    return text + "; read scores beside the random baseline and the null, and compare more sentences."


def provenance_section(ctx: Context) -> Section:
    """Section 1: what was measured (model, store version, runs, languages), warning on random init."""
    prov = ctx.inputs.provenance
    section = Section("provenance", "Provenance")
    if prov.get("random_init"):
        section.parts.append('<div class="banner">RANDOM-INIT model: numbers are a pipeline check, '
                             "not findings.</div>")
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
        wanted = [c for c in ("run_id", "source", "status", "started_at", "ended_at", "n_rows", "points",
                              "dtype", "device", "package_version") if c in runs.columns]
        section.parts.append(html_table(runs.select(wanted).sort("started_at")))
    languages = prov.get("languages")
    section.parts.append("<h3>Languages</h3>")
    if languages is None or languages.height == 0:
        section.parts.append(missing(ctx, "languages", "runs"))
    else:
        wanted = [c for c in ("lang", "name", "resource_level", "script", "family", "n_speech", "n_text")
                  if c in languages.columns]
        table = _by_language(ctx, languages.select(wanted))
        section.parts.append(html_table(table, headers={"n_speech": "speech items",
                                                        "n_text": "text items"}))
    return section


def _chosen_measure(ctx: Context, frame: pl.DataFrame) -> tuple[str, list[str]]:
    measures = sorted(frame["measure"].unique().to_list())
    wanted = ctx.inputs.measure
    if wanted in measures:
        return wanted, []
    return measures[0], [f"Measure {wanted!r} was not computed; showing {measures[0]!r}."]


def cross_modal_section(ctx: Context) -> Section:
    """Section 2: speech vs text of the same sentences per depth, overall/per resource level/per language."""
    section = Section("cross-modal", "Cross-modal similarity per depth")
    sim = ctx.inputs.similarity
    rows = None if sim is None else sim.filter(pl.col("kind") == "cross-modal")
    if rows is None or rows.height == 0:
        section.parts.append(missing(ctx, "cross-modal similarity results", "cross-modal"))
        return section
    measure, notes = _chosen_measure(ctx, rows)
    section.parts.extend(_note(n) for n in notes)
    forced = _forced_note(rows, measure)
    if forced:
        section.parts.append(_note(forced))
    depths = depth_order(rows)
    summary = ctx.add("cm_summary", cross_modal_summary(rows))
    n_langs = rows["lang_a"].n_unique()
    sizes = sorted(set(rows["n"].to_list()))
    section.parts.append(Figure(
        "fig-cm-lines", "Mean over languages",
        f"Speech-vs-text similarity of the same sentences per depth, mean over {n_langs} languages "
        f"(black) and per resource level; dashed: random sets of the same shape and shuffled rows; "
        + ("band: mean per-language bootstrap interval; " if rows["ci_low"].null_count() < rows.height else "")
        + f"n = {', '.join(map(str, sizes))} sentences per language.",
        charts.cross_modal_lines(depths, sorted(rows["measure"].unique().to_list()), measure),
        (summary,)))
    per_lang = ctx.add("cm_rows", cross_modal_rows(rows, measure))
    section.parts.append(Figure(
        "fig-cm-langs", "Per language",
        f"{measure}(speech, text) per language and depth; languages ordered by resource level; hover "
        f"for n, kept directions kx/ky, correlations forced to 1 by construction, random baseline "
        f"and shuffled null.",
        charts.cross_modal_heatmap(depths, [l for l in ctx.langs if l in set(rows["lang_a"])], measure,
                                   value_range(ctx.datasets[per_lang], "score")),
        (per_lang,)))
    deepest = depths[-1]
    table = _by_language(ctx, ctx.datasets[per_lang].filter(pl.col("depth") == deepest)
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
        lang = _single_language(ctx)
        if lang is not None:
            section.parts.append(_p(f"Empty by definition: cross-lingual similarity compares pairs of "
                                    f"languages, and model {html.escape(ctx.model)} has only one "
                                    f"({html.escape(lang)}) stored; ingest a second language to fill it.",
                                    "missing"))
        else:
            section.parts.append(missing(ctx, "cross-lingual similarity results", "cross-lingual"))
        return section
    measure, notes = _chosen_measure(ctx, rows)
    section.parts.extend(_note(n) for n in notes)
    forced = _forced_note(rows, measure)
    if forced:
        section.parts.append(_note(forced))
    grid = cross_lingual_rows(rows, measure, ctx.langs)
    means = ctx.add("xl_means", cross_lingual_means(grid))
    grid, dropped = limit_depths(grid, ctx.limits.grid_rows)
    if dropped:
        section.parts.append(_note(f"{len(dropped)} depths left out of the heatmaps to keep the "
                                   f"report small ({ctx.limits.grid_rows:,} cells at most): "
                                   f"{', '.join(dropped)}; the mean lines use every depth."))
    name = ctx.add("xl_rows", chart_columns(grid))
    depths = depth_order(grid)
    kinds = [k for k in CROSS_LINGUAL_KINDS if k in set(grid["kind"])]
    langs = language_order(None, grid, columns=("lang_a", "lang_b"))
    langs = [l for l in ctx.langs if l in set(langs)]
    section.parts.append(Figure(
        "fig-xl-heatmaps", "Language-pair heatmaps",
        f"{measure} between the sets of two languages (rows: lang_a, columns: lang_b) at the chosen "
        f"depth, on the sentence ids both share, every pair cut to the smallest intersection.",
        charts.cross_lingual_heatmaps(depths, langs, kinds, value_range(grid, "score")), (name,)))
    section.parts.append(Figure(
        "fig-xl-deltas", "Change between two depths",
        f"score(to depth) - score(from depth) per language pair; default from = {depths[0]}, "
        f"to = {depths[-1]}; red = more similar at the later depth.",
        charts.cross_lingual_deltas(depths, langs, kinds, largest_change(grid)), (name,)))
    section.parts.append(Figure(
        "fig-xl-means", "Mean per depth",
        f"Mean {measure} per depth over language pairs, same-language pairs excluded; dashed: mean "
        f"shuffled-row null.",
        charts.cross_lingual_mean_lines(depth_order(ctx.datasets[means]), kinds), (means,)))
    return section


def retrieval_section(ctx: Context) -> Section:
    """Section 4: nearest-neighbour retrieval grids and a per-language P@1 table."""
    section = Section("retrieval", "Retrieval")
    ret = ctx.inputs.retrieval
    if ret is None:
        section.parts.append(missing(ctx, "retrieval results", "retrieval"))
        return section
    rows = retrieval_rows(ret)
    deepest, table = retrieval_table(rows)
    rows, dropped = limit_depths(rows, ctx.limits.grid_rows)
    if dropped:
        section.parts.append(_note(f"{len(dropped)} depths left out to keep the report small: "
                                   f"{', '.join(dropped)}."))
    name = ctx.add("ret_rows", chart_columns(rows))
    panels = [p for p in RETRIEVAL_PANEL_ORDER if p in set(rows["panel"])]
    panels += sorted(set(rows["panel"]) - set(panels))
    langs = [l for l in ctx.langs if l in set(rows["query"]) | set(rows["target"])]
    section.parts.append(Figure(
        "fig-ret-heatmaps", "Query language x target language",
        "Nearest neighbour by cosine among the target side's vectors: P@1, recall@k or 1 - xsim "
        "error (ratio margin, k = 4) per query/target language at the chosen depth.",
        charts.retrieval_heatmaps(depth_order(rows), langs, panels), (name,)))
    section.parts.append(f"<h3>P@1 per query language at depth {html.escape(deepest)}</h3>")
    section.parts.append(html_table(_by_language(ctx, rounded(table))))
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
        section.parts.append(_note(note))
    depths = depth_order(points)
    kl = (tsne.group_by("depth").agg(pl.col("kl_divergence").first())
          .join(pl.DataFrame({"depth": depths, "o": list(range(len(depths)))}), on="depth").sort("o"))
    kl_text = ", ".join(f"{d} {v:.2f}" for d, v, _ in kl.iter_rows() if v is not None)
    langs = [l for l in ctx.langs if l in set(texts["lang"])]
    section.parts.append(Figure(
        "fig-tsne", "t-SNE per depth",
        f"Speech and text vectors of one depth embedded together by t-SNE (triangles: speech, "
        f"circles: text); hover for sentence id and text; final KL divergence: {kl_text}.",
        charts.tsne_scatter(depths, langs),
        (ctx.add("tsne_points", chart_columns(points)), ctx.add("tsne_texts", texts))))
    return section


def _modalities(frame: pl.DataFrame) -> list[str]:
    present = set(frame["modality"].unique().to_list())
    return [m for m in ("speech", "text", "all") if m in present] + sorted(present - {"speech", "text", "all"})


def _by_language(ctx: Context, frame: pl.DataFrame, column: str = "lang") -> pl.DataFrame:
    """Rows in the page's language order (resource level, then code)."""
    order = {lang: i for i, lang in enumerate(ctx.langs)}
    return frame.sort(pl.col(column).replace_strict(order, default=len(order), return_dtype=pl.Int64))


def neurons_section(ctx: Context) -> Section:
    """Section 6: selective dimensions, speech/text overlap of top-k, activation concentration."""
    section = Section("neurons", "Neuron-level summaries")
    top, overlap, conc = ctx.inputs.neurons_top, ctx.inputs.neurons_overlap, ctx.inputs.concentration
    depth_frames = [f for f in (top, conc) if f is not None]
    section.parts.append("<h3>Most selective dimensions</h3>")
    if top is None and _single_language(ctx) is not None:
        section.parts.append(_p(f"Empty by definition: selective dimensions separate one language from "
                                f"the others, and model {html.escape(ctx.model)} has only one "
                                f"({html.escape(_single_language(ctx))}) stored; ingest a second language "
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
                min(0.5, float(shown["ap"].min())), 1.0)),
            (ctx.add("neu_top", chart_columns(shown, ("point_order", "target_kind"))),)))
        section.parts.append(Figure(
            "fig-neu-best", "Best dimension per language",
            "AP of each language's most selective dimension per depth (solid: speech vectors, "
            "dashed: text, dotted: both).",
            charts.lines_by_lang(alt.Chart(alt.Data(name="neu_best")), depths, langs, "ap:Q", "best AP",
                                 modalities=_modalities(top.filter(pl.col("target_kind") == "language"))),
            (ctx.add("neu_best", best_language_neuron(top).rename({"target": "lang"})),)))
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
            charts.neuron_overlap_lines(depths, langs, ks),
            (ctx.add("neu_overlap", overlap.select("depth", "lang", "k", "shared")),)))
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
                                 modalities=_modalities(conc)),
            (ctx.add("neu_gini", conc.select("depth", "point_order", "lang", "modality", "gini")),)))
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
    return sections, ctx.datasets
