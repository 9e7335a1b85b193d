"""The HTML report rendered from synthetic analysis frames: content, offline-ness, numbers, errors."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

import _report_fixtures as fx
from actstore.reports import Limits, ReportError, ReportInputs, render_html, render_report
from actstore.reports.assets import vega_bundle
from actstore.reports.summaries import (
    cross_lingual_means, cross_lingual_rows, cross_modal_series, limit_depths, retrieval_rows,
    retrieval_table, tsne_sample,
)

WHEN = datetime(2026, 1, 6, 12, 0, tzinfo=timezone.utc)
SECTIONS = ("provenance", "cross-modal", "cross-lingual", "retrieval", "tsne", "neurons")


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(fx.full_inputs(), generated_at=WHEN)


def _page_data(page: str) -> dict:
    """The datasets the page hands to the charts (the ACTSTORE_DATA script constant)."""
    line = next(l for l in page.splitlines() if l.startswith("const ACTSTORE_DATA = "))
    return json.loads(line.removeprefix("const ACTSTORE_DATA = ").rstrip(";"))


def test_every_section_and_toc_entry_present(page):
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
        assert f'<a href="#{section}">' in page
    assert "<title>actstore report: toy/seamless-tiny</title>" in page


def test_every_chart_has_a_div_and_a_caption(page):
    ids = re.findall(r'<div class="chart" id="([^"]+)"></div><figcaption>([^<]+)</figcaption>', page)
    assert len(ids) == 11
    assert all(len(caption) > 40 for _, caption in ids)
    figures = next(l for l in page.splitlines() if l.startswith("const ACTSTORE_FIGURES = "))
    assert [f["id"] for f in json.loads(figures.removeprefix("const ACTSTORE_FIGURES = ").rstrip(";"))] == [
        i for i, _ in ids]


def test_page_is_fully_offline(page):
    """No script, stylesheet, image or import is fetched: everything is inline."""
    assert re.findall(r"<script[^>]*>", page, re.I) == ["<script>", "<script>"]
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"<(img|iframe|source|embed|object)\b", markup, re.I)
    assert not re.search(r"<link\b", markup, re.I)
    assert not re.search(r"https?://", markup)
    assert "@import" not in page
    assert page.count("<script>") == 2  # one shared Vega bundle, one page script
    assert page.count("window.vegaEmbed=") == 1


def test_vega_bundle_can_be_inlined():
    bundle = vega_bundle()
    assert "</script" not in bundle.lower() and "vegaEmbed" in bundle


def test_random_init_banner_only_for_random_models():
    banner = "RANDOM-INIT model: numbers are a pipeline check, not findings"
    assert banner in render_html(ReportInputs(provenance=fx.provenance(random_init=True)))
    assert banner not in render_html(ReportInputs(provenance=fx.provenance(random_init=False)))


def test_missing_sections_name_the_command_that_fills_them():
    page = render_html(ReportInputs(provenance=fx.provenance()))
    model = fx.MODEL
    for what, command in (
        ("cross-modal similarity results", "similarity"), ("cross-lingual similarity results", "similarity"),
        ("retrieval results", "retrieval"), ("t-SNE results", "tsne"), ("neuron rankings", "neurons"),
        ("neuron overlap results", "neurons"), ("concentration results", "neurons"),
    ):
        assert f"No {what} for model {model}: run <code>actstore analyze {command} --model {model}" in page
    assert "--kind cross-modal --measure svcca</code>" in page and "--kind cross-lingual --measure svcca</code>" in page
    assert 'class="chart"' not in page


def test_frames_of_other_models_count_as_missing():
    other = fx.retrieval().with_columns(pl.lit("other/model").alias("model"))
    page = render_html(ReportInputs(provenance=fx.provenance(), retrieval=other))
    assert f"No retrieval results for model {fx.MODEL}" in page


def test_empty_frame_counts_as_missing():
    page = render_html(ReportInputs(provenance=fx.provenance(), tsne=fx.tsne().clear()))
    assert f"run <code>actstore analyze tsne --model {fx.MODEL}</code>" in page


def test_cross_modal_means_match_known_answers():
    summary = cross_modal_series(fx.similarity())
    svcca = summary.filter((pl.col("measure") == "svcca"))
    for d, depth in enumerate(fx.DEPTHS):
        at = svcca.filter(pl.col("depth") == depth)
        row = lambda group, series: at.filter((pl.col("group") == group) & (pl.col("series") == series)).row(
            0, named=True)
        everyone = row("all", "score")
        assert everyone["value"] == pytest.approx(0.5 + 0.1 * d + 0.025)  # mean of 0.01 i, i = 0..5
        assert everyone["ci_low"] == pytest.approx(everyone["value"] - 0.02)
        assert everyone["n_langs"] == 6
        assert row("high", "score")["value"] == pytest.approx(0.5 + 0.1 * d + 0.005)
        assert row("low", "score")["value"] == pytest.approx(0.5 + 0.1 * d + 0.045)
        assert row("all", "random baseline")["value"] == pytest.approx(0.3)
        assert row("all", "shuffled null")["value"] == pytest.approx(0.2 + 0.01 * d)


def test_cross_lingual_means_exclude_same_language_pairs():
    means = cross_lingual_means(cross_lingual_rows(fx.similarity(), "svcca"))
    last = len(fx.DEPTHS) - 1
    rows = {r["kind"]: r for r in means.filter(pl.col("depth") == "L24").iter_rows(named=True)}
    assert rows["speech-speech"]["n_pairs"] == 15 and rows["speech-text"]["n_pairs"] == 30
    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    expected = sum(fx.cross_lingual_score("speech-text", i, j, last) for i, j in pairs) / len(pairs)
    assert rows["speech-text"]["score"] == pytest.approx(expected)
    assert set(rows) == set(fx.KIND_OFFSET)


def test_retrieval_table_known_answers():
    depth, table = retrieval_table(retrieval_rows(fx.retrieval()))
    assert depth == "L24"
    eng = table.filter(pl.col("lang") == "eng").row(0, named=True)
    assert eng["speech→text P@1 same lang"] == pytest.approx(1.0)
    assert eng["speech→text P@1 other langs"] == pytest.approx(0.8 - 0.03)  # mean of 0.8 - 0.01 j, j = 1..5
    assert eng["speech→speech P@1 other langs"] == pytest.approx(0.8 - 0.03)


def test_retrieval_directions_fill_both_triangles():
    rows = retrieval_rows(fx.retrieval()).filter(pl.col("panel") == "speech→speech")
    assert rows.filter((pl.col("query") == "eng") & (pl.col("target") == "fra")).height == len(fx.DEPTHS)
    assert rows.filter((pl.col("query") == "fra") & (pl.col("target") == "eng")).height == len(fx.DEPTHS)
    assert set(retrieval_rows(fx.retrieval())["panel"]) == {"speech→text", "text→speech", "speech→speech",
                                                          "text→text"}


def test_tsne_subsample_keeps_whole_sentences_and_dedups_texts():
    points, texts, note = tsne_sample(fx.tsne(n_sentences=60), max_points_per_depth=300)
    per_depth = points.group_by("depth").len()["len"].to_list()
    assert per_depth == [300] * 4  # 25 sentences x 6 languages x 2 modalities
    per_sentence = points.join(texts, on="key").group_by("depth", "sid").len()["len"].unique().to_list()
    assert per_sentence == [12]
    assert texts.height == 300 and texts["key"].n_unique() == 300  # once per item, not per depth
    assert points.columns == ["depth", "point_order", "key", "x", "y"]
    assert note and "25 of 60 sentences" in note
    again, _, _ = tsne_sample(fx.tsne(n_sentences=60), max_points_per_depth=300)
    assert again.equals(points)


def test_tsne_is_not_sampled_below_the_limit():
    points, _, note = tsne_sample(fx.tsne(n_sentences=20), max_points_per_depth=5000)
    assert note is None and points.height == 20 * 12 * 4


def test_large_tsne_is_capped_and_the_page_says_so():
    inputs = ReportInputs(provenance=fx.provenance(), tsne=fx.tsne(n_sentences=1700))  # 20,400 per depth
    page = render_html(inputs, Limits(tsne_points_per_depth=5000))
    points = _page_data(page)["tsne_points"]
    assert len(points["x"]) <= 4 * 5000 and points["depth"]["levels"] == list(fx.DEPTHS)
    assert "Showing 416 of 1700 sentences" in page
    assert len(page.encode()) < 3_000_000


def test_large_grids_keep_first_and_last_depth():
    grid = cross_lingual_rows(fx.similarity(), "svcca")
    kept, dropped = limit_depths(grid, max_rows=grid.height // 2)
    assert sorted(set(kept["depth"])) == sorted(["embed", "L24"]) and dropped == ["L4", "L12"]
    page = render_html(ReportInputs(provenance=fx.provenance(), similarity=fx.similarity()),
                       Limits(grid_rows=grid.height // 2))
    assert "2 depths left out of the heatmaps" in page


def test_sentence_text_cannot_break_out_of_the_script(page):
    assert "<b>" not in page and "\\u003cb\\u003e" in page
    assert "Yoruba sentence 3 \\u003cb\\u003e\\u0026amp;" in page


def test_floats_are_rounded_in_page_data(page):
    data = _page_data(page)
    assert all(len(str(v).split(".")[-1]) <= 4 for v in data["xl_rows"]["score"])
    assert all(len(str(v).split(".")[-1]) <= 2 for v in data["tsne_points"]["x"])


def test_unknown_measure_falls_back_with_a_note():
    inputs = ReportInputs(provenance=fx.provenance(), similarity=fx.similarity(), measure="pwcca")
    assert "Measure &#x27;pwcca&#x27; was not computed; showing &#x27;cka&#x27;." in render_html(inputs)


def test_depth_is_derived_from_point_when_absent():
    sim = fx.similarity().drop("depth").with_columns(pl.format("speech.{}", pl.col("point")).alias("point"))
    page = render_html(ReportInputs(provenance=fx.provenance(), similarity=sim))
    assert set(_page_data(page)["cm_rows"]["depth"]) == set(fx.DEPTHS)


def test_rendering_is_deterministic():
    assert render_html(fx.full_inputs(), generated_at=WHEN) == render_html(fx.full_inputs(), generated_at=WHEN)


def test_missing_columns_raise_one_clear_sentence():
    bad = fx.retrieval().drop("p_at_1", "xsim_error")
    with pytest.raises(ReportError, match=r"^Report input 'retrieval' lacks columns p_at_1, xsim_error; "):
        render_html(ReportInputs(provenance=fx.provenance(), retrieval=bad))


def test_bad_provenance_and_frame_types_raise():
    with pytest.raises(ReportError, match="provenance lacks random_init"):
        render_html(ReportInputs(provenance={"model": "m", "store_uri": "x", "store_version": 1,
                                             "schema_version": 1}))
    with pytest.raises(ReportError, match="is a dict; pass a polars DataFrame"):
        render_html(ReportInputs(provenance=fx.provenance(), tsne={"x": [1.0]}))


def test_report_is_written_atomically(tmp_path):
    out = render_report(fx.full_inputs(), tmp_path / "report.html", generated_at=WHEN)
    assert out == (tmp_path / "report.html").resolve()
    assert out.read_text(encoding="utf-8") == render_html(fx.full_inputs(), generated_at=WHEN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_failed_render_leaves_nothing_and_keeps_the_old_report(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("old report")
    bad = ReportInputs(provenance=fx.provenance(), similarity=fx.similarity().drop("score"))
    with pytest.raises(ReportError):
        render_report(bad, out)
    assert out.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


@pytest.mark.parametrize("make_path, message", [
    (lambda tmp: tmp / "no-such-dir" / "report.html", "does not exist"),
    (lambda tmp: tmp, "is a directory"),
])
def test_unusable_out_path_raises(tmp_path, make_path, message):
    with pytest.raises(ReportError, match=message):
        render_report(ReportInputs(provenance=fx.provenance()), make_path(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (unwritable even for root)")
def test_unwritable_out_path_raises_and_leaves_no_file():
    with pytest.raises(ReportError, match=r"^Could not write the report to /proc/actstore-report\.html .*choose another --out path\.$"):
        render_report(ReportInputs(provenance=fx.provenance()), "/proc/actstore-report.html")
    assert not Path("/proc/actstore-report.html").exists()


def test_symmetric_pairs_are_drawn_as_one_lower_triangle():
    """Pairs stored upper-triangle (lang_a before lang_b) are turned into the page's lower triangle."""
    sim = fx.similarity(measures=("svcca",))
    symmetric_kind = pl.col("kind") != "speech-text"
    flipped = sim.with_columns(  # the same pairs, stored the other way round (kx/ky follow lang_a/lang_b)
        *(pl.when(symmetric_kind).then(pl.col(b)).otherwise(pl.col(a)).alias(a)
          for a, b in (("lang_a", "lang_b"), ("lang_b", "lang_a"), ("kx", "ky"), ("ky", "kx"))))
    order = list(fx.LANGS)
    rows = cross_lingual_rows(flipped, "svcca", order)
    symmetric = rows.filter(pl.col("kind") != "speech-text")
    assert all(order.index(a) > order.index(b) for a, b in symmetric.select("lang_a", "lang_b").iter_rows())
    assert rows.sort("kind", "depth", "lang_a", "lang_b").equals(
        cross_lingual_rows(sim, "svcca", order).sort("kind", "depth", "lang_a", "lang_b"))


def test_ci_band_is_mentioned_only_when_bootstrapped():
    with_ci = render_html(ReportInputs(provenance=fx.provenance(), similarity=fx.similarity(with_ci=True)))
    without = render_html(ReportInputs(provenance=fx.provenance(), similarity=fx.similarity(with_ci=False)))
    assert "band: mean per-language 95% interval of the mean score at n (half samples)" in with_ci
    assert "95% interval" not in without and "ci_low" not in _page_data(without)["cm_rows"]


# ---------------------------------------------------------- issue 10: honest statistics, one language
def test_forced_correlations_are_explained_where_they_apply():
    sim = fx.similarity(measures=("svcca",))
    assert "not by the data" not in render_html(ReportInputs(provenance=fx.provenance(), similarity=sim))
    # the study's regime: n = 194 sentences, 120 + 110 kept directions -> 37 correlations forced to 1
    # the report shows the stored count (the analysis's), it does not recompute it from kx, ky, n
    forced = sim.with_columns(pl.when(pl.col("kind") != "cross-modal").then(120).otherwise(pl.col("kx")).alias("kx"),
                              pl.when(pl.col("kind") != "cross-modal").then(110).otherwise(pl.col("ky")).alias("ky"),
                              pl.when(pl.col("kind") != "cross-modal").then(37).otherwise(0).cast(pl.Int32)
                              .alias("forced"))
    page = render_html(ReportInputs(provenance=fx.provenance(), similarity=forced))
    assert page.count("are 1 by construction, not by the data") == 1  # cross-lingual only
    assert "here up to 37" in page
    data = _page_data(page)
    assert set(data["xl_rows"]["forced"]) == {37}
    assert set(data["cm_rows"]["forced"]) == {0}


def test_one_language_store_says_why_cross_lingual_is_empty():
    prov = fx.provenance()
    prov["languages"] = prov["languages"].head(1)
    sim = fx.similarity().filter((pl.col("kind") == "cross-modal") & (pl.col("lang_a") == "eng"))
    page = render_html(ReportInputs(provenance=prov, similarity=sim))
    assert "Empty by definition: cross-lingual similarity compares pairs of languages" in page
    assert "only one (eng) stored" in page
    assert "Empty by definition: selective dimensions" in page


# ---------------------------------------------------------- issue 15 §6: the report explains itself
import shutil
import subprocess

import _report_wide as wide
from actstore.reports.counts import analysis_languages
from actstore.reports.page import CSV_SCRIPT


@pytest.fixture(scope="module")
def wide_page() -> str:
    return render_html(wide.wide_inputs(), generated_at=WHEN)


def _figures(page: str) -> list[dict]:
    line = next(l for l in page.splitlines() if l.startswith("const ACTSTORE_FIGURES = "))
    return json.loads(line.removeprefix("const ACTSTORE_FIGURES = ").rstrip(";"))


def _param(spec: object, name: str):
    """The initial value of the parameter `name` anywhere in a Vega-Lite spec."""
    if isinstance(spec, dict):
        for p in spec.get("params", []):
            if p.get("name") == name and "value" in p:
                return p["value"]
        children = spec.values()
    elif isinstance(spec, list):
        children = spec
    else:
        return None
    for child in children:
        found = _param(child, name)
        if found is not None:
            return found
    return None


def _decoded(column) -> list:
    return [None if c is None else column["levels"][c] for c in column["codes"]] if isinstance(column, dict) else column


def test_sections_open_on_a_depth_both_modalities_have(wide_page):
    """The last depth (adaptor) is speech-only: every depth selector opens on L6, where each panel has rows."""
    specs = {f["id"]: f["spec"] for f in _figures(wide_page)}
    opening = {name: _param(specs[fig], name) for fig, name in (
        ("fig-xl-heatmaps", "xl_depth"), ("fig-xl-deltas", "xl_to"), ("fig-ret-heatmaps", "ret_depth"),
        ("fig-tsne", "tsne_depth"), ("fig-neu-top", "neu_depth"))}
    assert opening == dict.fromkeys(opening, "L6")
    data = _page_data(wide_page)
    xl = pl.DataFrame({k: _decoded(v) for k, v in data["xl_rows"].items()})
    at = xl.filter(pl.col("depth") == "L6")
    assert set(at["kind"]) == {"speech-speech", "text-text", "speech-text"}
    assert set(xl.filter(pl.col("depth") == "adaptor")["kind"]) == {"speech-speech"}
    # the small fixture, where every depth has both, still opens on its deepest depth
    small = {f["id"]: f["spec"] for f in _figures(render_html(fx.full_inputs()))}
    assert _param(small["fig-xl-heatmaps"], "xl_depth") == fx.DEPTHS[-1]


def test_each_figure_explains_what_it_draws(wide_page):
    for words in ("SVCCA keeps the top directions", "Random baseline: the same measure on two sets of random",
                  "Shuffled null: the same measure after shuffling", "forced: canonical correlations that are 1",
                  "kx, ky: directions kept on each side", "k: how many top dimensions",
                  "Chance level: a random guess ranks the true item first with probability 1/n"):
        assert words in wide_page, words
    # the baseline is above every score in the wide fixture (n = 50, kx + ky = 80): said, and why
    assert "The random baseline is at or above 140 of 140 scores here" in wide_page
    assert "small n relative to the kept directions inflates SVCCA" in wide_page


def test_baseline_note_only_when_the_baseline_is_high(page):
    assert "The random baseline is at or above" not in page  # fixture: scores 0.5-0.9, baseline 0.3


def test_retrieval_shows_its_chance_level(wide_page, page):
    assert "Chance P@1 = 1/50 = 0.020" in wide_page and "Chance P@1 here: 1/50 = 0.020" in wide_page
    assert "Chance P@1 = 1/194 = 0.005" in page
    ret = next(f for f in _figures(wide_page) if f["id"] == "fig-ret-heatmaps")
    assert "1 / datum.n" in json.dumps(ret["spec"])  # the tooltip's chance field


def test_blank_cells_are_explained(wide_page):
    assert "Blank cells mean no score was computed there, never a score of 0" in wide_page
    assert "speech-speech has no rows for jpn" in wide_page
    assert "text-text has no rows at depth adaptor" in wide_page
    assert "cross-modal has no rows for jpn" in wide_page
    assert "the upper triangle is left blank" in wide_page


def test_heatmaps_are_sized_to_fit_the_page(wide_page):
    """36 languages: the language heatmaps are two panels a row whose widths add up to < 1140 px."""
    for fig in _figures(wide_page):
        if fig["id"] not in ("fig-xl-heatmaps", "fig-xl-deltas", "fig-ret-heatmaps"):
            continue
        widths = re.findall(r'"width":\s*(\d+)', json.dumps(fig["spec"]))
        assert widths and max(map(int, widths)) * 2 < 1140, fig["id"]
        assert fig["spec"].get("columns") == 2


def test_many_language_lines_highlight_one_language(wide_page, page):
    specs = {f["id"]: json.dumps(f["spec"]) for f in _figures(wide_page)}
    for fig in ("fig-neu-best", "fig-neu-overlap", "fig-neu-gini"):
        assert '"field": "level"' in specs[fig] and "highlight language " in specs[fig], fig
        assert '"pointerover"' in specs[fig]
    small = {f["id"]: json.dumps(f["spec"]) for f in _figures(page)}
    assert "highlight language" not in small["fig-neu-gini"]  # six languages keep their own colours


def test_each_figure_links_its_data_as_csv(page):
    links = re.findall(r'<figure id="([^"]+)-figure">.*?<div class="csv">(.*?)</div></figure>', page, re.S)
    figures = {f["id"]: f["datasets"] for f in _figures(page)}
    assert {fid for fid, _ in links} == set(figures)
    for fid, html_links in links:
        names = re.findall(r'data-csv="([^"]+)" download="([^"]+)"', html_links)
        assert [n for n, _ in names] == figures[fid]
        assert all(d == f"{fid}-{n}.csv" for n, d in names)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (the browser test runs the same script)")
def test_csv_links_decode_to_the_dataset(page, tmp_path):
    """The page's own CSV script, run on the page's data, gives back each dataset's rows."""
    data_line = next(l for l in page.splitlines() if l.startswith("const ACTSTORE_DATA = "))
    script = tmp_path / "csv.js"
    script.write_text("const window = {};\n" + data_line + "\n" + CSV_SCRIPT +
                      "\nprocess.stdout.write(JSON.stringify(Object.fromEntries("
                      "Object.keys(ACTSTORE_DATA).map(n => [n, window.actstoreCsv(n)]))));\n")
    out = json.loads(subprocess.run(["node", str(script)], capture_output=True, text=True, check=True).stdout)
    data = _page_data(page)
    for name, text in out.items():
        frame = pl.read_csv(text.encode(), infer_schema=False)  # every field as the text written
        assert frame.columns == list(data[name]), name
        for column in frame.columns:
            expected, got = _decoded(data[name][column]), frame[column].to_list()
            assert len(got) == len(expected), (name, column)
            for g, e in zip(got, expected):
                if e is None:
                    assert g is None, (name, column)
                elif isinstance(e, (int, float)) and not isinstance(e, bool):
                    assert float(g) == pytest.approx(e), (name, column)
                else:
                    assert g == str(e).lower() if isinstance(e, bool) else g == e, (name, column)
    assert 'Yoruba sentence 3 <b>&amp; \'quoted\'</b> ✓' in out["tsne_texts"]


def _header_counts(page: str) -> dict[str, int]:
    header = page[page.index("<header>"):page.index("</header>")]
    line = re.search(r'data-role="language-counts">Languages: (.*?)</p>', header).group(1)
    parts = [re.match(r"(.+?): (\d+)", part) for part in line.split(" · ")]
    return {m.group(1): int(m.group(2)) for m in parts if m}


def test_header_counts_match_the_languages_each_analysis_used(wide_page):
    counts = _header_counts(wide_page)
    used = analysis_languages(wide.wide_inputs())
    assert {k: len(v) for k, v in used.items()} == {k: counts[k] for k in used}
    # known answers: jpn has text but no speech
    assert counts["cross-modal"] == 35 and counts["cross-lingual speech-speech"] == 35
    assert counts["cross-lingual text-text"] == 36 and counts["t-SNE"] == 36
    assert "35 speech stored" in wide_page and "cross-modal: 35 (not jpn)" in wide_page
    assert "cross-lingual speech-text: 36 (35 as speech, 36 as text)" in wide_page
    # and they are the languages the charts draw
    data = _page_data(wide_page)
    assert len(set(_decoded(data["cm_rows"]["lang"]))) == counts["cross-modal"]


def test_runs_show_their_pooling_options():
    prov = fx.provenance()
    prov["runs"] = prov["runs"].with_columns(pl.Series("params", [
        json.dumps({"mode": "paired", "text_pooling": "sentence_tokens", "speech_pooling": "valid_windows"}),
        json.dumps({"text_prefix": "passage: ", "weights": "multilingual-e5-small, 4-bit weights (Q4_0)"})]))
    page = render_html(ReportInputs(provenance=prov))
    assert "<th>pooling options</th>" in page
    assert "mode=paired, text_pooling=sentence_tokens, speech_pooling=valid_windows" in page
    assert "text_prefix=&quot;passage: &quot;, weights=multilingual-e5-small, 4-bit weights (Q4_0)" in page


def test_a_text_only_language_does_not_make_every_report_recompute(tmp_path):
    """jpn stored as text only (no espeak-ng voice): the speech grids cannot include it, so once
    computed they count as complete, and the header counts what each grid used."""
    import numpy as np

    from actstore.analyses.complete import ensure_results
    from actstore.reports.from_store import report_inputs
    from actstore.store import Store
    from _store_data import put

    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((16, 4))
    for lang, modalities in (("eng", ("speech", "text")), ("fra", ("speech", "text")), ("jpn", ("text",))):
        for modality in modalities:
            x = latent @ rng.standard_normal((4, 8)) + 0.1 * rng.standard_normal((16, 8))
            put(store, "m", f"{modality}.L1", modality, lang, range(1, 17), x.astype(np.float32),
                resource_level="high")
    assert "cross-modal svcca" in ensure_results(store, "m", tsne_per_language=6)
    assert ensure_results(store, "m") == []  # nothing recomputed for jpn's missing speech
    page = render_html(report_inputs(store, "m"))
    assert "cross-modal: 2 (not jpn)" in page and "cross-lingual speech-speech: 2 (not jpn)" in page
    assert "cross-lingual text-text: 3" in page


def test_retrieval_table_and_diagonal_at_the_opening_depth(wide_page):
    assert "P@1 per query language at depth L6</h3>" in wide_page  # not the speech-only adaptor
    assert "The diagonal of speech→speech and text→text is blank" in wide_page
