"""The neuron study in `actstore report` (issue 16, item 7): sections drawn from the stored tables.

- a tiny random-init Whisper through the CLI (ingest with sites and decoding, analyze neurons,
  analyze probe, intervene --top k with random controls, report): the page holds the four neuron
  sections, each under the RANDOM-INIT banner, every chart draws (Vega, through vl-convert), and
  a second run from scratch gives the same numbers;
- a synthetic store with planted neurons (tests/_site_store.py): what the page draws is what the
  analyses stored (known answers); intervention rows with intervals, displacement-matched
  controls and output-language shares (the columns `intervene` gains on branch ivcore:
  ci_low/ci_high, lang_share*, lang_prob*) are drawn, rows without them too;
- a store without neuron results: a report without those sections, and no error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from _cli import cli
from _site_store import site_store
from _store_data import put
from actstore.ingest.items import SAMPLE_RATE
from actstore.schema import INTERVENTIONS_TABLE, LANGUAGE_PROBE_TABLE, SIMILARITY_TABLE
from actstore.store import Store

STUDY_SECTIONS = ("neuron-sites", "interventions", "site-concentration", "language-probe")
BANNER = "RANDOM-INIT model: numbers are a pipeline check, not findings."
SENTENCES = {
    "eng": ["The cat sleeps.", "Rain falls on the hills.", "We read books.", "The sun is warm.", "Birds sing."],
    "fra": ["Le chat dort.", "La pluie tombe.", "Nous lisons des livres.", "Le soleil est chaud.", "Les oiseaux."],
    "deu": ["Die Katze schläft.", "Regen fällt.", "Wir lesen Bücher.", "Die Sonne ist warm.", "Vögel singen."],
}


# ------------------------------------------------------------------------------------ page helpers
def sections(page: str) -> dict[str, str]:
    """Section id -> its HTML."""
    return dict(re.findall(r'<section id="([a-z0-9-]+)">(.*?)</section>', page, re.S))


def page_data(page: str) -> tuple[dict[str, list[dict]], list[dict]]:
    """The page's datasets (decoded to rows, as the page script does) and its figures."""
    data = json.loads(re.search(r"const ACTSTORE_DATA = (.*?);\nconst ACTSTORE_FIGURES", page, re.S).group(1))
    figures = json.loads(re.search(r"const ACTSTORE_FIGURES = (.*?);\nconst ACTSTORE_EMBED", page, re.S).group(1))

    def rows(encoded: dict) -> list[dict]:
        cols = {k: v if isinstance(v, list) else [None if c is None else v["levels"][c] for c in v["codes"]]
                for k, v in encoded.items()}
        n = len(next(iter(cols.values()))) if cols else 0
        return [{k: cols[k][i] for k in cols} for i in range(n)]

    return {name: rows(cols) for name, cols in data.items()}, figures


def draw_study_figures(page: str) -> list[str]:
    """Render every neuron-study figure with Vega (vl-convert, as a browser would); returns their ids."""
    import vl_convert as vlc

    data, figures = page_data(page)
    drawn = []
    for fig in figures:
        if "fig-nst" in fig["id"]:  # `m2-fig-nst-...` on a page of several models
            spec = {**fig["spec"], "datasets": {name: data[name] for name in fig["datasets"]}}
            svg = vlc.vegalite_to_svg(spec)
            assert "<svg" in svg and "<path" in svg, fig["id"]
            drawn.append(fig["id"])
    return drawn


# ------------------------------------------------------------------------- tiny Whisper, end to end
@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """Speech (0.5-0.9 s of noise and a tone per language) with transcripts in three languages."""
    root = tmp_path_factory.mktemp("neuron_report_manifest")
    rows = ["sentence_id,lang,modality,text,audio"]
    for li, (lang, texts) in enumerate(SENTENCES.items()):
        for i, text in enumerate(texts, 1):
            n = int((0.4 + 0.1 * i) * SAMPLE_RATE)
            noise = 0.1 * np.random.default_rng(100 * li + i).standard_normal(n)
            wav = (noise + 0.2 * np.sin(np.arange(n) * (0.02 + 0.01 * li))).astype(np.float32)
            sf.write(root / f"{lang}{i}.wav", wav, SAMPLE_RATE, subtype="PCM_16")
            rows.append(f'{i},{lang},speech,"{text}",{lang}{i}.wav')
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    return root / "m.csv"


def whisper_study(root: Path, model: Path, manifest: Path) -> str:
    """The study's commands on the tiny Whisper into a fresh store; returns the report's HTML."""
    db, source = str(root / "db"), ("--source", "manifest", "--data-dir", str(manifest))
    cli("ingest", "--db", db, "--model", model, "--name", "tiny_whisper", *source, "--langs", "eng,fra,deu", "--modalities", "speech",
        "--points", "decoder.L1", "--sites", "ffn,cross_attn.k,cross_attn.v", "--quiet")
    cli("analyze", "neurons", "--db", db, "--model", "tiny_whisper", "--sites", "*", "--k", "5", "--quiet")
    cli("analyze", "probe", "--db", db, "--model", "tiny_whisper", "--points", "decoder.L*", "--folds", "3",
        "--quiet")
    cli("intervene", "--db", db, "--model", model, "--name", "tiny_whisper", *source, "--langs", "eng,fra", "--site", "decoder.L1.ffn",
        "--top", "3", "--target", "fra", "--seeds", "0,1")
    out = root / "report.html"
    assert "RANDOM-INIT" in cli("report", "--db", db, "--model", "tiny_whisper", "--out", out).output
    return out.read_text()


@pytest.fixture(scope="module")
def whisper_pages(tmp_path_factory, tiny_whisper_dir, manifest) -> tuple[str, str]:
    """The study run twice from scratch (two stores)."""
    return tuple(whisper_study(tmp_path_factory.mktemp(f"whisper_study{i}"), tiny_whisper_dir, manifest)
                 for i in range(2))


@pytest.mark.slow
def test_tiny_whisper_report_holds_the_neuron_study_under_the_banner(whisper_pages):
    page = whisper_pages[0]
    found = sections(page)
    for sid in STUDY_SECTIONS:
        assert sid in found, sid
        assert BANNER in found[sid] and '<ul class="explain">' in found[sid] and "How to read this" in found[sid]
    assert f'href="#{STUDY_SECTIONS[0]}"' in page  # listed in the contents
    assert set(draw_study_figures(page)) >= {"fig-nst-spread", "fig-nst-layers", "fig-nst-iv", "fig-nst-gini",
                                             "fig-nst-top-share", "fig-nst-probe"}
    data, _ = page_data(page)
    iv = pl.DataFrame(data["nst_iv"])
    # the matched control comes with intervene's --controls default where that option exists
    assert {"top:fra", "random control"} <= set(iv["set"]) <= {"top:fra", "random control",
                                                               "displacement-matched control"}
    assert set(iv["lang"]) == {"eng", "fra"}
    assert iv.filter(pl.col("kind") == "control")["seed"].unique().sort().to_list() == [0, 1]
    assert "No bootstrap intervals are stored" in found["interventions"] or "ci_low" in iv.columns
    probe = pl.DataFrame(data["nst_probe"])
    assert probe["depth"].to_list() == ["decoder.L1"] and probe["chance"][0] == pytest.approx(1 / 3, abs=1e-3)
    assert (probe["ci_lo"] <= probe["accuracy"]).all() and (probe["accuracy"] <= probe["ci_hi"]).all()


@pytest.mark.slow
def test_tiny_whisper_study_is_deterministic_under_its_seeds(whisper_pages):
    (first, _), (second, _) = (page_data(p) for p in whisper_pages)
    names = sorted(n for n in first if n.startswith("nst_"))
    assert names == sorted(n for n in second if n.startswith("nst_")) and "nst_iv" in names
    for name in names:
        a, b = pl.DataFrame(first[name]), pl.DataFrame(second[name])
        assert a.columns == b.columns and a.height == b.height, name
        for col in a.columns:
            if a[col].dtype.is_float():
                np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), atol=1e-6, err_msg=name)
            else:
                assert a[col].to_list() == b[col].to_list(), (name, col)


# ----------------------------------------------------------------- synthetic store, known answers
def _intervention_rows(model: str, *, with_new_columns: bool) -> pl.DataFrame:
    """Rows as `intervene` writes them; `with_new_columns`: plus the intervals, the matched
    control and the output-language shares of branch ivcore."""
    rows = []
    for lang, chosen in (("eng", -0.40), ("rus", -0.05)):
        sets = [("top:eng", -1, chosen), ("random", 0, -0.02), ("random", 1, -0.00004), ("matched", 0, -0.10)]
        for name, seed, delta in sets:
            if name == "matched" and not with_new_columns:
                continue
            row = {"model": model, "site": "decoder.L2.ffn", "neuron_set": name, "seed": seed, "value": "median",
                   "lang": lang, "modality": "speech", "corpus": "flores200:devtest", "k": 3,
                   "units": "1,2,3", "n_sentences": 20, "n_tokens": 300, "loglik_per_token": -2.0,
                   "clamped_loglik_per_token": -2.0 + delta, "delta_per_token": delta, "random_init": False}
            if with_new_columns:
                row |= {"ci_low": delta - 0.05, "ci_high": delta + 0.05, "lang_share": 0.9,
                        "clamped_lang_share": 0.9 + delta, "lang_share_delta": delta,
                        "lang_share_ci_low": delta - 0.1, "lang_share_ci_high": delta + 0.1,
                        "lang_prob": None, "clamped_lang_prob": None, "lang_prob_delta": None,
                        "lang_prob_ci_low": None, "lang_prob_ci_high": None}
            rows.append(row)
    frame = pl.DataFrame(rows)
    return frame.with_columns(pl.col(c).cast(pl.Float64) for c in frame.columns if frame[c].dtype == pl.Null)


@pytest.fixture(scope="module")
def site_db(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("report_sites") / "db"
    site_store(path, n=12)
    db = str(path)
    cli("analyze", "neurons", "--db", db, "--model", "m", "--sites", "*", "--k", "3", "--global-k", "10",
        "--boot", "50", "--quiet")
    cli("analyze", "probe", "--db", db, "--model", "m", "--points", "decoder.L1", "--folds", "3", "--quiet")
    Store.open(db).write_results(INTERVENTIONS_TABLE, _intervention_rows("m", with_new_columns=True),
                                 key=("model", "site", "neuron_set", "seed", "value", "lang"))
    return db


def _report(db: str, out: Path, *extra: str) -> str:
    cli("report", "--db", db, "--model", "m", "--out", out, "--no-compute", *extra)
    return out.read_text()


def test_the_page_draws_what_the_analyses_stored(site_db, tmp_path):
    page = _report(site_db, tmp_path / "r.html")
    found = sections(page)
    assert all(sid in found for sid in STUDY_SECTIONS) and BANNER not in page  # a trained model: no banner
    data, _ = page_data(page)
    spread = pl.DataFrame(data["nst_spread"])
    # speech vs text compares the same neurons under two conditionings: only decoder sites have both
    modality = spread.filter(pl.col("comparison") == "speech vs text")
    assert set(modality["stack"]) == {"decoder"}
    assert modality.filter(pl.col("site") == "decoder cross_attn.v")["n_top"].sum() > 0  # planted neuron 3
    assert spread.group_by("comparison").agg(pl.col("share").sum())["share"].to_list() == pytest.approx([1.0] * 3)
    stored = Store.open(site_db).read_results(LANGUAGE_PROBE_TABLE)
    probe = pl.DataFrame(data["nst_probe"]).sort("modality")
    np.testing.assert_allclose(probe["accuracy"].to_numpy(), stored.sort("modality")["accuracy"].to_numpy(),
                               atol=1e-4)
    assert probe.filter(pl.col("modality") == "text")["accuracy"][0] > 0.9  # planted: text carries the language
    conc = pl.DataFrame(data["nst_conc"])
    assert set(conc["script"]) == {"Latin", "Cyrillic", "Thai"}
    assert (conc["gini_lo"] <= conc["gini_hi"]).all()  # basic bootstrap: may sit below a biased estimate
    dec = conc.filter(pl.col("site") == "decoder cross_attn.v")  # planted: speech-conditioned more concentrated
    assert dec.filter(pl.col("modality") == "speech")["gini"].min() > dec.filter(pl.col("modality") == "text")["gini"].max()
    assert "decoder.L2.ffn" in found["neuron-sites"] and "decoder.L1.cross_attn.v" in found["neuron-sites"]
    assert len(draw_study_figures(page)) == 8  # spread, layers, overlap, iv, output language, gini, top share, probe


def test_interventions_are_drawn_beside_their_controls(site_db, tmp_path):
    page = _report(site_db, tmp_path / "r.html")
    data, _ = page_data(page)
    iv = pl.DataFrame(data["nst_iv"])
    assert set(iv["set"]) == {"top:eng", "random control", "displacement-matched control"}
    eng = iv.filter((pl.col("lang") == "eng") & (pl.col("kind") == "chosen")).row(0, named=True)
    assert (eng["delta_per_token"], eng["ci_low"], eng["lang_share_delta"]) == pytest.approx((-0.40, -0.45, -0.40))
    assert eng["lang_prob_delta"] is None  # stored empty (no first-step language step): not drawn
    assert "fig-nst-iv-prob" not in page and "fig-nst-iv-lang" in page
    table = sections(page)["interventions"]
    # the effect table: chosen -0.4 beside the random controls' mean (-0.01002) and the matched one
    # (-0.1); small changes keep their digits (the page rounds other datasets to 4 decimals)
    assert "-0.400000" in table and "-0.010020" in table and "-0.100000" in table and "seeds" in table
    assert -0.00004 in iv["delta_per_token"].to_list()
    assert "Output in the expected language" in table and "No bootstrap intervals" not in table


def test_intervention_rows_without_intervals_still_draw(tmp_path):
    path = tmp_path / "db"
    store = site_store(path, n=4)
    store.write_results(INTERVENTIONS_TABLE, _intervention_rows("m", with_new_columns=False),
                        key=("model", "site", "neuron_set", "seed", "value", "lang"))
    page = _report(str(path), tmp_path / "r.html")
    found = sections(page)
    assert "interventions" in found and "No bootstrap intervals are stored" in found["interventions"]
    assert "neuron-sites" not in found and "language-probe" not in found  # not analysed: not drawn
    assert draw_study_figures(page) == ["fig-nst-iv"]


def test_report_fills_the_study_in_and_keeps_sites_out_of_the_similarity_grids(tmp_path):
    path = tmp_path / "db"
    site_store(path, n=12)
    cli("report", "--db", path, "--model", "m", "--out", tmp_path / "r.html")
    store = Store.open(path)
    assert store.read_results("neuron_sites_top") is not None and store.read_results(LANGUAGE_PROBE_TABLE) is not None
    grid = store.read_results(SIMILARITY_TABLE)
    assert set(grid["depth"]) == {"decoder.L1"}  # the hidden states; never a site, never merged with an encoder
    assert all(sid in sections((tmp_path / "r.html").read_text()) for sid in ("neuron-sites", "language-probe"))


def test_a_store_without_neuron_results_gives_a_report_without_those_sections(tmp_path):
    path = tmp_path / "db"
    store = Store.open(path, create=True)
    rng = np.random.default_rng(0)
    for lang in ("eng", "fra"):
        for modality in ("speech", "text"):
            put(store, "plain", f"{modality}.L1", modality, lang, range(8), rng.standard_normal((8, 6)).astype(np.float32))
    out = cli("report", "--db", path, "--model", "plain", "--out", tmp_path / "r.html").output
    page = (tmp_path / "r.html").read_text()
    assert "Traceback" not in out and "neurons" in sections(page)  # the FLEURS-style neuron summaries stay
    assert not any(sid in sections(page) for sid in STUDY_SECTIONS) and "Neuron study" not in page
    assert store.read_results(LANGUAGE_PROBE_TABLE) is None  # nothing to probe: no decoder states


def test_a_page_of_several_models_holds_each_ones_study(tmp_path):
    path = tmp_path / "db"
    site_store(path, n=6)
    site_store(path, n=6, model="m2", seed=1)
    for model in ("m", "m2"):
        cli("analyze", "neurons", "--db", path, "--model", model, "--sites", "decoder.*", "--k", "3",
            "--global-k", "10", "--boot", "20", "--quiet")
    cli("report", "--db", path, "--model", "m", "--model", "m2", "--out", tmp_path / "r.html", "--no-compute")
    page = (tmp_path / "r.html").read_text()
    found = sections(page)
    assert {"m1-neuron-sites", "m2-neuron-sites", "m1-site-concentration", "m2-site-concentration"} <= set(found)
    assert "m2: Neuron study: where selective neurons sit" in page
    drawn = draw_study_figures(page)  # each model's charts read its own renamed datasets
    assert "m1-fig-nst-spread" in drawn and "m2-fig-nst-spread" in drawn


def test_site_names_of_every_family_are_analysed():
    from actstore.analyses.site_data import parse_site

    assert parse_site("speech.L3.ffn1").kind == "ffn1" and parse_site("speech.L3.ffn2").layer == 3
    assert parse_site("speech.llm.L4.ffn").stack == "speech.llm"
    assert parse_site("speech.L3") is None and parse_site("speech.L3.ffn3") is None
