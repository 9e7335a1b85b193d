"""The report's "published numbers beside ours" section (issue 17, item 4).

The rows come from `actstore.published.beside_ours`; this module only draws them. Three kinds of
model get three presentations, so a reader never takes a pipeline check for a reproduction:
- the study's own checkpoint with trained weights: published, ours and ours - published;
- random-init models: under the random-init banner, the published values alone (a difference
  against random weights would look like a finding);
- trained models of the same architecture that are not the study's checkpoint (matched by adapter
  family): the published values alone, with how to say that a model is the study's system.
The citation stands beside the tables.
"""

from __future__ import annotations

import html

import polars as pl

from actstore.published import PublishedTable
from actstore.reports.section_parts import Section
from actstore.reports.tables import html_table

_HEADERS = {"label": "system", "metric": "result", "group": "languages / kind", "depth": "our final depth",
            "published": "published", "ours": "ours", "difference": "ours − published"}


def _models(rows: pl.DataFrame) -> str:
    return html.escape(", ".join(dict.fromkeys(rows["model"].to_list())))


def published_section(table: PublishedTable) -> Section | None:
    """The section, or None when no reported model is one of the study's systems."""
    rows, source = table.rows, table.source
    if rows.height == 0:
        return None
    section = Section("published", f"Published numbers beside ours: {source.short}")
    link = f' <a href="{html.escape(source.url)}">{html.escape(source.url)}</a>' if source.url else ""
    section.parts.append(
        f'<p class="citation">Published values: {html.escape(source.citation)}{link} '
        f"({html.escape(source.measure)}; {html.escape(source.data)}). Where each block comes from is in "
        f"the last column.</p>")
    compared = rows.filter(pl.col("compared"))
    if compared.height:
        section.parts.append("<h3>The study's systems with trained weights</h3>")
        section.parts.append(html_table(compared.select(
            "model", "label", "metric", "group", "depth", "published", "ours", "difference", "where"),
            headers=_HEADERS))
        missing = compared.filter(pl.col("ours").is_null())
        if missing.height:
            section.parts.append(
                f'<p class="missing">No stored result for {missing.height} published value(s) of '
                f"{_models(missing)}; run <code>actstore analyze similarity --kind all --measure "
                f"{html.escape(source.measure)}</code>.</p>")
    real = rows.filter(~pl.col("random_init") & ~pl.col("compared"))
    if real.height:
        how = ("this report uses " + html.escape(table.measure) + ", the paper " + html.escape(source.measure)
               + ": rerun with <code>--measure " + html.escape(source.measure) + "</code> to compare"
               if table.measure != source.measure else
               "they have the same architecture as a system of the study, not its checkpoint; say which "
               "system a model is with <code>write_report(..., systems={model: system})</code> (a study "
               "file's <code>[report] published</code>) to compare")
        section.parts.append(f'<p class="note">{_models(real)}: published values only; {how}.</p>')
        section.parts.append(html_table(real.select("model", "label", "metric", "group", "published", "where"),
                                        headers=_HEADERS))
    random_init = rows.filter(pl.col("random_init"))
    if random_init.height:
        section.parts.append(
            f'<div class="banner">RANDOM-INIT model{"s" if random_init["model"].n_unique() > 1 else ""}: '
            f"{_models(random_init)} — the study's published values only; no difference is drawn against "
            "random weights.</div>")
        section.parts.append(html_table(
            random_init.select("model", "label", "metric", "group", "published", "where"), headers=_HEADERS))
    return section
