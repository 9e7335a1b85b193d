"""Similarity intervals cover what they claim: the score's mean over draws of n sentences.

The coverage checks draw data from planted models (X = Z A + noise, Y = Z B + noise) with a fixed
seed, so they are deterministic; their acceptance bands are binomial (see `binomial_band`) so a
correct method passes them for any seed but the old row bootstrap cannot.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from actstore.analyses.similarity import Measure, Score
from actstore.analyses.similarity.batched import PairRequest, score_pairs
from actstore.analyses.similarity.interval_coverage import Planted, binomial_band, check_coverage
from actstore.analyses.similarity.intervals import split_intervals, split_plan, split_sd
from actstore.errors import AnalysisInputError

#: replicates of the coverage test: the 99.9% binomial band around 0.95 is [0.909, 0.991]
REPLICATES = 300
SMALL = Planted(n=40, d=16, k=3, noise=1.0)


def test_binomial_band_is_the_one_written_in_the_tests():
    low, high = binomial_band(0.95, REPLICATES)
    assert low == pytest.approx(0.909, abs=5e-4) and high == pytest.approx(0.991, abs=5e-4)


@pytest.fixture(scope="module")
def small_svcca():
    return check_coverage(SMALL, truth_draws=300, replicates=REPLICATES, rounds=20,
                          old_replicates=30, old_resamples=20, n_jobs=1)


def test_nominal_95_covers_the_mean_at_n(small_svcca):
    low, high = binomial_band(0.95, REPLICATES)  # [0.909, 0.991]
    assert low <= small_svcca.coverage <= high
    # the width is calibrated, not just wide: mean half-width ~ 1.96 SD(T_n) (a 2x too wide
    # interval would cover ~100% and still pass a loose coverage band)
    ratio = small_svcca.half_width / (1.959964 * small_svcca.sd)
    assert 0.8 < ratio < 1.3


def test_old_row_bootstrap_fails_the_same_check(small_svcca):
    # the bug of issue 14: duplicated rows inflate SVCCA, so the percentile interval of the
    # resamples lies above the score and misses the mean (30 replicates: 0.5 is > 10 SDs away)
    assert small_svcca.old_coverage < 0.5
    assert small_svcca.old_above > 0.5


@pytest.mark.parametrize("measure", ["cka", "cka_debiased"])
def test_coverage_holds_for_other_measures(measure):
    # biased CKA's variance falls slower than 1/n (rate ~0.5-0.7): the quarters must catch it
    result = check_coverage(Planted(n=40, d=12, k=2, noise=1.5, seed=3), measure=measure,
                            truth_draws=300, replicates=200, rounds=20, n_jobs=1)
    low, high = binomial_band(0.95, 200)  # [0.899, 1.0]
    assert low <= result.coverage <= high
    assert 0.85 < result.half_width / (1.959964 * result.sd) < 1.4


def _sets(n=50, d=10, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    return {"a": z @ rng.standard_normal((3, d)) + rng.standard_normal((n, d)),
            "b": z @ rng.standard_normal((3, d)) + rng.standard_normal((n, d))}


def test_interval_is_centred_on_the_unchanged_score_and_deterministic():
    sets = _sets()
    reqs = [PairRequest("a", np.arange(50), "b", np.arange(50)),
            PairRequest("a", np.arange(10, 44), "b", np.arange(10, 44))]
    scores = score_pairs(sets, reqs, null=False)["score"]
    low, high = split_intervals(sets, reqs, scores, rounds=10, seed=4)
    assert np.allclose((low + high) / 2, scores) and (low < scores).all() and (scores < high).all()
    again = split_intervals(sets, reqs, scores, rounds=10, seed=4, n_jobs=1)
    assert np.array_equal(again[0], low) and np.array_equal(again[1], high)
    other = split_intervals(sets, reqs, scores, rounds=10, seed=5)
    assert not np.array_equal(other[0], low)
    wider = split_intervals(sets, reqs, scores, rounds=10, seed=4, level=0.99)
    assert (wider[0] < low).all() and (wider[1] > high).all()


def test_engine_batches_do_not_change_the_intervals(monkeypatch):
    import actstore.analyses.similarity.intervals as intervals

    sets = _sets()
    reqs = [PairRequest("a", np.arange(50), "b", np.arange(50)),
            PairRequest("a", np.arange(8, 40), "b", np.arange(8, 40))]
    scores = score_pairs(sets, reqs, null=False)["score"]
    whole = split_intervals(sets, reqs, scores, rounds=6)
    monkeypatch.setattr(intervals, "_CHUNK", 5)  # 72 subsamples in 15 engine calls
    chunked = split_intervals(sets, reqs, scores, rounds=6)
    assert np.array_equal(whole[0], chunked[0]) and np.array_equal(whole[1], chunked[1])


def test_subsamples_are_disjoint_and_never_repeat_a_row():
    plan = split_plan(43, rounds=5, seed=0, index=2)
    assert plan.shape == (5, 4, 10)  # quarters of (43 // 2) // 2 rows; halves are two quarters
    for quarters in plan:
        assert len(set(quarters.ravel().tolist())) == 40  # disjoint, no repeats; 3 rows sit out


def test_rate_is_one_unless_the_data_say_slower():
    halves = np.array([[0.5, 0.7], [0.6, 0.6]])  # V_h = mean(0.04, 0) / 2 = 0.01, h = 20
    assert split_sd(halves, None, 40) == pytest.approx(np.sqrt(0.01 * 20 / 40))
    spread = lambda v: np.array([[0.0, 0.0, 1.0, 1.0]]) * np.sqrt(3 * v)  # ddof=1 variance v
    # quarters twice as variable as halves: the 1/n rate (beta = 1)
    assert split_sd(halves, spread(0.02), 40) == pytest.approx(np.sqrt(0.01 / 2))
    # four times (faster than 1/n): never believed, still beta = 1
    assert split_sd(halves, spread(0.04), 40) == pytest.approx(np.sqrt(0.01 / 2))
    # only 1.41 times (slower, as biased CKA's): beta = 0.5, a wider interval
    assert split_sd(halves, spread(0.01 * np.sqrt(2)), 40) == pytest.approx(np.sqrt(0.01 / np.sqrt(2)))
    # quarters LESS variable than halves: beta stops at 0 (never more spread at n than at n/2)
    assert split_sd(halves, spread(0.005), 40) == pytest.approx(0.1)


class NoRepeats(Measure):
    """A protocol-only measure that refuses repeated rows (as a rank-sensitive one would need)."""

    description = "mean of column correlations (test only)"

    def restrict(self, prepared, rows):
        if len(set(rows.tolist())) != rows.size:
            raise AnalysisInputError("repeated rows")
        return prepared[rows]

    def score(self, sx, sy, perm=None):
        sy = sy if perm is None else sy[perm]
        return Score(float(np.mean([np.corrcoef(sx[:, j], sy[:, j])[0, 1] for j in range(sx.shape[1])])))


def test_any_measure_runs_through_the_protocol_without_repeated_rows():
    sets = _sets(d=6)
    req = [PairRequest("a", np.arange(50), "b", np.arange(50))]
    score = score_pairs(sets, req, measure=NoRepeats(), null=False)["score"]
    low, high = split_intervals(sets, req, score, measure=NoRepeats(), rounds=8)
    assert low[0] < score[0] < high[0]


def test_too_few_rows_give_no_interval_and_bad_scores_one_sentence():
    sets = _sets()
    req = [PairRequest("a", np.arange(5), "b", np.arange(5))]  # halves of 2 rows < 3
    low, high = split_intervals(sets, req, np.array([0.5]), rounds=4)
    assert np.isnan(low[0]) and np.isnan(high[0])
    with pytest.raises(AnalysisInputError, match=r"^scores has shape \(2,\).*one score per request"):
        split_intervals(sets, req, np.array([0.5, 0.6]), rounds=4)
    with pytest.raises(AnalysisInputError, match=r"^requests\[0\] rows must be 1-D and of equal length"):
        split_intervals(sets, [PairRequest("a", np.arange(9), "b", np.arange(8))], np.array([0.5]), rounds=4)
    assert np.isnan(split_sd(np.array([[np.nan, 0.5], [0.4, np.nan]]), None, 40))
    with pytest.raises(AnalysisInputError, match="rounds"):
        split_intervals(sets, req, np.array([0.5]), rounds=1)


def _report_store(tmp_path):
    """Two languages, speech and text of 60 shared sentences, one depth: a planted shared latent."""
    from _store_data import put
    from actstore.store import Store

    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    ids = np.arange(1, 61)
    z = rng.standard_normal((61, 4))[ids]
    for lang in ("eng", "fra"):
        for modality in ("speech", "text"):
            x = z @ rng.standard_normal((4, 24)) + rng.standard_normal((60, 24))
            put(store, "m", f"{modality}.L1", modality, lang, ids, x.astype(np.float32), layer=1)
    return store


def test_report_bootstrap_draws_intervals_around_unchanged_scores(tmp_path):
    from click.testing import CliRunner

    from actstore.analyses.grids import load_grid, similarity_grid
    from actstore.cli import main

    store = _report_store(tmp_path)
    plain = similarity_grid(store, "m", "cross-modal").sort("lang_a")
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "db"), "--model", "m",
                                       "--out", str(out), "--bootstrap", "8"])
    assert result.exit_code == 0, result.output
    rows = load_grid(store, "m").filter(pl.col("kind") == "cross-modal").sort("lang_a")
    assert rows["score"].to_list() == plain["score"].to_list()  # only the intervals are new
    assert ((rows["ci_low"] < rows["score"]) & (rows["score"] < rows["ci_high"])).all()
    page = out.read_text()
    assert "band: mean per-language 95% interval of the mean score at n" in page  # drawn only with intervals
