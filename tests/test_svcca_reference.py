"""SVCCA against a straightforward reference written here from the definition.

Reference = google/svcca `cca_core.get_cca_similarity` applied after the study's SVD step:
centre, SVD-reduce each side to `keep` of the variance, then CCA from covariance matrices with
epsilon 1e-10 on the diagonals, score = mean of the min(kx, ky) canonical correlations.
"""

import numpy as np
import pytest

from actstore.analyses.similarity import svcca
from actstore.analyses.similarity.batched import PairRequest, score_pairs
from actstore.analyses.similarity.reduction import reduce_gram_block, sum_correlations


def reference_svcca(x, y, keep=0.9, eps=1e-10):
    def reduce(a):
        a = a - a.mean(axis=0)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        cum = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(cum, keep - 1e-10)) + 1
        return u[:, :k] * s[:k], k

    xr, kx = reduce(x)
    yr, ky = reduce(y)
    n = x.shape[0]
    sxx, syy, sxy = xr.T @ xr / (n - 1), yr.T @ yr / (n - 1), xr.T @ yr / (n - 1)
    xm, ym = np.abs(sxx).max(), np.abs(syy).max()
    sxx = sxx / xm + eps * np.eye(kx)
    syy = syy / ym + eps * np.eye(ky)
    sxy = sxy / np.sqrt(xm * ym)

    def inv_sqrt(a):
        w, v = np.linalg.eigh(a)
        return (v / np.sqrt(w)) @ v.T

    rho = np.linalg.svd(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy), compute_uv=False)
    return float(rho[: min(kx, ky)].mean()), kx, ky


def related(rng, n, dx, dy, rank=12, noise=1.0, offset=5.0):
    """Two sets sharing a latent, with a common offset like real activations."""
    z = rng.standard_normal((n, rank)) / np.sqrt(1 + np.arange(rank))
    x = z @ rng.standard_normal((rank, dx)) + noise * rng.standard_normal((n, dx))
    y = z @ rng.standard_normal((rank, dy)) + noise * rng.standard_normal((n, dy))
    return x + offset * rng.standard_normal(dx), y + offset * rng.standard_normal(dy)


SHAPES = [(60, 200, 200), (60, 200, 90), (150, 40, 70), (300, 30, 30), (40, 512, 16), (194, 256, 256)]


@pytest.mark.parametrize("n,dx,dy", SHAPES)
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_svcca_equals_reference(n, dx, dy, keep):
    rng = np.random.default_rng(n + dx + dy)
    x, y = related(rng, n, dx, dy)
    ref, kx, ky = reference_svcca(x, y, keep)
    res = svcca(x, y, keep)
    assert (res.kx, res.ky) == (kx, ky)
    assert res.score == pytest.approx(ref, abs=1e-6)
    batched = score_pairs({"x": x, "y": y}, [PairRequest("x", np.arange(n), "y", np.arange(n))],
                          keep=keep, null=False)
    assert batched["score"][0] == pytest.approx(ref, abs=1e-6)
    assert (batched["kx"][0], batched["ky"][0]) == (kx, ky)


def test_score_pairs_equals_reference_on_overlapping_and_repeated_subsets():
    rng = np.random.default_rng(7)
    x, y = related(rng, 160, 300, 220)
    w, _ = related(rng, 160, 40, 10)  # d < m - 1: the thin-SVD route
    sets = {"x": x, "y": y, "w": w}
    subsets = [
        (np.arange(0, 120), np.arange(0, 120)),
        (np.arange(40, 160), np.arange(40, 160)),  # overlaps the first
        (rng.permutation(160)[:100], None),  # shuffled order
        (np.r_[np.arange(60), np.arange(30)], None),  # repeated rows: rank < m - 1
        (rng.integers(0, 160, 150), None),  # bootstrap-style draw
    ]
    requests, expected = [], []
    for xr, yr in subsets:
        yr = xr if yr is None else yr
        for a, b in (("x", "y"), ("y", "x"), ("x", "w"), ("w", "y")):
            requests.append(PairRequest(a, xr, b, yr))
            expected.append(reference_svcca(sets[a][xr], sets[b][yr])[0])
    got = score_pairs(sets, requests, null=False)["score"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_complement_path_is_taken_and_matches_reference():
    # pure noise with n < d keeps most directions: kx + ky > m - 1, the complement branch
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((120, 400)), rng.standard_normal((120, 400))
    ref, kx, ky = reference_svcca(x, y)
    assert kx + ky > 119
    got = score_pairs({"x": x, "y": y}, [PairRequest("x", np.arange(120), "y", np.arange(120))],
                      null=False)["score"][0]
    assert got == pytest.approx(ref, abs=1e-6)


def _block(x, rows):
    x = x - x.mean(axis=0)
    return (x @ x.T)[np.ix_(rows, rows)]


@pytest.mark.parametrize("d", [300, 20])  # d < m - 1: the set's rank is below a, null directions
def test_complement_identity_holds_exactly(d):
    rng = np.random.default_rng(d)
    m = 80
    x, y = rng.standard_normal((m, d)), rng.standard_normal((m, d)) + 0.2 * rng.standard_normal((m, 1))
    rows = np.arange(m)
    for keep in (0.6, 0.9, 0.999):
        rx = reduce_gram_block(_block(x, rows), keep)
        ry = reduce_gram_block(_block(y, rows), keep)
        direct = sum_correlations(rx, ry, path="direct")
        comp = sum_correlations(rx, ry, path="complement")
        assert comp == pytest.approx(direct, abs=1e-9)
        perm = rng.permutation(m)
        assert sum_correlations(rx, ry, perm, path="complement") == pytest.approx(
            sum_correlations(rx, ry, perm, path="direct"), abs=1e-9)
        assert direct / min(rx.k, ry.k) == pytest.approx(reference_svcca(x, y, keep)[0], abs=1e-6)


def test_null_equals_reference_on_shuffled_rows():
    rng = np.random.default_rng(11)
    x, y = related(rng, 90, 200, 150)
    seed, rows = 5, np.arange(90)
    out = score_pairs({"x": x, "y": y}, [PairRequest("x", rows, "y", rows)], seed=seed)
    perm = np.random.default_rng([seed, 0]).permutation(90)  # documented: seeded by (seed, index)
    assert out["null"][0] == pytest.approx(reference_svcca(x, y[perm])[0], abs=1e-6)
