"""Retrieval: known answers, LASER's xsim margin, tie rules, backends and bad input."""

import numpy as np
import pytest
import torch

from actstore.errors import AnalysisInputError
from actstore.analyses.retrieval import retrieval_scores, topk_cosine

from _isolated import run_isolated


def _clustered_pair(n: int, d: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d)).astype(np.float32)
    return base + noise * rng.standard_normal((n, d)).astype(np.float32), base


def _hub_example() -> tuple[np.ndarray, np.ndarray]:
    """A = e_0, e_1, e_2 (d=4); B's columns give the cosine matrix C[i, j] = cos(a_i, b_j):

        C = [[0.7, 0.1, 0.0],
             [0.6, 0.5, 0.1],
             [0.3, 0.2, 0.9]]

    (each b_j is completed to unit norm on the 4th axis). b_0 is a hub: it is a_1's nearest
    neighbour, so plain P@1(a->b) = 2/3. With k=2: avg_A = (0.40, 0.55, 0.60) (row top-2 means),
    avg_B = (0.65, 0.35, 0.50) (column top-2 means). For a_1 the candidates b_0, b_1 score
    0.6 / ((0.55 + 0.65) / 2) = 1.000 and 0.5 / ((0.55 + 0.35) / 2) = 1.111, so the margin picks
    the aligned b_1; a_0 (1.333 vs 0.267) and a_2 (1.636 vs 0.545) are also right: xsim error 0.
    b->a: every b_j's nearest a is a_j, P@1 = 1, xsim error 0.
    """
    c = np.array([[0.7, 0.1, 0.0], [0.6, 0.5, 0.1], [0.3, 0.2, 0.9]])
    a = np.eye(3, 4)
    b = np.zeros((3, 4))
    b[:, :3] = c.T
    b[:, 3] = np.sqrt(1.0 - (c**2).sum(axis=0))
    return a, b


def _laser_xsim_reference(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """A literal float64 transcription of LASER's `xsim.py` ratio margin, full matrices."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    cos = x @ y.T
    idx_xy = np.argsort(-cos, axis=1, kind="stable")[:, :k]
    cos_xy = np.take_along_axis(cos, idx_xy, axis=1)
    avg_x = cos_xy.mean(axis=1)
    avg_y = np.sort(cos.T, axis=1)[:, ::-1][:, :k].mean(axis=1)
    wrong = 0
    for i in range(x.shape[0]):
        scores = [cos_xy[i, j] / ((avg_x[i] + avg_y[idx_xy[i, j]]) / 2) for j in range(k)]
        wrong += int(idx_xy[i, int(np.argmax(scores))] != i)
    return wrong / x.shape[0]


def test_identical_sets_are_perfect():
    a, _ = _clustered_pair(200, 32, 0.0)
    r = retrieval_scores(a, a.copy())
    for s in (r.a_to_b, r.b_to_a):
        assert s.p_at_1 == 1.0
        assert s.xsim_error == 0.0
        assert all(v == 1.0 for v in s.recall.values())


def test_hand_computed_margin_fixes_hub():
    a, b = _hub_example()
    r = retrieval_scores(a, b, ks=(1, 2), margin_k=2)
    assert r.a_to_b.p_at_1 == pytest.approx(2 / 3)
    assert r.a_to_b.ranks.tolist() == [0, 1, 0]
    assert r.a_to_b.recall[2] == 1.0
    assert r.a_to_b.xsim_error == 0.0
    assert r.b_to_a.p_at_1 == 1.0
    assert r.b_to_a.xsim_error == 0.0


def test_hub_makes_an_xsim_error_when_margin_cannot_rescue():
    """Lower cos(a_1, b_1) to 0.2: now the hub b_0 wins even after the margin correction."""
    a, b = _hub_example()
    c = np.array([[0.7, 0.1, 0.0], [0.6, 0.2, 0.1], [0.3, 0.5, 0.9]])
    b[:, :3] = c.T
    b[:, 3] = np.sqrt(1.0 - (c**2).sum(axis=0))
    r = retrieval_scores(a, b, ks=(1,), margin_k=2)
    # avg_A = (0.40, 0.40, 0.70), avg_B = (0.65, 0.35, 0.50); a_1: b_0 0.6/0.525 = 1.143 beats
    # b_1 0.2/0.375 = 0.533; a_2's candidates b_2 (0.9/0.6 = 1.5) and b_1 (0.5/0.525 = 0.952).
    assert r.a_to_b.xsim_error == pytest.approx(1 / 3)


def test_xsim_matches_laser_transcription_on_random_data():
    a, b = _clustered_pair(300, 16, 1.5, seed=3)
    r = retrieval_scores(a, b, margin_k=4, block=37)
    assert r.a_to_b.xsim_error == pytest.approx(_laser_xsim_reference(a, b, 4))
    assert r.b_to_a.xsim_error == pytest.approx(_laser_xsim_reference(b, a, 4))
    assert 0.05 < r.a_to_b.xsim_error < 0.95  # the comparison is not trivially 0 or 1


def test_ranks_match_brute_force_and_recall_is_monotone():
    a, b = _clustered_pair(257, 24, 1.2, seed=1)
    r = retrieval_scores(a, b, ks=(1, 3, 5, 10, 50), block=50)
    cos = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (
        b / np.linalg.norm(b, axis=1, keepdims=True)
    ).T
    ranks = (cos > np.diag(cos)[:, None]).sum(axis=1)
    assert np.array_equal(r.a_to_b.ranks, ranks)
    recalls = [r.a_to_b.recall[k] for k in (1, 3, 5, 10, 50)]
    assert recalls == sorted(recalls) and recalls[0] == r.a_to_b.p_at_1 < recalls[-1]


def test_permuted_side_is_near_chance():
    a, b = _clustered_pair(1000, 32, 0.1, seed=2)
    perm = np.random.default_rng(5).permutation(1000)
    r = retrieval_scores(a, b[perm])
    assert r.a_to_b.p_at_1 <= 0.01 and r.b_to_a.p_at_1 <= 0.01
    assert r.a_to_b.xsim_error >= 0.99
    assert r.a_to_b.recall[10] <= 0.03


def test_directions_are_symmetric_under_swap():
    a, b = _clustered_pair(150, 20, 1.0, seed=4)
    r, s = retrieval_scores(a, b), retrieval_scores(b, a)
    for x, y in ((r.a_to_b, s.b_to_a), (r.b_to_a, s.a_to_b)):
        assert np.array_equal(x.ranks, y.ranks)
        assert (x.p_at_1, x.recall, x.xsim_error) == (y.p_at_1, y.recall, y.xsim_error)
    assert not np.array_equal(r.a_to_b.ranks, r.b_to_a.ranks)  # the directions do differ


def test_ties_go_to_the_lowest_index():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    r = retrieval_scores(a, a.copy(), ks=(1, 2), margin_k=2)
    # rows 0 and 1 are identical: row 1's aligned item ties with row 0, which wins
    assert r.a_to_b.ranks.tolist() == [0, 1, 0]
    idx, scores = topk_cosine(np.array([[1.0, 0.0]]), a, 2)
    assert idx.tolist() == [[0, 1]] and scores[0, 0] == scores[0, 1]
    idx, _ = topk_cosine(np.array([[1.0, 0.0]]), np.ones((7, 2)), 3)
    assert idx.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("k", [1, 7, 64])
def test_topk_equals_argsort(k):
    rng = np.random.default_rng(k)
    q = rng.standard_normal((90, 48)).astype(np.float32)
    c = rng.standard_normal((1000, 48)).astype(np.float32)
    idx, scores = topk_cosine(q, c, k, block=16)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    cn = c / np.linalg.norm(c, axis=1, keepdims=True)
    full = qn @ cn.T
    ref = np.argsort(-full, axis=1, kind="stable")[:, :k]
    np.testing.assert_allclose(scores, np.take_along_axis(full, ref, axis=1), atol=1e-6)
    # blocks and one product round float32 differently: cosines closer than 1e-5 (k = 64 has
    # gaps of 1e-6) may order either way, so compare the order where it is the data's
    exact = qn.astype(np.float64) @ cn.astype(np.float64).T
    top = -np.sort(-exact, axis=1)[:, : k + 1]
    assert (np.take_along_axis(exact, idx, axis=1) >= top[:, k - 1 : k] - 1e-5).all()
    clear = (np.diff(top, axis=1) < -1e-5).all(axis=1)
    assert clear.any()
    assert np.array_equal(idx[clear], ref[clear])


def test_torch_backend_equals_numpy():
    a, b = _clustered_pair(300, 40, 1.3, seed=6)
    r_np = retrieval_scores(a, b, block=64)
    r_t = retrieval_scores(a, b, backend="torch", device="cpu", block=100)
    assert r_np.to_rows() == r_t.to_rows()
    i1, s1 = topk_cosine(a, b, 5)
    i2, s2 = topk_cosine(a, b, 5, backend="torch", device="cpu")
    assert np.array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_backend_equals_numpy():
    a, b = _clustered_pair(500, 64, 1.3, seed=7)
    r_np = retrieval_scores(a, b)
    r_c = retrieval_scores(a, b, backend="torch", device="cuda")
    assert r_np.a_to_b.p_at_1 == pytest.approx(r_c.a_to_b.p_at_1, abs=2 / 500)


def test_to_rows_is_flat():
    a, b = _clustered_pair(50, 8, 0.5)
    rows = retrieval_scores(a, b, ks=(1, 5)).to_rows()
    assert [r["direction"] for r in rows] == ["a->b", "b->a"]
    assert set(rows[0]) == {"direction", "n", "p_at_1", "xsim_error", "margin_k", "recall@1", "recall@5"}


@pytest.mark.parametrize(
    "a, b, kwargs, words",
    [
        (np.ones((5, 4)), np.ones((5, 3)), {}, "width"),
        (np.ones((5, 4)), np.ones((6, 4)), {}, "rows"),
        (np.ones(4), np.ones(4), {}, "shape"),
        (np.full((5, 4), np.nan), np.ones((5, 4)), {}, "NaN"),
        (np.zeros((12, 4)), np.ones((12, 4)), {}, "all-zero"),
        (np.ones((12, 4)), np.ones((12, 4)), {"ks": (1, 13)}, "between 1"),
        (np.ones((12, 4)), np.ones((12, 4)), {"margin_k": 0}, "margin_k"),
        (np.ones((12, 4)), np.ones((12, 4)), {"backend": "jax"}, "backend"),
        (np.ones((12, 4)), np.ones((12, 4)), {"device": "cuda"}, "backend='torch'"),
        (np.ones((1, 4)), np.ones((1, 4)), {}, "at least 2"),
    ],
)
def test_bad_input_is_one_clear_error(a, b, kwargs, words):
    with pytest.raises(AnalysisInputError, match=words):
        retrieval_scores(a, b, **kwargs)


def test_topk_bad_input():
    with pytest.raises(AnalysisInputError, match="width"):
        topk_cosine(np.ones((2, 3)), np.ones((4, 5)), 1)
    with pytest.raises(AnalysisInputError, match="between 1"):
        topk_cosine(np.ones((2, 3)), np.ones((4, 3)), 5)
    with pytest.raises(AnalysisInputError, match="block"):
        topk_cosine(np.ones((2, 3)), np.ones((4, 3)), 1, block=0)


def test_bf16_certified_topk_equals_exact_float32():
    """The bf16 pass + float32 certificate gives exactly the float32 scan's neighbours.

    Run in a child process: where a bf16 matmul dies with SIGILL, this test is skipped instead
    of taking the suite down."""
    run_isolated("""
        import numpy as np
        from actstore.analyses.retrieval import _normalise, _topk_bf16_certified, _topk_exact

        rng = np.random.default_rng(3)
        corpus = _normalise(rng.standard_normal((3000, 64)).astype(np.float32), "corpus")
        queries = _normalise(rng.standard_normal((200, 64)).astype(np.float32), "queries")
        got = _topk_bf16_certified(queries, corpus, 10, None)
        want = _topk_exact(queries, corpus, 10, None, None)
        np.testing.assert_allclose(got[1], want[1], atol=1e-6)
        # the two routes round float32 products differently, so cosines closer than that may
        # come out in either order; judge against float64 cosines (an outside reference)
        exact = queries.astype(np.float64) @ corpus.astype(np.float64).T
        top = -np.sort(-exact, axis=1)[:, :11]
        chosen = np.take_along_axis(exact, got[0], axis=1)
        assert (chosen >= top[:, 9:10] - 1e-5).all()  # a true top-10 up to float32 rounding
        clear = (np.diff(top, axis=1) < -1e-5).all(axis=1)  # no near-tie among the top 11
        assert clear.mean() > 0.5
        np.testing.assert_array_equal(got[0][clear], want[0][clear])
    """)


def test_bf16_certificate_falls_back_on_near_ties():
    """Near-duplicate corpus rows defeat bf16 resolution: uncertified rows are redone exactly
    (in a child process, like the test above)."""
    run_isolated("""
        import numpy as np
        from actstore.analyses.retrieval import _normalise, _topk_bf16_certified, _topk_exact

        rng = np.random.default_rng(4)
        base = rng.standard_normal(64)
        corpus = _normalise((base + 1e-3 * rng.standard_normal((2000, 64))).astype(np.float32), "corpus")
        queries = _normalise((base + 1e-3 * rng.standard_normal((50, 64))).astype(np.float32), "queries")
        got = _topk_bf16_certified(queries, corpus, 5, None)
        want = _topk_exact(queries, corpus, 5, None, None)
        np.testing.assert_array_equal(got[0], want[0])
    """)