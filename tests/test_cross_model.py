"""Cross-model analyses (issue 15, item 4): one model's point against another's on shared ids.

Synthetic stores with a planted shared signal: model `sp` (speech, width 24) and model `tx`
(text, width 16) encode the same latent per sentence; model `noise` encodes nothing. Scores are
checked against the study's SVCCA computed directly on the id-aligned matrices
(`analyses.similarity.svcca.svcca`, itself checked against google/svcca's reference), and the
rows' identity (both models in the key) against what the store keeps.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from actstore.analyses.cross_model import cross_model_grid, load_cross_model, save_cross_model
from actstore.analyses.grids import GridOptions, load_grid, save_grid, similarity_grid
from actstore.analyses.similarity.svcca import svcca
from actstore.cli import main
from actstore.errors import AnalysisInputError
from actstore.store import Store

from _store_data import put

LANGS = ("eng", "fra")
IDS = np.arange(1, 61)


def _latent(lang: str) -> np.ndarray:
    seed = {"eng": 11, "fra": 12}[lang]
    return np.random.default_rng(seed).standard_normal((IDS.size, 4))


def _encode(z: np.ndarray, width: int, seed: int, noise: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (z @ rng.standard_normal((z.shape[1], width)) + noise * rng.standard_normal((z.shape[0], width))).astype(np.float32)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("xm") / "s.lance", create=True)
    for i, lang in enumerate(LANGS):
        z = _latent(lang)
        for layer in (1, 2):
            put(s, "sp", f"speech.L{layer}", "speech", lang, IDS, _encode(z, 24, 100 + 10 * i + layer), layer=layer)
            put(s, "sp", f"text.L{layer}", "text", lang, IDS, _encode(z, 24, 200 + 10 * i + layer), layer=layer)
        # model tx stores its rows in reverse id order: pairing must go by id, not position
        put(s, "tx", "text.L1", "text", lang, IDS[::-1], _encode(z, 16, 300 + i)[::-1], layer=1)
        put(s, "noise", "text.L1", "text", lang, IDS,
            np.random.default_rng(400 + i).standard_normal((IDS.size, 16)).astype(np.float32), layer=1)
    return s


def test_scores_equal_direct_svcca_on_id_aligned_sets(store):
    rows = cross_model_grid(store, "sp", "tx", options=GridOptions(null=False))
    assert rows.height == 2 * 1 * len(LANGS)  # depths of A x depths of B x languages
    assert set(rows["kind"]) == {"cross-model"} and set(rows["model_b"]) == {"tx"}
    for r in rows.iter_rows(named=True):
        i = LANGS.index(r["lang_a"])
        layer = int(r["depth"][1:])
        direct = svcca(_encode(_latent(r["lang_a"]), 24, 100 + 10 * i + layer), _encode(_latent(r["lang_a"]), 16, 300 + i))
        assert r["score"] == pytest.approx(direct.score, abs=1e-6)
        assert (r["kx"], r["ky"], r["n"]) == (direct.kx, direct.ky, IDS.size)
        assert r["score"] > r["baseline"] + 0.2  # the planted signal, far above chance


def test_an_unrelated_model_scores_at_its_baseline_and_the_null(store):
    rows = cross_model_grid(store, "sp", "noise", depths_a=["L1"])
    for r in rows.iter_rows(named=True):
        assert abs(r["score"] - r["baseline"]) < 0.1 and abs(r["score"] - r["null"]) < 0.1


def test_mutual_knn_across_widths_finds_shared_neighbours(store):
    rows = cross_model_grid(store, "sp", "tx", depths_a=["L1"], options=GridOptions(measure="knn", knn_k=5))
    noise = cross_model_grid(store, "sp", "noise", depths_a=["L1"], options=GridOptions(measure="knn", knn_k=5))
    assert rows["score"].min() > noise["score"].max() + 0.2


def test_rows_are_kept_per_model_pair_and_stay_out_of_the_models_own_grid(store):
    save_grid(store, similarity_grid(store, "sp", "cross-modal", options=GridOptions(null=False)))
    save_cross_model(store, cross_model_grid(store, "sp", "tx", options=GridOptions(null=False)))
    save_cross_model(store, cross_model_grid(store, "sp", "noise", options=GridOptions(null=False)))
    own = load_grid(store, "sp")
    assert set(own["kind"]) == {"cross-modal"}
    both = load_cross_model(store, "sp")
    assert both.group_by("model_b").len().sort("model_b").rows() == [("noise", 4), ("tx", 4)]
    assert load_cross_model(store, "sp", "tx").height == 4


@pytest.mark.parametrize("args, message", [
    (dict(model_b="tx", modality_b="speech"), "Model 'tx' stores no speech activations (only text); pass another modality."),
    (dict(model_b="sp", modality_a="speech", modality_b="speech"), "compared with itself in one modality"),
    (dict(model_b="tx", options=GridOptions(corpus="fleurs:test")), "Corpus 'fleurs:test' is not stored for model 'sp'"),
    (dict(model_b="tx", options=GridOptions(n=61)), "--n 61 exceeds the shared ids"),
])
def test_bad_input_is_one_sentence(store, args, message):
    with pytest.raises(AnalysisInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cross_model_grid(store, "sp", **args)


def test_cli_prints_the_depth_pair_summary(store):
    result = CliRunner().invoke(main, ["analyze", "cross-model", "--db", store.uri, "--model", "sp", "--model-b", "tx",
                                       "--points", "L2", "--no-null", "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model,"))
    summary = pl.read_csv("\n".join(lines[start:]).encode())
    assert summary.select("model", "model_b", "depth", "depth_b", "languages").rows() == [("sp", "tx", "L2", "L1", 2)]
