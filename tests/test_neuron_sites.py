"""analyze neurons over neuron sites and analyze probe, on a synthetic store with planted units."""

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score

from actstore.errors import AnalysisInputError
from actstore.store import Store
from actstore.analyses.neuron_sites import site_neuron_tables
from actstore.analyses.probe import language_probe, probe_accuracy, wilson
from actstore.analyses.site_data import load_site, model_sites, parse_site

from _cli import cli
from _site_store import SITES, site_store

SITE_TABLES = ("neuron_sites_top", "neuron_sites_spread", "neuron_sites_overlap", "site_concentration")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("sites") / "db"
    site_store(path)
    return path


@pytest.fixture(scope="module")
def tables(db):
    return site_neuron_tables(Store.open(db), "m", k=3, global_k=20, n_boot=100)


def _top(frame, **eq):
    for column, value in eq.items():
        frame = frame.filter(pl.col(column) == value)
    return frame.sort("rank") if "rank" in frame.columns else frame


def test_site_names_parse_into_stack_layer_and_type():
    assert parse_site("decoder.L5.cross_attn.v").__dict__ == {
        "name": "decoder.L5.cross_attn.v", "stack": "decoder", "layer": 5, "kind": "cross_attn.v"}
    assert parse_site("speech.L3.ffn").kind == "ffn"
    assert parse_site("decoder.L5") is None and parse_site("speech.L3.mlp") is None


def test_sites_are_listed_in_model_order_and_by_glob(db):
    store = Store.open(db)
    assert [s.name for s in model_sites(store, "m")] == [
        "speech.L1.ffn", "speech.L2.ffn", "text.L1.ffn", "decoder.L1.cross_attn.v", "decoder.L2.ffn"]
    assert [s.name for s in model_sites(store, "m", ["decoder.*.cross_attn.*"])] == ["decoder.L1.cross_attn.v"]


def test_planted_neurons_rank_first_in_their_comparison(tables):
    top = tables["neuron_sites_top"]
    rus = _top(top, depth="speech.L2.ffn", target_kind="language", target="rus", within="speech",
               direction="positive")
    assert (rus["neuron"][0], rus["ap"][0]) == (5, 1.0)
    for lang in ("eng", "rus", "tha"):  # modality-selective on the decoder's cross-attention values
        mod = _top(top, depth="decoder.L1.cross_attn.v", target_kind="modality", target="speech", within=lang,
                   direction="positive")
        assert (mod["neuron"][0], mod["ap"][0], mod["prior"][0]) == (3, 1.0, 0.5)
    tha = _top(top, depth="decoder.L1.cross_attn.v", target_kind="language", target="tha", within="text",
               direction="negative")
    assert (tha["neuron"][0], tha["ap"][0]) == (9, 1.0)
    # encoder sites hold one modality: no speech-vs-text comparison there (different neurons)
    assert top.filter(pl.col("stack") != "decoder", pl.col("target_kind") == "modality").height == 0


def test_site_ap_equals_sklearn_on_the_stored_columns(db, tables):
    rows = load_site(Store.open(db), "m", "decoder.L2.ffn")
    speech = rows.mask(modality="speech")
    y = rows.meta["lang"].to_numpy()[speech] == "eng"
    top = _top(tables["neuron_sites_top"], depth="decoder.L2.ffn", target="eng", within="speech",
               direction="negative")
    for neuron, ap in zip(top["neuron"], top["ap"]):
        assert ap == pytest.approx(average_precision_score(y, -rows.x[speech][:, neuron]), abs=1e-12)


def test_spread_counts_the_global_top_per_site(tables):
    spread = tables["neuron_sites_spread"]
    for _, grp in spread.group_by("target_kind", "target", "within", "direction"):
        assert grp["n_top"].sum() == 20 == grp["global_k"][0]
        assert grp["expected"].sum() == pytest.approx(20)
    tha = _top(spread, target_kind="language", target="tha", within="text", direction="positive")
    assert tha.sort("n_top")["depth"][-1] == "decoder.L2.ffn"
    speech_universe = set(_top(spread, target="rus", within="speech", direction="positive")["depth"])
    assert speech_universe == {"speech.L1.ffn", "speech.L2.ffn", "decoder.L1.cross_attn.v", "decoder.L2.ffn"}


def test_speech_and_text_top_sets_overlap_on_the_shared_neuron(tables):
    ov = tables["neuron_sites_overlap"]
    assert set(ov["depth"]) == {"decoder.L1.cross_attn.v", "decoder.L2.ffn"}
    tha = ov.filter(pl.col("depth") == "decoder.L2.ffn", pl.col("lang") == "tha", pl.col("direction") == "positive")
    assert 7 in tha["shared_neurons"][0].to_list()
    assert tha["expected_by_chance"][0] == pytest.approx(9 / SITES["decoder.L2.ffn"])


def test_speech_conditioned_decoding_is_more_concentrated(tables):
    conc = tables["site_concentration"].filter(pl.col("depth") == "decoder.L2.ffn", pl.col("lang") != "all")
    for lang in ("eng", "rus", "tha"):
        s = conc.filter(pl.col("lang") == lang, pl.col("modality") == "speech").row(0, named=True)
        t = conc.filter(pl.col("lang") == lang, pl.col("modality") == "text").row(0, named=True)
        assert s["gini_lo"] > t["gini_hi"] and s["top_share"] > t["top_share"]
        # the interval is bias-corrected (basic bootstrap): it may sit below the upward-biased estimate
        assert s["gini_lo"] < s["gini_hi"] and s["gini_bias"] > 0 and s["script"] in ("Latin", "Cyrillic", "Thai")
    pooled = tables["site_concentration"].filter(pl.col("lang") == "all", pl.col("script") == "Thai",
                                                 pl.col("depth") == "decoder.L2.ffn")
    assert set(pooled["modality"]) == {"speech", "text"} and pooled["n"].to_list() == [30, 30]


def test_probe_separable_reaches_one_and_inseparable_stays_near_chance(db):
    frame = language_probe(Store.open(db), "m", points=["decoder.L1"], folds=5, seed=0)
    text = frame.filter(pl.col("modality") == "text").row(0, named=True)
    speech = frame.filter(pl.col("modality") == "speech").row(0, named=True)
    assert text["accuracy"] >= 0.95 and text["fold_mean"] >= 0.95
    assert speech["chance"] == pytest.approx(1 / 3) and speech["n"] == 90
    assert speech["ci_lo"] <= 1 / 3 + 0.05 and speech["accuracy"] < 0.6


def test_probe_on_balanced_random_labels_is_chance_within_folds():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 20))
    labels = np.repeat(["a", "b", "c", "d"], 50)
    out = probe_accuracy(x, labels, folds=4, seed=1)
    assert out["chance"] == 0.25 and out["ci_lo"] < 0.25 < out["ci_hi"] + 0.05
    x[:, 0] += 5.0 * (labels == "a")
    x[:, 1] += 5.0 * (labels == "b")
    x[:, 2] += 5.0 * (labels == "c")
    assert probe_accuracy(x, labels, folds=4, seed=1)["accuracy"] > 0.95


def test_wilson_interval_known_answer():
    lo, hi = wilson(8, 10)  # textbook: 0.490 .. 0.943
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)


def test_cli_neurons_over_sites_and_probe(tmp_path):
    db = tmp_path / "db"
    site_store(db, n=12)
    out = cli("analyze", "neurons", "--db", db, "--model", "m", "--k", "4", "--global-k", "10", "--boot", "20",
              "--quiet")
    for table in SITE_TABLES:
        assert f"saved to table {table!r}" in out.output
    store = Store.open(db)
    assert store.read_results("neuron_sites_top", "model = 'm'").height > 0
    out = cli("analyze", "probe", "--db", db, "--model", "m", "--points", "decoder.L*", "--folds", "3", "--quiet")
    assert "decoder.L1 (text): accuracy" in out.output and "chance 0.333" in out.output
    assert store.read_results("language_probe", "model = 'm'").height == 2


@pytest.mark.parametrize("args, words", [
    (("neurons", "--k", "17", "--sites", "text.L1.ffn"), "exceeds the width of site text.L1.ffn"),
    (("neurons", "--sites", "decoder.L9.ffn"), "not stored"),
    (("neurons", "--langs", "eng,xxx"), "not stored"),
    (("probe", "--langs", "eng"), "at least two languages"),
    (("probe", "--folds", "40"), "fewer than the 40 folds"),
])
def test_bad_input_is_one_sentence_and_leaves_the_store_unchanged(tmp_path, args, words):
    db = tmp_path / "db"
    site_store(db, n=12)
    out = cli("analyze", args[0], "--db", db, "--model", "m", *args[1:], "--quiet", code=None)
    assert out.exit_code != 0 and words in out.output
    store = Store.open(db)
    for table in (*SITE_TABLES, "language_probe"):
        assert store.read_results(table, "model = 'm'") is None


def test_probe_refuses_a_class_smaller_than_the_folds():
    with pytest.raises(AnalysisInputError, match="fewer than the 5 folds"):
        probe_accuracy(np.ones((7, 2)), ["a"] * 5 + ["b"] * 2)
    with pytest.raises(AnalysisInputError, match="at least two languages"):
        probe_accuracy(np.ones((7, 2)), ["a"] * 7)


def test_neuron_study_rows_summarise_the_stored_tables(db, tables):
    from actstore.analyses.probe import language_probe
    from actstore.reports import neuron_study

    probe = neuron_study.probe_rows(language_probe(Store.open(db), "m", points=["decoder.L1"], folds=3))
    assert set(probe["modality"]) == {"speech", "text"} and {"accuracy", "chance"} <= set(probe.columns)
    cells = neuron_study.spread_rows(tables["neuron_sites_spread"])
    cross = cells.filter((pl.col("site") == "decoder cross_attn.v") & (pl.col("comparison") == "speech vs text"))
    assert cross.height and cross["n_top"][0] > 0
    conc = neuron_study.concentration_rows(tables["site_concentration"])
    assert set(conc["script"]) == {"Latin", "Cyrillic", "Thai"}  # languages pooled per script
    for chart in (neuron_study.spread_heatmap("a"), neuron_study.concentration_chart("b"),
                  neuron_study.probe_chart("c")):
        assert chart.to_dict()["data"]["name"] in "abc"  # named datasets: the page stores each once


def test_k_above_a_point_width_is_refused_too(tmp_path):
    db = tmp_path / "db"
    site_store(db, n=12)
    out = cli("analyze", "neurons", "--db", db, "--model", "m", "--points", "decoder.L1", "--k", "13", "--quiet",
              code=None)
    assert out.exit_code != 0 and "exceeds the width of decoder.L1 (12 dimensions)" in out.output
    assert Store.open(db).read_results("neurons_top", "model = 'm'") is None
