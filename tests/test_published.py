"""The study's published numbers (package data) beside ours in the comparison report.

- The shipped data file parses and holds exactly the numbers ../shared/DESIGN.md section 5 gives
  (parsed from DESIGN.md here, so a typo in either fails).
- A store with known results (the similarity rows follow the formulas of tests/_report_fixtures,
  so "ours" is a known value) is reported with `write_report`: the study's checkpoint with trained
  weights gets published, ours and ours - published; a random-init model of a study architecture
  gets the published values only, under the random-init banner; a trained model of the same
  family but another checkpoint gets published values only until a `systems` mapping says which
  system it is; a bad mapping is one sentence and writes nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import _report_fixtures as fx
from _store_data import activation_rows
from actstore.analyses.grids import save_grid
from actstore.errors import ReportError
from actstore.published import available, load_published
from actstore.store import Store
from actstore.workflows.report import write_report

DESIGN = Path(__file__).resolve().parents[1].parent / "shared" / "DESIGN.md"
SYSTEM_WORDS = {"SeamlessM4T": "seamless-m4t-v2", "SONAR": "sonar", "SALMONN": "salmonn"}
REAL, RANDOM, OTHER = "seamless-m4t-v2-large", "tiny-random-sonar", "my-salmonn"
LAYERS = {"embed": 0, "L4": 4, "L12": 12, "L24": 24}  # fixture depths; L24 is the final one


def _design_numbers() -> dict[tuple[str, str, str], float]:
    """(system, metric, group) -> value, read from DESIGN.md section 5's sentence on the study."""
    text = " ".join(DESIGN.read_text().split())
    cm = re.search(r"final-layer cross-modal SVCCA \(all/high/medium/low resource\): (.*?); final cross-lingual", text)
    xl = re.search(r"final cross-lingual \(speech-speech/text-text\): ([\d./, ]+?)\. ", text)
    assert cm and xl, "DESIGN.md section 5 no longer states the published numbers as this test reads them"
    out = {}
    for part in cm.group(1).split(", "):
        word, values = re.match(r"(\w+)\D*?([\d./]+)$", part).groups()
        for group, value in zip(("all", "high", "medium", "low"), values.split("/")):
            out[(SYSTEM_WORDS[word], "cross-modal", group)] = float(value)
    for system, pair in zip(SYSTEM_WORDS.values(), xl.group(1).split(", ")):
        for kind, value in zip(("speech-speech", "text-text"), pair.split("/")):
            out[(system, "cross-lingual", kind)] = float(value)
    return out


def test_data_file_matches_design_md():
    if not DESIGN.exists():
        pytest.skip(f"{DESIGN} is not beside the checkout")
    design = _design_numbers()
    assert len(design) == 18
    assert available() == ["naacl2025"]
    pub = load_published()
    shipped = {(r["system"], r["metric"], r["group"]): r["published"] for r in pub.frame.iter_rows(named=True)}
    assert shipped == design
    assert "Niehues" in pub.citation and "NAACL 2025" in pub.citation and pub.url.startswith("https://")
    assert pub.measure == "svcca" and all(pub.frame["where"].str.len_chars() > 10)


def _known_ours() -> dict[tuple[str, str], float]:
    """Our final-depth numbers by the fixture formulas (L24, d = 3), computed independently."""
    d = len(fx.DEPTHS) - 1
    scores = [fx.cross_modal_score(i, d) for i in range(len(fx.LANGS))]
    out = {("cross-modal", "all"): float(np.mean(scores))}
    for level in ("high", "medium", "low"):
        out[("cross-modal", level)] = float(np.mean([s for s, lv in zip(scores, fx.LEVELS) if lv == level]))
    for kind in ("speech-speech", "text-text"):  # same-language pairs left out; lower triangle stored
        out[("cross-lingual", kind)] = float(np.mean([fx.cross_lingual_score(kind, i, j, d)
                                                      for i in range(len(fx.LANGS)) for j in range(i)]))
    return out


def _add_model(store: Store, model: str, *, model_id: str, adapter: str, random_init: bool) -> None:
    """A model with speech and text at four depths, its run, and similarity rows of known scores."""
    run = store.start_run({"model": model, "model_id": model_id, "adapter": adapter, "random_init": random_init,
                           "source": "flores+espeak", "langs": list(fx.LANGS), "modalities": ["speech", "text"]})
    rng = np.random.default_rng(0)
    for depth, layer in LAYERS.items():
        for modality in ("speech", "text"):
            point = f"{modality}.{depth}"  # one write per point: every language at once
            store.register_points(model, [{"point": point, "modality": modality, "layer": layer, "width": 8,
                                           "vector_dtype": "float32"}])
            store.write_activations(model, 8, pa.concat_tables([
                activation_rows(model, point, modality, lang, range(4), rng.normal(size=(4, 8)).astype(np.float32),
                                layer=layer, run_id=run, resource_level=level)
                for lang, level in zip(fx.LANGS, fx.LEVELS)]), replace=False)
    store.finish_run(run, status="complete", n_items=4 * len(fx.LANGS), n_rows=4 * len(fx.LANGS) * 8)
    save_grid(store, _grid(model, random_init))


def _grid(model: str, random_init: bool) -> pl.DataFrame:
    """The fixture's similarity rows as the analysis stores them (its key columns and stamps)."""
    level = dict(zip(fx.LANGS, fx.LEVELS))
    return fx.similarity().with_columns(
        pl.lit(model).alias("model"), pl.lit(random_init).alias("random_init"),
        pl.col("depth").replace_strict(LAYERS, return_dtype=pl.Int32).alias("layer"), pl.col("point_order").cast(pl.Int64),
        (pl.col("modality_a") + "." + pl.col("depth")).alias("point"),
        (pl.col("modality_b") + "." + pl.col("depth")).alias("point_b"),
        pl.col("lang_b").replace_strict(level).alias("resource_level_b"),
        pl.lit(False).alias("degenerate"), pl.lit(0, pl.Int32).alias("n_limit"), pl.lit(0.9).alias("keep"),
        pl.lit(0).alias("seed"), pl.lit(10, pl.Int32).alias("knn_k"), pl.lit("random").alias("recording"),
        pl.lit("flores200:devtest").alias("corpus"),
        pl.when(pl.col("kind") == "cross-modal").then(pl.lit("cross-modal")).otherwise(pl.lit("pairwise"))
        .alias("pairing"), pl.lit(1).alias("store_version"),
        pl.lit(datetime(2026, 1, 6, tzinfo=timezone.utc)).alias("computed_at"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store.open(tmp_path_factory.mktemp("published") / "store.lance", create=True)
    _add_model(store, REAL, model_id="facebook/seamless-m4t-v2-large", adapter="seamless-m4t-v2", random_init=False)
    _add_model(store, RANDOM, model_id="/tmp/models/tiny-random-sonar", adapter="sonar", random_init=True)
    _add_model(store, OTHER, model_id="/models/salmonn-13b", adapter="salmonn", random_init=False)
    return store


def _section(page: Path) -> str:
    """The published section's HTML."""
    html = page.read_text()
    start = html.index('<section id="published">')
    return html[start:html.index("</section>", start)]


def test_real_checkpoint_gets_the_difference_random_init_published_only(store, tmp_path):
    result = write_report(store, [REAL, RANDOM, OTHER], tmp_path / "r.html", compute=False)
    rows, known = result.published, _known_ours()
    pub = {(r["metric"], r["group"]): r["published"] for r in load_published().frame.filter(
        pl.col("system") == "seamless-m4t-v2").iter_rows(named=True)}
    real = rows.filter(pl.col("model") == REAL)
    assert real["compared"].all() and real["how"].unique().to_list() == ["model id"]
    assert real.height == 6 and real["depth"].unique().to_list() == ["L24"]
    for r in real.iter_rows(named=True):
        key = (r["metric"], r["group"])
        assert r["ours"] == pytest.approx(known[key], abs=1e-9)
        assert r["difference"] == pytest.approx(known[key] - pub[key], abs=1e-9)
    assert known[("cross-modal", "all")] == pytest.approx(0.825)  # the formula, by hand: mean of 0.80..0.85
    # random-init and another checkpoint of a study family: published values only, never a difference
    for model, system in ((RANDOM, "sonar"), (OTHER, "salmonn")):
        other = rows.filter(pl.col("model") == model)
        assert other.height == 6 and other["system"].unique().to_list() == [system]
        assert other["ours"].is_null().all() and other["difference"].is_null().all()

    section = _section(result.path)
    assert "Niehues" in section and "aclanthology.org/2025.naacl-short.51" in section
    compared, rest = section.split("RANDOM-INIT", 1)[0], section.split("RANDOM-INIT", 1)[1]
    assert f"{known[('cross-modal', 'all')] - pub[('cross-modal', 'all')]:.3f}" in compared  # -0.076
    assert "ours − published" in compared and "tiny-random-sonar" in rest
    assert '<div class="banner">RANDOM-INIT model: tiny-random-sonar' in section
    assert "ours − published" not in rest and "0.926" in rest  # SONAR's published value, alone
    assert f"{OTHER}: published values only" in section


def test_one_model_page_closes_with_the_published_numbers(store, tmp_path):
    real = write_report(store, [REAL], tmp_path / "one.html", compute=False)
    assert real.published["compared"].all() and real.published.height == 6
    page = real.path.read_text()
    assert page.index('<section id="published">') > page.index('<section id="cross-modal">')
    assert "-0.076" in _section(real.path)
    random_init = write_report(store, [RANDOM], tmp_path / "random.html", compute=False)
    section = _section(random_init.path)
    assert '<div class="banner">RANDOM-INIT model: tiny-random-sonar' in section
    assert "ours − published" not in section and random_init.published["difference"].is_null().all()


def test_mapping_says_which_system_a_model_is(store, tmp_path):
    result = write_report(store, [REAL, OTHER], tmp_path / "m.html", compute=False,
                          systems={OTHER: "salmonn"})
    mine = result.published.filter(pl.col("model") == OTHER)
    assert mine["compared"].all() and mine["how"].unique().to_list() == ["mapping"]
    pub = load_published().frame.filter(pl.col("system") == "salmonn")
    cm_all = mine.filter((pl.col("metric") == "cross-modal") & (pl.col("group") == "all"))
    assert cm_all["difference"][0] == pytest.approx(0.825 - pub.filter(pl.col("group") == "all")["published"][0])
    # another measure than the paper's: published values only, and the page says why
    cka = write_report(store, [REAL, OTHER], tmp_path / "c.html", compute=False, measure="cka",
                       systems={OTHER: "salmonn"})
    assert cka.published["ours"].is_null().all()
    assert "rerun with <code>--measure svcca</code>" in _section(cka.path)
    none = write_report(store, [REAL, OTHER], tmp_path / "n.html", compute=False, published=None)
    assert none.published is None and '<section id="published">' not in none.path.read_text()


@pytest.mark.parametrize("systems, message", [
    ({OTHER: "whisper"}, "'whisper', which is not a system of the naacl2025 study; use one of: seamless-m4t-v2"),
    ({"nobody": "sonar"}, "names 'nobody', which is not among the report's models"),
])
def test_bad_mapping_is_one_sentence_and_writes_nothing(store, tmp_path, systems, message):
    with pytest.raises(ReportError, match=re.escape(message)):
        write_report(store, [REAL, OTHER], tmp_path / "bad.html", systems=systems)
    assert not (tmp_path / "bad.html").exists()
