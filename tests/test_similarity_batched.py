"""The batched engine: equals the single-pair measures, reuses work correctly, refuses bad input."""

import numpy as np
import pytest

from actstore.errors import AnalysisInputError
from actstore.analyses.similarity import cka, knn_alignment, pwcca, svcca
from actstore.analyses.similarity.batched import PairRequest, _baseline, bootstrap_ci, random_baseline, score_pairs


@pytest.fixture(scope="module")
def grid():
    """Four sets of one point, two widths, sharing a latent; requests over overlapping subsets."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((90, 8))
    sets = {}
    for key, d in (("en-speech", 120), ("en-text", 120), ("fr-speech", 60), ("fr-text", 150)):
        sets[key] = z @ rng.standard_normal((8, d)) + rng.standard_normal((90, d)) + 4.0
    a, b = np.arange(0, 70), np.arange(15, 85)
    requests = [
        PairRequest("en-speech", a, "en-text", a),
        PairRequest("en-speech", b, "fr-speech", b),
        PairRequest("en-text", b, "fr-text", b),
        PairRequest("en-speech", b, "fr-text", b),
        PairRequest("fr-speech", b[::-1], "en-text", b[::-1]),
        PairRequest("en-speech", np.r_[a[:30], a[:30]], "fr-text", np.r_[a[:30], a[:30]]),
    ]
    return sets, requests


SINGLE = {
    "svcca": lambda x, y: svcca(x, y).score,
    "pwcca": lambda x, y: pwcca(x, y).score,
    "cka": cka,
    "cka_debiased": lambda x, y: cka(x, y, debiased=True),
    "knn": lambda x, y: knn_alignment(x, y, k=10),
}


@pytest.mark.parametrize("measure", sorted(SINGLE))
def test_score_pairs_equals_single_pair_measures(grid, measure):
    sets, requests = grid
    out = score_pairs(sets, requests, measure=measure, seed=3)
    for i, req in enumerate(requests):
        if measure == "knn" and i == 5:
            continue  # repeated rows are exact cosine ties: neighbour order is rounding noise
        x, y = sets[req.x_key][req.x_rows], sets[req.y_key][req.y_rows]
        assert out["score"][i] == pytest.approx(SINGLE[measure](x, y), abs=1e-8)
        perm = np.random.default_rng([3, i]).permutation(len(req.x_rows))
        assert out["null"][i] == pytest.approx(SINGLE[measure](x, y[perm]), abs=1e-8)
        assert out["n"][i] == len(req.x_rows)
        if measure in ("svcca", "pwcca"):  # request 5 repeats its rows: its span is 29, not 59
            assert out["forced"][i] == svcca(x, y).forced
    assert set(out) == {"score", "kx", "ky", "n", "forced", "null"}


def test_kx_ky_and_null_below_score(grid):
    sets, requests = grid
    out = score_pairs(sets, requests)
    for i, req in enumerate(requests):
        single = svcca(sets[req.x_key][req.x_rows], sets[req.y_key][req.y_rows])
        assert (out["kx"][i], out["ky"][i]) == (single.kx, single.ky)
    assert np.all(out["null"] < out["score"])


def test_results_do_not_depend_on_order_threads_or_batching(grid):
    sets, requests = grid
    base = score_pairs(sets, requests, n_jobs=1)
    order = [3, 0, 5, 1, 4, 2]
    shuffled = score_pairs(sets, [requests[i] for i in order], n_jobs=2)
    np.testing.assert_allclose(shuffled["score"], base["score"][order], atol=1e-12)
    alone = score_pairs(sets, requests[2:3])
    assert alone["score"][0] == pytest.approx(base["score"][2], abs=1e-12)
    again = score_pairs(sets, requests, n_jobs=2)
    np.testing.assert_array_equal(again["null"], base["null"])  # same seed, same null


def _keep_margin(x: np.ndarray, keep: float = 0.9) -> float:
    """How far the set's cumulative variance fractions stay from `keep`: kept counts from two
    routes (numpy SVD, torch eigh) agree exactly only when this is far above rounding."""
    s2 = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    return float(np.min(np.abs(np.cumsum(s2) / s2.sum() - keep)))


def test_torch_backend_matches_numpy(grid):
    sets, requests = grid
    subsets = [(r.x_key, r.x_rows) for r in requests] + [(r.y_key, r.y_rows) for r in requests]
    assert min(_keep_margin(sets[key][rows]) for key, rows in subsets) > 1e-4  # kx, ky: by design
    a = score_pairs(sets, requests, backend="numpy")
    b = score_pairs(sets, requests, backend="torch", device="cpu")
    np.testing.assert_allclose(b["score"], a["score"], atol=1e-8, rtol=0)
    np.testing.assert_allclose(b["null"], a["null"], atol=1e-8, rtol=0)
    np.testing.assert_array_equal(b["kx"], a["kx"])
    np.testing.assert_array_equal(b["ky"], a["ky"])


def test_progress_reports_every_request(grid):
    sets, requests = grid
    seen = []
    score_pairs(sets, requests, null=False, progress=seen.append)
    assert sum(seen) == len(requests)


def test_random_baseline_is_chance_level_and_cached():
    low_n = random_baseline(40, 200, 200)
    assert 0.75 < low_n < 0.95  # k approaches n: inflated
    assert random_baseline(400, 20, 20) < 0.3  # n >> d: near zero
    hits = _baseline.cache_info().hits
    assert random_baseline(40, 200, 200) == low_n  # deterministic ...
    assert _baseline.cache_info().hits == hits + 1  # ... and served from the cache, not recomputed
    assert abs(random_baseline(60, 100, 100, measure="cka_debiased")) < 0.05


def test_bootstrap_interval_brackets_the_score(grid):
    sets, requests = grid
    req = requests[1]
    score = score_pairs(sets, [req], null=False)["score"][0]
    low, high = bootstrap_ci(sets, req, measure="svcca", keep=0.9, n_boot=30, seed=0)
    assert low < score < high  # the percentile interval holds the full-sample score
    assert high - low < 0.1  # and is informative at n = 70
    assert (low, high) == bootstrap_ci(sets, req, measure="svcca", keep=0.9, n_boot=30, seed=0)


@pytest.mark.parametrize(
    "make, kwargs, fragment",
    [
        (lambda s: [PairRequest("de", np.arange(5), "en-text", np.arange(5))], {}, "not in sets"),
        (lambda s: [PairRequest("en-text", np.arange(5), "fr-text", np.arange(6))], {}, "same number"),
        (lambda s: [PairRequest("en-text", np.arange(2), "fr-text", np.arange(2))], {}, "at least 3"),
        (lambda s: [PairRequest("en-text", np.arange(85, 95), "fr-text", np.arange(10))], {},
         "outside 0..89"),
        (lambda s: [PairRequest("en-text", np.linspace(0, 5, 6), "fr-text", np.arange(6))], {},
         "integer row indices"),
        (lambda s: [("en-text", np.arange(5), "fr-text", np.arange(5))], {}, "PairRequest"),
        (lambda s: [PairRequest("en-text", np.arange(5), "fr-text", np.arange(5))],
         {"measure": "rsa"}, "unknown"),
        (lambda s: [PairRequest("en-text", np.arange(5), "fr-text", np.arange(5))],
         {"keep": 2.0}, "outside (0, 1]"),
        (lambda s: [PairRequest("en-text", np.arange(8), "fr-text", np.arange(8))],
         {"measure": "knn", "k": 10}, "at least 11"),
        (lambda s: [PairRequest("en-text", np.arange(5), "fr-text", np.arange(5))],
         {"backend": "numpy", "device": "cuda"}, "backend='torch'"),
    ],
)
def test_bad_requests_raise_one_clear_sentence(grid, make, kwargs, fragment):
    sets, _ = grid
    with pytest.raises(AnalysisInputError, match="^[^\n]*$") as err:
        score_pairs(sets, make(sets), **kwargs)
    assert fragment in str(err.value)


def test_bad_set_raises(grid):
    sets, _ = grid
    bad = dict(sets, **{"en-text": np.where(np.eye(90, 120) > 0, np.nan, 1.0)})
    with pytest.raises(AnalysisInputError, match="NaN"):
        score_pairs(bad, [PairRequest("en-text", np.arange(5), "fr-text", np.arange(5))])
    const = dict(sets, **{"en-text": np.ones((90, 120))})
    with pytest.raises(AnalysisInputError, match="zero variance"):
        score_pairs(const, [PairRequest("en-text", np.arange(5), "fr-text", np.arange(5))])


def test_request_groups_are_the_connected_components_of_shared_subsets():
    """The work groups (requests that share a reduced subset run together) are exactly the
    connected components networkx finds on the subset graph, each in request order."""
    nx = pytest.importorskip("networkx")
    from actstore.analyses.similarity.batched import _MAX_COMPONENT, _components

    rng = np.random.default_rng(4)
    for n_nodes, n_edges in ((5, 3), (30, 20), (200, 150), (20, 300)):
        keys = [(("s", int(a)), ("s", int(b))) for a, b in rng.integers(0, n_nodes, (n_edges, 2))]
        graph = nx.Graph()
        graph.add_edges_from(keys)
        expected = []
        for nodes in nx.connected_components(graph):
            members = [i for i, (a, _) in enumerate(keys) if a in nodes]
            expected.append([members[j:j + _MAX_COMPONENT] for j in range(0, len(members), _MAX_COMPONENT)])
        expected = sorted((chunk for chunks in expected for chunk in chunks), key=lambda c: c[0])
        assert sorted(_components(keys), key=lambda c: c[0]) == expected
    assert _components([]) == []
