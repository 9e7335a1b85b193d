"""Concentration statistics: known answers, and the coverage of their bootstrap interval by simulation."""

import numpy as np
import pytest

from actstore.errors import AnalysisInputError
from actstore.analyses.neurons import gini
from actstore.analyses.site_concentration import bootstrap_concentration, concentration_of


@pytest.mark.parametrize("d", [1, 10, 100, 250])
def test_gini_and_top_share_known_answers(d):
    one_hot = np.zeros(d)
    one_hot[d // 3] = 4.0
    g, share = concentration_of(np.stack([np.full(d, 2.0), one_hot]))
    assert g.tolist() == pytest.approx([0.0, (d - 1) / d], abs=1e-12)
    assert share.tolist() == pytest.approx([np.ceil(0.01 * d) / d, 1.0])  # top 1%: ceil(d / 100) neurons


def test_batched_gini_equals_the_single_vector_gini():
    v = np.random.default_rng(0).exponential(size=(5, 64))
    assert concentration_of(v)[0].tolist() == pytest.approx([gini(row) for row in v], abs=1e-12)


def _coverage(n: int, d: int, reps: int, seed: int) -> dict[str, float]:
    """Share of simulated groups whose 95% interval covers the true Gini / top share.

    Population: activation |a_ij| ~ Gamma(0.5, s_j) with s_j log-normal, so the true mean mass of
    neuron j is 0.5 s_j and the true statistics are those of that vector.
    """
    rng = np.random.default_rng(seed)
    scale = rng.lognormal(0.0, 1.0, d)
    true_g, true_s = (float(a[0]) for a in concentration_of(0.5 * scale[None, :]))
    hits = {"gini": 0, "top_share": 0, "gini_percentile": 0}
    for r in range(reps):
        x = rng.gamma(0.5, scale, size=(n, d))
        out = bootstrap_concentration(x, n_boot=200, seed=r)
        hits["gini"] += out["gini_lo"] <= true_g <= out["gini_hi"]
        hits["top_share"] += out["top_share_lo"] <= true_s <= out["top_share_hi"]
        # the percentile interval, recovered from the basic one: [2t - hi, 2t - lo]
        p_lo, p_hi = 2 * out["gini"] - out["gini_hi"], 2 * out["gini"] - out["gini_lo"]
        hits["gini_percentile"] += p_lo <= true_g <= p_hi
    return {k: v / reps for k, v in hits.items()}


def test_basic_bootstrap_interval_covers_about_95_percent():
    """30 items, 300 neurons, 400 groups: the basic interval covers the true Gini about 92% of
    the time and the top-1% share (3 neurons: a selection, less smooth) about 87%; the plain
    percentile interval covers the Gini far less often (the plug-in is biased upward).
    1,000 groups per setting gave: n=30/d=300 0.917/0.874, n=30/d=3000 0.970/0.913,
    n=100/d=3000 0.944/0.936, n=300/d=3000 0.936/0.942 (Gini/top share)."""
    cov = _coverage(n=30, d=300, reps=400, seed=7)
    assert 0.88 <= cov["gini"] <= 0.99, cov
    assert 0.80 <= cov["top_share"] <= 0.99, cov
    assert cov["gini_percentile"] < 0.6, cov


def test_bootstrap_refuses_too_few_items_or_resamples():
    with pytest.raises(AnalysisInputError, match="at least 2 items"):
        bootstrap_concentration(np.ones((1, 4)))
    with pytest.raises(AnalysisInputError, match="too few resamples"):
        bootstrap_concentration(np.ones((5, 4)), n_boot=3)


def test_noise_floor_is_what_a_flat_population_reads():
    """Every neuron with the same true mass (true Gini 0): the estimate is pure sampling noise,
    and `gini_noise_floor` predicts it (the interval does not cover 0 there: see the docstring)."""
    x = np.random.default_rng(4).gamma(0.5, 1.0, size=(30, 3000))
    out = bootstrap_concentration(x, n_boot=50)
    assert out["gini_noise_floor"] == pytest.approx(out["gini"], rel=0.15)
    assert out["gini_noise_floor"] == pytest.approx(np.sqrt(2 / 30) / np.sqrt(np.pi), rel=0.1)
