"""Known answers and identities of the single-pair measures (svcca, pwcca, cka, knn_alignment)."""

import numpy as np
import pytest

from actstore.errors import ActstoreError, AnalysisInputError
from actstore.analyses.similarity import SVCCAResult, cka, knn_alignment, pwcca, svcca


def planted(rng, n=200, dx=120, dy=80, rank=10, noise=0.05):
    z = rng.standard_normal((n, rank))
    x = z @ rng.standard_normal((rank, dx)) + noise * rng.standard_normal((n, dx))
    y = z @ rng.standard_normal((rank, dy)) + noise * rng.standard_normal((n, dy))
    return x, y


def rotated_copy(rng, x, scale=3.7):
    q, _ = np.linalg.qr(rng.standard_normal((x.shape[1], x.shape[1])))
    return scale * x @ q + rng.standard_normal(x.shape[1]) * 10.0


def test_shared_latent_scores_near_one_and_shuffle_far_below():
    rng = np.random.default_rng(0)
    x, y = planted(rng)
    # keep enough variance to hold the whole 10-dim latent on both sides (noise is 2.5e-4 of it);
    # at keep=0.9 each side would keep a different top part of the latent
    res = svcca(x, y, keep=0.999)
    assert isinstance(res, SVCCAResult)
    assert res.kx == res.ky == 10
    assert res.score > 0.99
    assert res.correlations.shape == (min(res.kx, res.ky),)
    assert np.all(np.diff(res.correlations) <= 1e-12)  # descending
    shuffled = svcca(x, y[rng.permutation(len(y))], keep=0.999)
    assert shuffled.score < 0.5
    for measure in (lambda a, b: pwcca(a, b).score, cka, knn_alignment):
        assert measure(x, y) > measure(x, y[rng.permutation(len(y))]) + 0.3


def test_rotated_scaled_shifted_copy_scores_one():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 50)) * np.linspace(3, 0.1, 50)
    y = rotated_copy(rng, x)
    res = svcca(x, y)
    assert res.kx == res.ky
    assert res.score == pytest.approx(1.0, abs=1e-6)
    assert pwcca(x, y).score == pytest.approx(1.0, abs=1e-6)
    assert cka(x, y) == pytest.approx(1.0, abs=1e-9)
    assert cka(x, y, debiased=True) == pytest.approx(1.0, abs=1e-9)


def test_pure_noise_inflation_at_study_size():
    rng = np.random.default_rng(2)
    scores = [svcca(rng.standard_normal((300, 1024)), rng.standard_normal((300, 1024))).score
              for _ in range(2)]
    assert 0.79 < np.mean(scores) < 0.83  # the study's ~0.81 small-n inflation


def test_keep_one_is_full_rank_not_zero_variance_directions():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 5)) @ rng.standard_normal((5, 30))  # rank 5
    y = rng.standard_normal((40, 30))
    res = svcca(x, y, keep=1.0)
    assert res.kx == 5 and res.ky == 30


def test_svcca_symmetry_and_bounds():
    rng = np.random.default_rng(4)
    x, y = planted(rng, noise=1.0)
    a, b = svcca(x, y), svcca(y, x)
    assert a.score == pytest.approx(b.score, abs=1e-12) and (a.kx, a.ky) == (b.ky, b.kx)
    assert 0.0 <= a.score <= 1.0
    assert np.all((a.correlations >= 0) & (a.correlations <= 1))


def test_torch_backend_matches_numpy():
    rng = np.random.default_rng(5)
    x, y = planted(rng, n=70, dx=90, dy=40, noise=0.8)
    for fn in (svcca, pwcca):
        a = fn(x, y, 0.9)
        b = fn(x, y, 0.9, backend="torch", device="cpu")
        assert (a.kx, a.ky) == (b.kx, b.ky)
        assert abs(a.score - b.score) < 1e-8
        np.testing.assert_allclose(a.correlations, b.correlations, atol=1e-8)


def test_pwcca_weights_and_bounds():
    rng = np.random.default_rng(6)
    x, y = planted(rng, noise=1.0)
    res = pwcca(x, y)
    assert res.weights.sum() == pytest.approx(1.0)
    assert np.all(res.weights >= 0)
    assert res.weights.shape == res.correlations.shape == (min(res.kx, res.ky),)
    assert res.correlations.min() - 1e-12 <= res.score <= res.correlations.max() + 1e-12
    # weights favour the well-correlated (latent) directions, so pwcca >= plain mean here
    assert res.score > svcca(x, y).score


def test_cka_identities():
    rng = np.random.default_rng(7)
    x, y = planted(rng, noise=1.0)
    assert cka(x, y) == pytest.approx(cka(y, x), abs=1e-12)
    assert 0.0 <= cka(x, y) <= 1.0
    assert cka(x, x) == pytest.approx(1.0)
    # invariance to orthogonal maps, isotropic scaling and shifts, on either side
    assert cka(rotated_copy(rng, x), y) == pytest.approx(cka(x, y), abs=1e-10)
    assert cka(rotated_copy(rng, x), y, debiased=True) == pytest.approx(
        cka(x, y, debiased=True), abs=1e-10)


def test_cka_known_answers():
    # orthogonal column spaces of centred data: CKA = 0 exactly
    x = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    y = np.array([[1.0], [1], [-1], [-1]])
    assert cka(x, y) == pytest.approx(0.0, abs=1e-15)
    # independent noise: biased CKA is inflated (~d/n), debiased is close to 0
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((100, 400)), rng.standard_normal((100, 400))
    assert cka(a, b) > 0.5
    assert abs(cka(a, b, debiased=True)) < 0.05


def test_cka_debiased_matches_kornblith_gram_formula():
    """Kornblith et al.'s `center_gram(unbiased=True)` form, written out independently."""
    rng = np.random.default_rng(9)
    x, y = planted(rng, n=30, noise=2.0)

    def center_unbiased(g):
        g = g.copy()
        n = g.shape[0]
        np.fill_diagonal(g, 0)
        means = g.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        g -= means[:, None] + means[None, :]
        np.fill_diagonal(g, 0)
        return g

    kx, ky = center_unbiased(x @ x.T), center_unbiased(y @ y.T)
    expected = (kx * ky).sum() / np.sqrt((kx * kx).sum() * (ky * ky).sum())
    assert cka(x, y, debiased=True) == pytest.approx(expected, abs=1e-10)


def test_knn_identities():
    rng = np.random.default_rng(10)
    x, y = planted(rng, noise=1.0)
    assert knn_alignment(x, x, k=5) == 1.0
    assert knn_alignment(x, y, k=5) == pytest.approx(knn_alignment(y, x, k=5))
    q, _ = np.linalg.qr(rng.standard_normal((x.shape[1],) * 2))
    row_scale = rng.uniform(0.5, 4.0, size=(x.shape[0], 1))
    assert knn_alignment(x * row_scale @ q, y, k=5) == pytest.approx(knn_alignment(x, y, k=5))
    assert 0.0 <= knn_alignment(x, y, k=5) <= 1.0


def test_knn_known_answer():
    # unit vectors at these angles: cosine neighbours follow the angle gaps (no ties)
    ax = np.array([0.0, 0.1, 0.3, 0.6, 1.0, 1.5])  # 1-NN: 1, 0, 1, 2, 3, 4
    ay = np.array([0.0, 0.5, 0.6, 0.75, 1.2, 1.5])  # 1-NN: 1, 2, 1, 2, 5, 4
    x, y = np.c_[np.cos(ax), np.sin(ax)], np.c_[np.cos(ay), np.sin(ay)]
    assert knn_alignment(x, x[:, ::-1], k=1) == 1.0  # a reflection keeps every angle
    assert knn_alignment(x, y, k=1) == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    "x, y, kwargs, fragment",
    [
        (np.ones((5, 3)), np.ones((6, 3)), {}, "rows must be paired"),
        (np.ones((2, 3)), np.ones((2, 3)), {}, "at least 3"),
        (np.full((5, 3), np.nan), np.ones((5, 3)), {}, "NaN"),
        (np.r_[np.ones((4, 3)), [[np.inf, 0, 0]]], np.ones((5, 3)), {}, "infinite"),
        (np.ones(5), np.ones((5, 3)), {}, "must be 2-D"),
        (np.ones((5, 3, 1)), np.ones((5, 3)), {}, "must be 2-D"),
        (np.eye(5), np.eye(5), {"keep": 0.0}, "outside (0, 1]"),
        (np.eye(5), np.eye(5), {"keep": 1.5}, "outside (0, 1]"),
        (np.ones((5, 3)), np.eye(5), {}, "zero variance"),
        (np.eye(5), np.eye(5), {"backend": "jax"}, "unknown"),
    ],
)
def test_svcca_bad_input(x, y, kwargs, fragment):
    with pytest.raises(AnalysisInputError, match="^[^\n]*$") as err:
        svcca(x, y, **kwargs)
    assert fragment in str(err.value)
    assert issubclass(err.type, ActstoreError)


def test_other_measures_bad_input():
    x = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(AnalysisInputError, match="at least 4"):
        cka(x[:3], x[:3], debiased=True)
    with pytest.raises(AnalysisInputError, match="k=5"):
        knn_alignment(x, x, k=5)
    with pytest.raises(AnalysisInputError, match="all-zero row"):
        knn_alignment(np.r_[x[:4], np.zeros((1, 3))], x, k=2)
    with pytest.raises(AnalysisInputError, match="rows must be paired"):
        pwcca(x, x[:4])
