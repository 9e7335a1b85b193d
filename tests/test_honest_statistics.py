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
from actstore.analyses.similarity.forced import all_forced, forced_correlations
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
        assert unit == forced_correlations(res.kx, res.ky, n) == res.forced


def test_forced_vectorised_and_zero_for_measures_without_directions():
    got = forced_correlations(np.array([5, 2, -1]), np.array([6, 2, -1]), np.array([8, 3, 10]))
    assert got.tolist() == [4, 2, 0]
    assert all_forced(2, 2, 3) and not all_forced(5, 6, 8)


def test_n3_scores_one_for_any_data():
    """With n = 3 every correlation is forced: SVCCA is 1.0 for unrelated noise."""
    rng = np.random.default_rng(0)
    res = svcca(rng.standard_normal((3, 50)), rng.standard_normal((3, 50)))
    assert res.score == pytest.approx(1.0) and all_forced(res.kx, res.ky, 3)


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
    assert (frame["score"] == 1.0).all()  # the failure: SVCCA = baseline = null = 1.0 ...
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
    # the ambiguity, shown: rotate the singular vectors inside the block of unit correlations
    xc, yc = x - x.mean(0), y - y.mean(0)
    ux, sx, _ = np.linalg.svd(xc, full_matrices=False)
    uy, sy, _ = np.linalg.svd(yc, full_matrices=False)
    ux, sx, uy, sy = ux[:, : res.kx], sx[: res.kx], uy[:, : res.ky], sy[: res.ky]
    a, rho, bt = np.linalg.svd(ux.T @ uy, full_matrices=False)
    vecs, s = (a, sx) if res.kx <= res.ky else (bt.T, sy)  # the side with fewer directions
    block = int(np.count_nonzero(rho > 1 - 1e-8))
    q = np.linalg.qr(rng.standard_normal((block, block)))[0]
    vecs2 = vecs.copy()
    vecs2[:, :block] = vecs[:, :block] @ q  # still a valid SVD of U_x^T U_y (rho = 1 on the block)
    scores = [float((w / w.sum()) @ rho) for w in (np.abs(vecs).T @ s, np.abs(vecs2).T @ s)]
    assert abs(scores[0] - scores[1]) > 1e-3
    assert np.isnan(pwcca_from_bases(ux, sx, uy, sy)[0])
    assert not is_degenerate(np.ones(4))  # all ones: any basis gives 1, still defined


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
