"""Cross-side nearest-neighbour retrieval by cosine: P@1, recall@k and LASER's xsim error.

Two aligned sides A (n, d) and B (n, d): row i of A and row i of B hold the same sentence (for
example speech and text of one language, or text of two languages). Every query searches the
whole other side; the hit is the aligned row.

Measures, for each direction (a->b queries rows of A against all of B, b->a the reverse):

- rank of the aligned item: r_i = #{j : cos(a_i, b_j) > cos(a_i, b_i)}
  + #{j < i : cos(a_i, b_j) = cos(a_i, b_i)} (ties go to the lowest index, so a tie with an
  earlier row counts against the query);
- P@1 = mean(r_i == 0), recall@k = mean(r_i < k) (monotone in k by construction);
- xsim error (LASER, facebookresearch/LASER `source/xsim.py`, margin="ratio", k=4): with
  avg_A(x) = mean cosine of x to its k nearest rows of B and avg_B(y) = mean cosine of y to its
  k nearest rows of A, the candidates for query x are its k nearest rows y of B, scored by

      margin(x, y) = cos(x, y) / ((avg_A(x) + avg_B(y)) / 2),

  and the query is an error when the highest-margin candidate is not the aligned row.
  As in LASER only the k nearest neighbours are candidates (not all of B). The ratio is taken as
  is, also when the denominator is small or negative (LASER does not guard it either).

Ties are broken deterministically: neighbours are ordered by descending cosine, equal cosines by
ascending row index, and the margin argmax takes the first (nearest) of equal margins.

Computation: rows are L2-normalised in float32 and cosines come from blocked matrix products
(`block` queries at a time, so memory stays at block x N floats). The numpy backend multiplies
with numpy's BLAS into a reused buffer; top-k selection uses `torch.topk` on that buffer without a
copy (numpy's `argpartition` is ~25x slower for 100k columns). The torch backend does both on a
torch device. The two backends agree up to float32 rounding of the products.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from actstore.analyses.devices import resolve_device
from actstore.analyses.validation import check_k, check_matrix
from actstore.errors import AnalysisInputError
from actstore.analyses.bf16_probe import bf16_matmul_works

__all__ = [
    "DirectionScores",
    "RetrievalResult",
    "retrieval_scores",
    "topk_cosine",
]

_DEFAULT_BLOCK_BYTES = 256 * 2**20  # similarity block of at most 256 MiB float32


@dataclass(frozen=True)
class DirectionScores:
    """One direction's scores; `ranks[i]`: the aligned item's 0-based rank; `top1[i]`: the row retrieved first."""

    p_at_1: float
    recall: dict[int, float]
    xsim_error: float
    ranks: np.ndarray = field(repr=False)
    top1: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RetrievalResult:
    """Both directions of an aligned retrieval run over `n` rows."""

    n: int
    ks: tuple[int, ...]
    margin_k: int
    a_to_b: DirectionScores
    b_to_a: DirectionScores

    def to_rows(self) -> list[dict[str, object]]:
        """One flat dict per direction, ready for a results table (`recall@k` columns)."""
        rows = []
        for name, s in (("a->b", self.a_to_b), ("b->a", self.b_to_a)):
            row: dict[str, object] = {
                "direction": name,
                "n": self.n,
                "p_at_1": s.p_at_1,
                "xsim_error": s.xsim_error,
                "margin_k": self.margin_k,
            }
            row.update({f"recall@{k}": s.recall[k] for k in self.ks})
            rows.append(row)
        return rows




def _as_matrix(x: object, name: str) -> np.ndarray:
    """A finite 2-D float32 array, or an AnalysisInputError naming `name`."""
    return check_matrix(x, name, dtype=np.float32, kinds="fiub")


def _normalise(x: np.ndarray, name: str) -> np.ndarray:
    """Rows scaled to unit L2 norm (cosine = dot product); zero rows have no direction."""
    norms = np.linalg.norm(x, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise AnalysisInputError(
            f"{name} has {zero.size} all-zero row(s) (first: {zero[0]}) with no cosine; "
            "drop them before retrieval."
        )
    return np.ascontiguousarray(x / norms[:, None], dtype=np.float32)


def _resolve_device(backend: str, device: str | torch.device | None) -> torch.device | None:
    """None for the numpy backend (CPU); the torch device (default: cuda if present, else cpu).

    The rules are every analysis's (`actstore.analyses.devices.resolve_device`).
    """
    resolved = resolve_device(device, backend=backend, what="retrieval")
    return None if backend == "numpy" else torch.device(resolved)


def _block_rows(block: int | None, n_queries: int, n_corpus: int) -> int:
    if block is None:
        return max(1, min(n_queries, _DEFAULT_BLOCK_BYTES // (4 * n_corpus)))
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise AnalysisInputError(f"block={block!r} must be a positive integer number of queries.")
    return int(min(block, n_queries))


# --------------------------------------------------------------------------- blocked kernels

#: corpora up to this many rows are scanned in one numpy product (see _scan_direction_small)
_SMALL_CORPUS = 8192


class _Scanner:
    """Yields cosine blocks S = Q[start:stop] @ C.T on the chosen backend."""

    def __init__(self, q: np.ndarray, c: np.ndarray, block: int, device: torch.device | None):
        self.block = block
        self.n_queries = q.shape[0]
        self.device = device
        if device is None:
            self.q, self.c = q, c
            self._buf = np.empty((block, c.shape[0]), dtype=np.float32)
        else:
            self.q = torch.from_numpy(q).to(device)
            self.c = torch.from_numpy(c).to(device)

    def blocks(self):
        for start in range(0, self.n_queries, self.block):
            stop = min(start + self.block, self.n_queries)
            if self.device is None:
                out = self._buf[: stop - start]
                np.matmul(self.q[start:stop], self.c.T, out=out)
                yield start, stop, torch.from_numpy(out)
            else:
                yield start, stop, self.q[start:stop] @ self.c.T


def _topk_block(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of each row of `s`, ordered by (descending value, ascending index).

    `torch.topk` may pick any of several equal values at the k-th place. Taking k+1 values shows
    where that can happen without another pass over `s`: only rows whose (k+1)-th value equals
    their k-th are redone with a stable descending sort (lowest index first).
    """
    extra = 1 if k < s.shape[1] else 0
    vals, idx = torch.topk(s, k + extra, dim=1, largest=True, sorted=True)
    if extra:
        tied = torch.nonzero(vals[:, k] == vals[:, k - 1]).flatten()
        vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    else:
        tied = torch.empty(0, dtype=torch.long)
    if tied.numel():
        order = torch.sort(s[tied], dim=1, descending=True, stable=True).indices[:, :k]
        idx[tied] = order
        vals[tied] = torch.gather(s[tied], 1, order)
    # canonical order inside the selection: ascending index, then stable descending value
    by_index = torch.argsort(idx, dim=1)
    idx = torch.gather(idx, 1, by_index)
    vals = torch.gather(vals, 1, by_index)
    by_value = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return torch.gather(idx, 1, by_value), torch.gather(vals, 1, by_value)


def _aligned_rank_block(s: torch.Tensor, start: int) -> torch.Tensor:
    """0-based rank of column start+r in row r of `s` (ties to the lower index)."""
    rows = torch.arange(s.shape[0], device=s.device)
    cols = rows + start
    diag = s[rows, cols].unsqueeze(1)
    earlier = torch.arange(s.shape[1], device=s.device).unsqueeze(0) < cols.unsqueeze(1)
    return (s > diag).sum(dim=1) + ((s == diag) & earlier).sum(dim=1)


# --------------------------------------------------------------------------- public API


def topk_cosine(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    block: int | None = None,
    backend: str = "numpy",
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k cosine neighbours of each query row among the corpus rows.

    queries (q, d), corpus (N, d) -> (indices (q, k) int64, scores (q, k) float32), each row
    ordered by descending cosine, equal cosines by ascending corpus index. Memory: the corpus,
    plus one (block, N) float32 block (default: as many queries as fit in 256 MiB).
    """
    q = _as_matrix(queries, "queries")
    c = _as_matrix(corpus, "corpus")
    if q.shape[1] != c.shape[1]:
        raise AnalysisInputError(
            f"queries have width {q.shape[1]} but corpus rows have width {c.shape[1]}; cosine "
            "needs equal widths, so compare vectors of the same model and point."
        )
    k = check_k(k, c.shape[0], candidates=c.shape[0])
    dev = _resolve_device(backend, device)
    qn, cn = _normalise(q, "queries"), _normalise(c, "corpus")
    if dev is None and _bf16_worthwhile(qn.shape[0], cn.shape[0], k):
        return _topk_bf16_certified(qn, cn, k, block)
    return _topk_exact(qn, cn, k, block, dev)


def _topk_exact(qn: np.ndarray, cn: np.ndarray, k: int, block: int | None,
                dev: torch.device | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of normalised rows by float32 products, one (block, N) slab at a time."""
    scanner = _Scanner(qn, cn, _block_rows(block, qn.shape[0], cn.shape[0]), dev)
    indices = np.empty((qn.shape[0], k), dtype=np.int64)
    scores = np.empty((qn.shape[0], k), dtype=np.float32)
    for start, stop, s in scanner.blocks():
        idx, vals = _topk_block(s, k)
        indices[start:stop] = idx.cpu().numpy()
        scores[start:stop] = vals.cpu().numpy()
    return indices, scores


#: |bf16 product - exact cosine| for unit vectors: inputs rounded to bf16 (2 * 2^-9), the bf16
#: output rounded (2^-9 for |cos| <= 1), float32 accumulation over d <= 65536 terms (< 2^-8);
#: 2^-8 + 2^-9 + 2^-8 < 0.0098.
_BF16_BOUND = 0.0100
_BF16_EXTRA = 96  # candidates beyond k that the bf16 pass keeps for exact rescoring


def _bf16_worthwhile(n_queries: int, n_corpus: int, k: int) -> bool:
    """Large CPU scans on a CPU with native bf16 dot products (twice the float32 rate).

    Whether bf16 matmuls run at all is asked of a child process (`bf16_probe`): on a CPU that
    advertises AMX but cannot run it, the first bf16 matmul kills the process with SIGILL.
    """
    return (n_corpus >= 20_000 and n_queries >= 64 and k + _BF16_EXTRA < n_corpus
            and bf16_matmul_works())


def _topk_bf16_certified(qn: np.ndarray, cn: np.ndarray, k: int, block: int | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k, found with bf16 products and certified in float32.

    A bf16 pass keeps each query's k + 96 best candidates; they are rescored exactly in float32.
    Every other row's bf16 score is at most the last candidate's, so its exact cosine is at most
    that plus `_BF16_BOUND`; when the k-th exact score beats this, the candidates hold the exact
    top-k (the certificate). Rows without a certificate are recomputed by the float32 scan, so
    the result always equals `_topk_exact`.
    """
    n_q = qn.shape[0]
    width = k + _BF16_EXTRA
    c16 = torch.from_numpy(cn).to(torch.bfloat16)
    ct = torch.from_numpy(cn)
    rows = _block_rows(block, n_q, cn.shape[0])
    indices = np.empty((n_q, k), dtype=np.int64)
    scores = np.empty((n_q, k), dtype=np.float32)
    failed: list[np.ndarray] = []
    for start in range(0, n_q, rows):
        stop = min(start + rows, n_q)
        qt = torch.from_numpy(qn[start:stop])
        approx = qt.to(torch.bfloat16) @ c16.T
        cand_vals, cand = torch.topk(approx, width, dim=1, largest=True, sorted=True)
        cand_vals = cand_vals.float()
        exact = torch.einsum("qd,qcd->qc", qt, ct[cand])
        # canonical order among candidates: descending exact cosine, then ascending index
        by_index = torch.argsort(cand, dim=1)
        cand, exact = torch.gather(cand, 1, by_index), torch.gather(exact, 1, by_index)
        order = torch.sort(exact, dim=1, descending=True, stable=True).indices[:, :k]
        top_idx, top_val = torch.gather(cand, 1, order), torch.gather(exact, 1, order)
        certified = top_val[:, -1] > cand_vals[:, -1] + _BF16_BOUND
        indices[start:stop] = top_idx.numpy()
        scores[start:stop] = top_val.numpy()
        bad = np.flatnonzero(~certified.numpy()) + start
        if bad.size:
            failed.append(bad)
    if failed:
        redo = np.concatenate(failed)
        indices[redo], scores[redo] = _topk_exact(qn[redo], cn, k, block, None)
    return indices, scores


def _scan_direction(
    q: np.ndarray, c: np.ndarray, margin_k: int, block: int, dev: torch.device | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ranks of the aligned items, top-margin_k indices, their cosines) for queries q vs c."""
    n = q.shape[0]
    if dev is None and c.shape[0] <= _SMALL_CORPUS:
        return _scan_direction_small(q, c, margin_k)
    ranks = np.empty(n, dtype=np.int64)
    nn_idx = np.empty((n, margin_k), dtype=np.int64)
    nn_cos = np.empty((n, margin_k), dtype=np.float32)
    for start, stop, s in _Scanner(q, c, block, dev).blocks():
        ranks[start:stop] = _aligned_rank_block(s, start).cpu().numpy()
        idx, vals = _topk_block(s, margin_k)
        nn_idx[start:stop] = idx.cpu().numpy()
        nn_cos[start:stop] = vals.cpu().numpy()
    return ranks, nn_idx, nn_cos


def _scan_direction_small(q: np.ndarray, c: np.ndarray, margin_k: int
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_scan_direction` for an aligned slice (a few thousand rows) in plain numpy.

    The study's grids score thousands of ~200-row pairs; there torch's per-op dispatch and its
    thread pool (which fights OpenBLAS's for the same 2 cores) cost 10-100x the arithmetic.
    Same results as the blocked path: ranks with ties to the lower index, a stable top-k.
    """
    s = q @ c.T
    n = q.shape[0]
    rows = np.arange(n)
    diag = s[rows, rows][:, None]
    earlier = np.arange(c.shape[0])[None, :] < rows[:, None]
    ranks = (s > diag).sum(axis=1) + ((s == diag) & earlier).sum(axis=1)
    order = np.argsort(-s, axis=1, kind="stable")[:, :margin_k]
    return ranks.astype(np.int64), order.astype(np.int64), np.take_along_axis(s, order, axis=1)


def _xsim_error(nn_idx: np.ndarray, nn_cos: np.ndarray, avg_q: np.ndarray, avg_c: np.ndarray) -> float:
    """Fraction of queries whose best ratio-margin candidate is not the aligned row."""
    margin = nn_cos.astype(np.float64) / ((avg_q[:, None] + avg_c[nn_idx]) / 2.0)
    best = nn_idx[np.arange(nn_idx.shape[0]), np.argmax(margin, axis=1)]  # first max on ties
    return float(np.mean(best != np.arange(nn_idx.shape[0])))


def _direction(ranks: np.ndarray, ks: Sequence[int], xsim: float, top1: np.ndarray | None = None) -> DirectionScores:
    return DirectionScores(p_at_1=float(np.mean(ranks == 0)), recall={k: float(np.mean(ranks < k)) for k in ks},
                           xsim_error=xsim, ranks=ranks, top1=top1)


def retrieval_scores(
    a: np.ndarray,
    b: np.ndarray,
    *,
    ks: Sequence[int] = (1, 5, 10),
    margin_k: int = 4,
    backend: str = "numpy",
    device: str | torch.device | None = None,
    block: int | None = None,
) -> RetrievalResult:
    """P@1, recall@k and xsim error (ratio margin) in both directions between aligned sides.

    a (n, d), b (n, d): row i of both is the same sentence. backend "numpy" (default) or "torch"
    (device: a torch device; default cuda when available, else cpu). See the module docstring
    for the exact definitions and tie rules.
    """
    xa = _as_matrix(a, "a")
    xb = _as_matrix(b, "b")
    if xa.shape[0] != xb.shape[0]:
        raise AnalysisInputError(
            f"a has {xa.shape[0]} rows but b has {xb.shape[0]}; pass aligned sets with one row "
            "per shared sentence in the same order."
        )
    if xa.shape[1] != xb.shape[1]:
        raise AnalysisInputError(
            f"a has width {xa.shape[1]} but b has width {xb.shape[1]}; cosine retrieval needs "
            "equal widths (pad or project both sides to one width first)."
        )
    n = xa.shape[0]
    if n < 2:
        raise AnalysisInputError("retrieval needs at least 2 aligned rows; pass more sentences.")
    ks_t = tuple(check_k(k, n, name="ks entry", candidates=n) for k in ks)
    if not ks_t:
        raise AnalysisInputError("ks is empty; pass at least one k, e.g. ks=(1, 5, 10).")
    margin_k = check_k(margin_k, n, name="margin_k", candidates=n)
    dev = _resolve_device(backend, device)
    na, nb = _normalise(xa, "a"), _normalise(xb, "b")
    rows = _block_rows(block, n, n)
    ranks_ab, idx_ab, cos_ab = _scan_direction(na, nb, margin_k, rows, dev)
    ranks_ba, idx_ba, cos_ba = _scan_direction(nb, na, margin_k, rows, dev)
    avg_a = cos_ab.astype(np.float64).mean(axis=1)  # each a-row's mean cos to its k NN in B
    avg_b = cos_ba.astype(np.float64).mean(axis=1)  # each b-row's mean cos to its k NN in A
    return RetrievalResult(
        n=n,
        ks=ks_t,
        margin_k=margin_k,
        a_to_b=_direction(ranks_ab, ks_t, _xsim_error(idx_ab, cos_ab, avg_a, avg_b), idx_ab[:, 0]),
        b_to_a=_direction(ranks_ba, ks_t, _xsim_error(idx_ba, cos_ba, avg_b, avg_a), idx_ba[:, 0]),
    )
