"""`actstore report --model A --model B --model C`: the study's comparison across systems.

A store holding three models as the demo has them (all-MiniLM-L6-v2 text, a tiny random-init
SONAR with text and speech encoders, a tiny random-init SALMONN whose points have different
widths) is reported on one page; the page must open in headless Chromium without console errors,
draw every chart, show each model, and name the random-init ones. The comparison frames are
checked against the per-model summaries they come from.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from actstore.store import Store
from actstore.analyses.comparison import comparison_frames
from actstore.analyses.grids import load_grid
from actstore.analyses.report_data import report_frames
from actstore.grid_means import cross_modal_summary
from actstore.reports.from_store import report_inputs
from actstore.reports.inputs import validated
from actstore.reports.summaries import cross_modal_series
from actstore.ingest.adapters.salmonn.tiny import build_tiny_salmonn
from actstore.ingest.adapters.sonar.tiny import build_tiny_sonar_speech, build_tiny_sonar_text

from _chromium import CHROMIUM, chart_states, open_report
from _cli import cli
from _models import small_corpus

LANGS = "eng,fra,deu"
MINILM, SONAR, SALMONN = "all-MiniLM-L6-v2", "tiny-random-sonar", "tiny-random-salmonn"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    db = tmp / "store.lance"
    sonar = build_tiny_sonar_text(tmp / SONAR, corpus_texts=small_corpus(), vocab_size=400)
    build_tiny_sonar_speech(sonar)
    salmonn = build_tiny_salmonn(tmp / SALMONN, corpus_texts=small_corpus(), vocab_size=800)
    cli("ingest", "--db", db, "--model", MINILM, "--modalities", "text", "--langs", LANGS, "--limit", 8, "--quiet")
    for model in (sonar, salmonn):
        cli("ingest", "--db", db, "--model", model, "--langs", LANGS, "--limit", 8, "--quiet",
            "--cache-dir", tmp / "espeak")
    return tmp, db


def test_analyze_handles_salmonn_widths(store_dir):
    """SALMONN's speech.encoder (Whisper+BEATs width) beside its LLM points: every analysis runs."""
    tmp, db = store_dir
    cli("analyze", "svcca", "--db", db, "--model", SALMONN, "--kind", "all", "--quiet")
    cli("analyze", "retrieval", "--db", db, "--model", SALMONN, "--quiet")
    # speech.encoder (Whisper+BEATs width) and speech.qformer (LLM width) are speech-only depths
    cli("analyze", "tsne", "--db", db, "--model", SALMONN, "--points", "encoder,qformer,L2",
        "--per-language", 8, "--quiet")
    cli("analyze", "neurons", "--db", db, "--model", SALMONN, "--quiet")
    store = Store.open(db)
    tsne = store.read_results("tsne", f"model = '{SALMONN}'")
    assert tsne is not None and set(tsne["depth"].unique().to_list()) == {"encoder", "qformer", "L2"}
    widths = {r["point"]: r["width"] for r in store.require_model(SALMONN).iter_rows(named=True)}
    assert widths["speech.encoder"] != widths["speech.qformer"] == widths["text.L2"]


@pytest.fixture(scope="module")
def report(store_dir):
    tmp, db = store_dir
    out = tmp / "compare.html"
    cli("report", "--db", db, "--model", MINILM, "--model", SONAR, "--model", SALMONN, "--out", out)
    return out


def test_comparison_frames_match_each_models_summary(store_dir, report):
    _, db = store_dir
    store = Store.open(db)
    frames = comparison_frames(store, [MINILM, SONAR, SALMONN])
    assert frames["models"]["model"].to_list() == [MINILM, SONAR, SALMONN]
    assert frames["models"]["random_init"].to_list() == [False, True, True]
    cm = frames["final_cross_modal"]
    assert set(cm["model"]) == {SONAR, SALMONN}  # MiniLM has text only
    for model in (SONAR, SALMONN):
        summary = cross_modal_summary(load_grid(store, model, measure="svcca"))
        mine = cm.filter(pl.col("model") == model).sort("group")
        final = summary.filter(pl.col("depth") == mine["depth"][0])
        assert mine["group"].to_list() == final.sort("group")["group"].to_list()
        assert mine["score"].to_list() == pytest.approx(final.sort("group")["score"].to_list(), abs=1e-12)
        # ... and the model's own report draws the same groups and numbers at that depth
        shown = validated(report_inputs(store, model, frames=report_frames(store, model))).similarity
        drawn = cross_modal_series(shown).filter((pl.col("depth") == mine["depth"][0])
                                                 & (pl.col("series") == "score")).sort("group")
        assert drawn["group"].to_list() == mine["group"].to_list()
        assert drawn["value"].to_list() == pytest.approx(mine["score"].to_list(), abs=1e-12)
    assert cm.filter(pl.col("model") == SONAR)["depth"].unique().to_list() == ["pooled"]  # study's SONAR number
    from actstore.ingest.adapters.salmonn.tiny import LLM_LAYERS
    # SALMONN's final is its last decoder layer, not the layer-less final_norm that sorts after it
    assert cm.filter(pl.col("model") == SALMONN)["depth"].unique().to_list() == [f"L{LLM_LAYERS}"]
    xl = frames["final_cross_lingual"]
    assert set(xl.filter(pl.col("model") == MINILM)["kind"]) == {"text-text"}
    assert set(xl.filter(pl.col("model") == SALMONN)["kind"]) == {"speech-speech", "text-text"}
    curves = frames["cross_modal_curves"]
    assert curves["rel_depth"].min() >= 0 and curves["rel_depth"].max() == pytest.approx(1.0)


def test_report_with_one_unknown_model_fails_cleanly(store_dir, tmp_path):
    _, db = store_dir
    result = cli("report", "--db", db, "--model", MINILM, "--model", "no-such-model",
                 "--out", tmp_path / "x.html", code=None)
    assert result.exit_code != 0 and "no-such-model" in result.output
    assert not (tmp_path / "x.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_multi_model_report_draws_in_chromium(report, tmp_path):
    html = report.read_text(encoding="utf-8")
    assert "RANDOM-INIT models: tiny-random-sonar, tiny-random-salmonn" in html
    browser = open_report(report, tmp_path / "profile", wait_s=90)
    try:
        assert browser.console_errors() == []
        charts = chart_states(browser)
        assert [c["id"] for c in charts if not c["drawn"] or c["error"]] == []
        ids = {c["id"] for c in charts}
        assert {"fig-cmp-cm-final", "fig-cmp-xl-final", "fig-cmp-cm-curves"} <= ids
        sections = {c["section"] for c in charts}
        for i in (1, 2, 3):  # each model's own sections follow
            assert f"m{i}-cross-lingual" in sections
        assert {"m2-cross-modal", "m3-cross-modal", "m3-tsne"} <= sections
        # the grouped bars draw one bar per model that has cross-modal results, per resource group
        bars = json.loads(browser.evaluate("""(() => {
            const out = [];
            function walk(node) {
              if (!node) return;
              if (node.marktype === 'rect') for (const it of node.items || []) if (it.datum && it.datum.model) out.push(it.datum.model);
              for (const it of node.items || []) if (it.items) for (const c of it.items) walk(c);
            }
            walk(window.actstoreViews['fig-cmp-cm-final'].scenegraph().root);
            return JSON.stringify(out); })()"""))
        assert set(bars) == {SONAR, SALMONN}
        # each model's t-SNE colour switch is its own radio group (Vega names inputs by parameter)
        radios = json.loads(browser.evaluate("""JSON.stringify([...document.querySelectorAll(
            'input[type=radio]')].map(r => [r.name, r.closest('div.chart').id]))"""))
        charts_of = {}
        for name, chart in radios:
            charts_of.setdefault(name, set()).add(chart)
        assert len(charts_of) >= 2 and all(len(c) == 1 for c in charts_of.values())
        titles = browser.evaluate("JSON.stringify([...document.querySelectorAll('h2')].map(h => h.textContent))")
        for model in (MINILM, SONAR, SALMONN):
            assert f"{model}: Provenance" in titles
    finally:
        browser.close()


def test_findings_put_real_models_first_and_mirror_the_text_matrix(store_dir, report):
    """MiniLM (real) opens the page; the random-init pair is compared after it; the heatmap's matrix
    holds both triangles of the final depth's stored pairs, equal to the stored scores."""
    from actstore.analyses.findings import findings_frames, real_first
    from actstore.analyses.report_data import multi_model_frames

    _, db = store_dir
    store = Store.open(db)
    assert real_first(store, [SONAR, MINILM, SALMONN]) == [MINILM, SONAR, SALMONN]
    frames = {m: report_frames(store, m) for m in (SONAR, MINILM, SALMONN)}
    ordered, comparison, findings = multi_model_frames(store, [SONAR, MINILM, SALMONN], frames)
    assert ordered == [MINILM, SONAR, SALMONN]
    assert comparison["models"]["model"].to_list() == [SONAR, SALMONN]  # the pipeline check
    assert findings["provenance"]["model"].to_list() == [MINILM]
    assert findings["speech_layers"] is None and findings["cross_model"] is None
    matrix = findings["text_matrix"]
    assert matrix["depth"].unique().to_list() == ["L6"] and matrix.height == 3 * 2  # 3 languages, no diagonal
    grid = load_grid(store, MINILM, measure="svcca").filter((pl.col("depth") == "L6") & (pl.col("kind") == "text-text"))
    for row in grid.filter(pl.col("lang_a") != pl.col("lang_b")).iter_rows(named=True):
        both = matrix.filter(pl.col("lang_a").is_in([row["lang_a"], row["lang_b"]])
                             & pl.col("lang_b").is_in([row["lang_a"], row["lang_b"]]))
        assert both["score"].to_list() == pytest.approx([row["score"]] * 2, abs=1e-12)
    groups = findings["text_groups"]
    assert set(groups["by"]) == {"resource level", "script"} and groups["languages"].sum() == 2 * 3
    assert findings["retrieval"]["p_at_1"].is_between(0, 1).all()
