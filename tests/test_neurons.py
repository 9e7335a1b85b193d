"""Neuron-level measures: AP equals sklearn (ties included), planted dims, Gini known answers."""

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score

from actstore.errors import AnalysisInputError
from actstore.analyses.neurons import (
    activation_concentration,
    gini,
    modality_overlap,
    selectivity_ap,
    top_selective,
)


def _languages(n_per: int = 60, langs=("eng", "fra", "swh"), d: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array(langs), n_per)
    return rng.standard_normal((labels.size, d)), labels


def test_ap_equals_sklearn_per_column_with_ties():
    rng = np.random.default_rng(1)
    n, d = 300, 40
    x = rng.standard_normal((n, d))
    x[:, :10] = rng.integers(0, 4, size=(n, 10))  # heavy ties
    x[:, 10] = 0.0  # one tie group: AP = prior
    labels = rng.choice(["a", "b", "c"], size=n, p=[0.2, 0.3, 0.5])
    for target in ("a", "c"):
        y = labels == target
        ours = selectivity_ap(x, labels, target)
        ours_neg = selectivity_ap(x, labels, target, direction="negative")
        ref = [average_precision_score(y, x[:, j]) for j in range(d)]
        ref_neg = [average_precision_score(y, -x[:, j]) for j in range(d)]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours_neg, ref_neg, rtol=0, atol=1e-12)
        assert ours[10] == pytest.approx(y.mean())


def test_ap_equals_sklearn_for_float32_input():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 8)).astype(np.float32).round(1)  # float32 with ties
    labels = rng.integers(0, 3, size=200)
    ref = [average_precision_score(labels == 2, x[:, j]) for j in range(8)]
    np.testing.assert_allclose(selectivity_ap(x, labels, 2), ref, atol=1e-12)


def test_planted_dimension_gets_ap_one_and_rank_one():
    x, labels = _languages()
    x[labels == "fra", 7] += 10.0  # dim 7 fires for French only
    x[labels == "swh", 3] -= 10.0  # dim 3 is silent for Swahili only
    ap = selectivity_ap(x, labels, "fra")
    assert ap[7] == 1.0
    assert np.all(np.delete(ap, 7) < 0.8)
    top = top_selective(x, labels, k=5)
    fra = top.filter(pl.col("target") == "fra")
    assert fra.row(0, named=True) == {"target": "fra", "dim": 7, "ap": 1.0, "rank": 1, "sign": 1}
    assert top["target"].unique(maintain_order=True).to_list() == ["eng", "fra", "swh"]
    assert top.filter(pl.col("target") == "swh")["dim"][0] != 3  # unsigned misses the low dim
    signed = top_selective(x, labels, k=5, signed=True).filter(pl.col("target") == "swh")
    assert signed.row(0, named=True) == {"target": "swh", "dim": 3, "ap": 1.0, "rank": 1, "sign": -1}


def test_random_dimensions_score_about_the_class_prior():
    x, labels = _languages(n_per=400, d=64, seed=3)
    ap = selectivity_ap(x, labels, "eng")
    assert abs(ap.mean() - 1 / 3) < 0.02
    assert ap.max() < 0.45


def test_top_selective_ranks_are_ordered():
    x, labels = _languages(seed=4)
    top = top_selective(x, labels, k=10)
    assert top.shape == (30, 5)
    assert top_selective(x[:, :4], labels, k=10).shape == (12, 5)  # k > d lists every dim
    for _, g in top.group_by("target"):
        assert g["rank"].to_list() == list(range(1, 11))
        assert g["ap"].to_list() == sorted(g["ap"].to_list(), reverse=True)
        full = selectivity_ap(x, labels, g["target"][0])
        assert g["dim"].to_list() == np.argsort(-full, kind="stable")[:10].tolist()


def test_modality_overlap_counts_shared_dims():
    speech = pl.DataFrame({"target": ["eng"] * 3 + ["fra"] * 3, "dim": [1, 2, 3, 4, 5, 6]})
    text = pl.DataFrame({"target": ["eng"] * 3 + ["fra"] * 3 + ["deu"] * 3,
                         "dim": [3, 2, 9, 7, 8, 10, 1, 2, 3]})
    out = modality_overlap(speech, text, n_dims=100)
    assert out["target"].to_list() == ["eng", "fra"]
    assert out["n_shared"].to_list() == [2, 0]
    assert out["jaccard"].to_list() == [pytest.approx(2 / 4), 0.0]
    assert out["shared_dims"].to_list() == [[2, 3], []]
    assert out["expected_by_chance"].to_list() == [pytest.approx(0.09)] * 2


def test_modality_overlap_of_real_rankings():
    x, labels = _languages(seed=5)
    x[labels == "eng", 0] += 5
    top_s = top_selective(x[::2], labels[::2], k=3)
    top_t = top_selective(x[1::2], labels[1::2], k=3)
    out = modality_overlap(top_s, top_t)
    assert 0 in out.filter(pl.col("target") == "eng")["shared_dims"][0].to_list()


@pytest.mark.parametrize("d", [1, 2, 10, 1024])
def test_gini_known_answers(d):
    assert gini(np.full(d, 3.5)) == pytest.approx(0.0, abs=1e-12)
    one_hot = np.zeros(d)
    one_hot[d // 2] = 2.0
    assert gini(one_hot) == pytest.approx((d - 1) / d)


def test_gini_matches_mean_absolute_difference_definition():
    v = np.random.default_rng(6).exponential(size=50)
    mad = np.abs(v[:, None] - v[None, :]).sum() / (2 * v.size**2 * v.mean())
    assert gini(v) == pytest.approx(mad)
    assert gini(v) == pytest.approx(gini(7 * v))  # scale-free


def test_activation_concentration_per_group():
    x = np.ones((6, 4))
    x[3:] = 0.0
    x[3:, 1] = -2.0  # group "b": all mass on one dim (|activation| is used)
    out = activation_concentration(x, ["a", "a", "a", "b", "b", "b"])
    assert out["group"].to_list() == ["a", "b"]
    assert out["n"].to_list() == [3, 3]
    assert out["gini"].to_list() == [pytest.approx(0.0), pytest.approx(3 / 4)]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: selectivity_ap(np.ones((4, 2)), ["a"] * 4, "a"), "at least one other class"),
        (lambda: selectivity_ap(np.ones((4, 2)), ["a", "b", "a", "b"], "c"), "does not occur"),
        (lambda: selectivity_ap(np.ones((4, 2)), ["a", "b"], "a"), "one label per row"),
        (lambda: selectivity_ap(np.ones(4), ["a", "b", "a", "b"], "a"), "shape"),
        (lambda: selectivity_ap(np.full((2, 2), np.nan), ["a", "b"], "a"), "NaN"),
        (lambda: selectivity_ap(np.ones((2, 2)), ["a", "b"], "a", direction="up"), "direction"),
        (lambda: top_selective(np.ones((4, 2)), ["a"] * 4), "only one class"),
        (lambda: top_selective(np.ones((4, 2)), ["a", "b"] * 2, k=0), "positive integer"),
        (lambda: gini([1.0, -1.0]), "non-negative"),
        (lambda: gini([0.0, 0.0]), "all zero"),
        (lambda: gini([]), "non-empty"),
        (lambda: activation_concentration(np.ones((3, 2)), ["a"]), "one label per row"),
        (lambda: modality_overlap(pl.DataFrame({"x": [1]}), pl.DataFrame({"x": [1]})), "top_selective"),
    ],
)
def test_bad_input_is_one_clear_error(call, words):
    with pytest.raises(AnalysisInputError, match=words):
        call()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_ap_equals_sklearn_on_wide_neuron_columns_with_many_ties(seed):
    """Neuron columns as sites store them: float16 (coarse: many exact ties), post-ReLU zeros
    (one huge tie group at 0), a few constant columns, both directions, a rare and a common class."""
    rng = np.random.default_rng(seed)
    n, d = 257, 2048
    x = rng.standard_normal((n, d)).astype(np.float16)
    x = np.maximum(x, 0).astype(np.float32)  # ReLU: about half of each column ties at 0
    x[:, : d // 4] = rng.integers(0, 3, size=(n, d // 4))  # three values only
    x[:, -3:] = 1.5  # constant columns: AP = prior in both directions
    labels = rng.choice(["eng", "fra", "swh", "tha"], size=n, p=[0.05, 0.15, 0.3, 0.5])
    cols = rng.choice(d, size=64, replace=False).tolist() + [d - 1]
    for target in ("eng", "tha"):
        y = labels == target
        for direction, sign in (("positive", 1.0), ("negative", -1.0)):
            ours = selectivity_ap(x, labels, target, direction=direction)
            assert ours.shape == (d,)
            ref = [average_precision_score(y, sign * x[:, j]) for j in cols]
            np.testing.assert_allclose(ours[cols], ref, rtol=0, atol=1e-12)
            assert ours[-1] == pytest.approx(y.mean())


def test_ap_top_selective_k_above_width_lists_every_dimension():
    x, labels = _languages(d=6)
    assert top_selective(x, labels, k=1000).group_by("target").len()["len"].to_list() == [6, 6, 6]
