"""Honest statistics (issue 10, items 8-10): forced correlations, PWCCA's definition and its
degenerate regime, and mutual kNN's neutral handling of ties."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from actstore.analyses.grids import GridOptions, forced_warning, similarity_grid
from actstore.analyses.similarity import knn_alignment, pwcca, svcca
from actstore.analyses.similarity.batched import PairRequest, score_pairs
from actstore.analyses.similarity.forced import all_forced, centred_span, forced_correlations, row_classes
from actstore.analyses.similarity.knn import knn_from_grams, neighbour_weights
from actstore.analyses.similarity.pwcca import is_degenerate, pwcca_from_bases
from actstore.errors import AnalysisInputError
from actstore.store import Store

from _store_data import put


# ------------------------------------------------------------------------- item 8: forced count
@pytest.mark.parametrize("n, dx, dy", [(20, 30, 30), (25, 100, 60), (40, 30, 30), (12, 5, 40), (3, 8, 8)])
def test_forced_formula_counts_unit_correlations(n, dx, dy):
    """On random data, exactly max(0, kx + ky - (n - 1)) correlations are 1 (to 1e-8)."""
    rng = np.random.default_rng(n * 1000 + dx)
    for _ in range(3):
        res = svcca(rng.standard_normal((n, dx)), rng.standard_normal((n, dy)), keep=0.9)
        unit = int(np.count_nonzero(res.correlations > 1 - 1e-8))
        assert unit == forced_correlations(res.kx, res.ky, n - 1) == res.forced


def test_forced_vectorised_and_zero_for_measures_without_directions():
    got = forced_correlations(np.array([5, 2, -1]), np.array([6, 2, -1]), np.array([7, 2, 9]))
    assert got.tolist() == [4, 2, 0]
    assert all_forced(2, 2, 2) and not all_forced(4, 5, 6) and not all_forced(0, 5, 6)


def test_n3_scores_one_for_any_data():
    """With n = 3 every correlation is forced: SVCCA is 1.0 for unrelated noise."""
    rng = np.random.default_rng(0)
    res = svcca(rng.standard_normal((3, 50)), rng.standard_normal((3, 50)))
    assert res.score == pytest.approx(1.0) and all_forced(res.forced, res.kx, res.ky)


def _unit_count_outside(x: np.ndarray, y: np.ndarray, kx: int, ky: int) -> int:
    """Canonical correlations equal to 1, counted independently of actstore: principal angles
    (scipy's subspace_angles) of the top-kx/ky left singular vectors of the centred sets."""
    from scipy.linalg import subspace_angles

    ux = np.linalg.svd(x - x.mean(0), full_matrices=False)[0][:, :kx]
    uy = np.linalg.svd(y - y.mean(0), full_matrices=False)[0][:, :ky]
    return int(np.count_nonzero(subspace_angles(ux, uy) < 1e-6))


@pytest.mark.parametrize("d, expect", [(128, 15), (192, 33)])
def test_repeated_rows_force_correlations_by_their_rank(d, expect):
    """300 rows holding 100 distinct ones span 99 centred dimensions, not 299: the count follows
    the rank (the old n - 1 formula said 0), as an outside count of unit correlations confirms."""
    rng = np.random.default_rng(0)
    x, y = np.tile(rng.standard_normal((100, d)), (3, 1)), np.tile(rng.standard_normal((100, d)), (3, 1))
    res = svcca(x, y)
    assert res.kx + res.ky - 299 <= 0  # what n - 1 would have said: nothing forced
    assert res.forced == res.kx + res.ky - 99 == expect
    assert _unit_count_outside(x, y, res.kx, res.ky) == expect
    rows = np.arange(300)
    out = score_pairs({"x": x, "y": y}, [PairRequest("x", rows, "y", rows)], null=False)
    assert out["forced"].tolist() == [expect] and out["score"][0] == pytest.approx(res.score, abs=1e-9)
    # repeated row indices (a bootstrap draw) count as repeated rows too
    base_x, base_y = x[:100], y[:100]
    drawn = score_pairs({"x": base_x, "y": base_y}, [PairRequest("x", rows % 100, "y", rows % 100)], null=False)
    assert drawn["forced"].tolist() == [expect]


def test_centred_span_is_the_rank_of_the_centred_row_pattern():
    """span = rank of the centred class indicators [1_x | 1_y] (checked with matrix_rank), and
    n - 1 when either side has no repeated row."""
    rng = np.random.default_rng(5)
    for _ in range(40):
        n = int(rng.integers(3, 30))
        lx, ly = rng.integers(0, int(rng.integers(1, n + 1)), n), rng.integers(0, int(rng.integers(1, n + 1)), n)
        indicators = np.c_[(lx[:, None] == np.unique(lx)), (ly[:, None] == np.unique(ly))]
        centred = indicators - indicators.mean(0)
        assert centred_span(lx, ly) == np.linalg.matrix_rank(centred)
    assert centred_span(np.arange(6), np.zeros(6, dtype=int)) == 5
    labels = row_classes(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))
    assert labels[0] == labels[2] != labels[1]


def test_forced_warning_counts_repeated_rows(tmp_path):
    """A grid on sentences whose vectors repeat stores the rank-based count and warns about it."""
    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    for modality in ("speech", "text"):
        base = rng.standard_normal((40, 64)).astype(np.float32)
        put(store, "m", f"{modality}.L1", modality, "eng", range(1, 121), np.tile(base, (3, 1)))
    frame = similarity_grid(store, "m", "cross-modal", options=GridOptions(null=False))
    row = frame.row(0, named=True)
    assert row["n"] == 120 and row["forced"] == row["kx"] + row["ky"] - 39 > 0
    assert "are 1 by construction" in forced_warning(frame)


def _two_depth_store(tmp_path, n_ids=8, width=16):
    store = Store.open(tmp_path / "db")
    rng = np.random.default_rng(0)
    for lang in ("eng", "fra"):
        for modality in ("speech", "text"):
            put(store, "m", f"{modality}.L1", modality, lang, range(1, n_ids + 1),
                rng.standard_normal((n_ids, width)).astype(np.float32))
    return store


def test_grid_stores_forced_and_warns_at_n3(tmp_path):
    store = _two_depth_store(tmp_path)
    frame = similarity_grid(store, "m", "all", options=GridOptions(n=3))
    assert {"kx", "ky", "forced", "degenerate"} <= set(frame.columns)
    expect = np.maximum(0, frame["kx"].to_numpy() + frame["ky"].to_numpy() - (frame["n"].to_numpy() - 1))
    assert frame["forced"].to_list() == expect.tolist()
    # the failure: SVCCA = baseline = null = 1.0 (to rounding: forced ones are 1 - O(1e-16)) ...
    np.testing.assert_allclose(frame["score"].to_numpy(), 1.0, rtol=0, atol=1e-12)
    message = forced_warning(frame)  # ... is no longer silent
    assert message is not None and "1.0 whatever the data" in message and message.count(". ") == 0
    big = similarity_grid(store, "m", "cross-modal", options=GridOptions(keep=0.5))
    assert forced_warning(big.filter(pl.col("forced") == 0)) is None


@pytest.mark.parametrize("n, message", [(1, "span at most 0 direction"), (2, "span at most 1 direction"),
                                        (0, "not a positive number"), (-5, "not a positive number")])
def test_bad_n_gives_the_true_reason(tmp_path, n, message):
    store = _two_depth_store(tmp_path)
    with pytest.raises(AnalysisInputError, match=message):
        similarity_grid(store, "m", "cross-modal", options=GridOptions(n=n))


# ------------------------------------------------------------------- item 9: what PWCCA computes
def _morcos_reference(x: np.ndarray, y: np.ndarray, keep: float) -> float:
    """Morcos et al.'s PWCCA written out the long way: covariance CCA with explicit whitening on
    the principal components, canonical variates h_i = X_r Sxx^-1/2 u_i, alpha_i ∝ sum_j |<h_i, z_j>|."""
    def reduce(a):
        ac = a - a.mean(0)
        u, s, _ = np.linalg.svd(ac, full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), keep - 1e-10)) + 1
        return u[:, :k] * s[:k]
    xr, yr = reduce(x), reduce(y)
    def inv_sqrt(c):
        w, v = np.linalg.eigh(c)
        return v @ np.diag(w**-0.5) @ v.T
    sxx, syy, sxy = xr.T @ xr, yr.T @ yr, xr.T @ yr
    wx, wy = inv_sqrt(sxx), inv_sqrt(syy)
    u, rho, vt = np.linalg.svd(wx @ sxy @ wy)
    if xr.shape[1] <= yr.shape[1]:
        h, z, r = xr @ wx @ u[:, : xr.shape[1]], xr, xr.shape[1]
    else:
        h, z, r = yr @ wy @ vt.T[:, : yr.shape[1]], yr, yr.shape[1]
    h = h / np.linalg.norm(h, axis=0)
    alpha = np.abs(h.T @ z).sum(axis=1)
    alpha /= alpha.sum()
    return float(alpha @ rho[:r])


def test_pwcca_is_morcos_formula_on_principal_components():
    rng = np.random.default_rng(3)
    latent = rng.standard_normal((200, 5))
    x = latent @ rng.standard_normal((5, 30)) + 0.5 * rng.standard_normal((200, 30))
    y = latent @ rng.standard_normal((5, 20)) + 0.5 * rng.standard_normal((200, 20))
    got = pwcca(x, y, keep=0.9)
    assert got.forced == 0 and not got.degenerate
    assert got.score == pytest.approx(_morcos_reference(x, y, 0.9), abs=1e-8)


def test_pwcca_is_undefined_when_correlations_are_forced():
    """Two valid SVDs of the same problem give different PWCCA: the score is not a function of
    the data, so it is NaN, flagged and warned about."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 30)), rng.standard_normal((20, 30))
    with pytest.warns(RuntimeWarning, match="PWCCA is undefined"):
        res = pwcca(x, y)
    assert res.forced >= 2 and res.degenerate and np.isnan(res.score)
    assert not is_degenerate(np.ones(4))  # all ones: any basis gives 1, still defined


def test_pwcca_weights_depend_on_the_basis_of_the_unit_block():
    """Why the score is undefined, by construction: with canonical correlations (1, 1, 0.5), the
    identity and a 45-degree turn inside the unit block are both valid singular vectors of
    U_x^T U_y, and PWCCA's weights |a|^T s give 7/9 and (5 sqrt 2 + 2)/(5 sqrt 2 + 4), 0.04 apart."""
    e = np.eye(4)
    ux = e[:, :3]
    uy = np.c_[e[:, 0], e[:, 1], 0.5 * e[:, 2] + np.sqrt(0.75) * e[:, 3]]
    s = np.array([4.0, 1.0, 4.0])
    rho = np.linalg.svd(ux.T @ uy, compute_uv=False)
    np.testing.assert_allclose(rho, [1.0, 1.0, 0.5], atol=1e-12)
    turn = np.eye(3)
    turn[:2, :2] = np.array([[1.0, -1.0], [1.0, 1.0]]) / np.sqrt(2)
    for a in (np.eye(3), turn):  # both are valid: a^T (U_x^T U_y) b = diag(rho) with b = (U_x^T U_y)^T a / rho
        b = (ux.T @ uy).T @ a / rho
        np.testing.assert_allclose(a.T @ (ux.T @ uy) @ b, np.diag(rho), atol=1e-12)
        np.testing.assert_allclose(b.T @ b, np.eye(3), atol=1e-12)
    scores = [float((w / w.sum()) @ rho) for w in (np.abs(a).T @ s for a in (np.eye(3), turn))]
    assert scores[0] == pytest.approx(7 / 9, abs=1e-12)
    assert scores[1] == pytest.approx((5 * np.sqrt(2) + 2) / (5 * np.sqrt(2) + 4), abs=1e-12)
    assert abs(scores[0] - scores[1]) > 0.04
    assert np.isnan(pwcca_from_bases(ux, s, uy, s)[0])  # so actstore refuses to pick one


def test_batched_pwcca_is_nan_and_grid_flags_it(tmp_path):
    rng = np.random.default_rng(2)
    sets = {"x": rng.standard_normal((20, 30)), "y": rng.standard_normal((20, 30))}
    rows = np.arange(20)
    out = score_pairs(sets, [PairRequest("x", rows, "y", rows)], measure="pwcca", null=True)
    assert np.isnan(out["score"][0]) and np.isnan(out["null"][0])
    store = _two_depth_store(tmp_path, n_ids=20, width=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = similarity_grid(store, "m", "cross-modal", options=GridOptions(measure="pwcca"))
    assert (frame["forced"] >= 2).all()
    assert frame["degenerate"].all() and frame["score"].null_count() == frame.height
    assert "PWCCA scores are undefined" in forced_warning(frame)


# ------------------------------------------------------------------ item 10: kNN ties, neutrally
def _tied_sets():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((20, 6))
    x = np.r_[base, base, base]  # every row has two exact duplicates
    y = x @ rng.standard_normal((6, 6))
    y[:20] += 0.3 * rng.standard_normal((20, 6))
    return x, y


def test_knn_on_duplicate_rows_does_not_depend_on_row_order():
    x, y = _tied_sets()
    scores = {round(knn_alignment(x[p], y[p], k=4), 12)
              for p in [np.arange(60)] + [np.random.default_rng(s).permutation(60) for s in range(6)]}
    assert len(scores) == 1  # lowest-index tie-breaking gave 0.6625-0.6875 here


def test_knn_ties_count_as_the_expected_overlap_under_random_tie_breaks():
    x, y = _tied_sets()
    k, n = 4, x.shape[0]
    gx, gy = x @ x.T, y @ y.T
    exact = knn_from_grams(gx, gy, k)

    def random_sets(g, rng):
        norms = np.sqrt(np.diag(g))
        cos = g / norms[:, None] / norms[None, :]
        np.fill_diagonal(cos, -np.inf)
        cos = np.round(cos, 9)  # exact duplicates tie exactly
        out = np.zeros_like(cos, dtype=bool)
        for i in range(n):
            order = np.lexsort((rng.random(n), -cos[i]))[:k]
            out[i, order] = True
        return out

    rng = np.random.default_rng(0)
    draws = [(random_sets(gx, rng) & random_sets(gy, rng)).sum() / (n * k) for _ in range(300)]
    assert exact == pytest.approx(np.mean(draws), abs=3 * np.std(draws) / np.sqrt(len(draws)) + 1e-3)


def test_knn_weights_without_ties_are_the_plain_neighbour_sets():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((15, 4))
    w = neighbour_weights(x @ x.T, 3)
    assert set(np.unique(w)) <= {0.0, 1.0} and (w.sum(axis=1) == 3).all()
    w_tied = neighbour_weights(np.r_[x, x] @ np.r_[x, x].T, 1)
    assert np.allclose(w_tied.sum(axis=1), 1.0)
