"""Batched SVCCA on torch (float64, CUDA or CPU): the same maths as `reduction`, stacked.

GPUs are slow at one small eigendecomposition but fast at many: all distinct (set, subset)
reductions of equal size m are stacked into (B, m, m) Gram blocks, moved into the basis H of
1-perp with the batched Householder update K = (Q G Q)[:a, :a], and decomposed with one batched
`torch.linalg.eigh`. Scores use column masks instead of per-pair slicing so every batch has one
shape: with D_x = diag(1[i < kx]), the nonzero singular values of (V_x D_x)^T (V_y D_y) are the
canonical correlations. The null lifts the masked bases to sample space (H V), gathers y's rows
by each request's permutation and repeats the batched SVD. The Gram route is used for every m
here (also m - 1 > d, where the complement simply holds the null directions).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from actstore.errors import AnalysisInputError

from .measure import PairRequest, null_permutation
from .reduction import KEEP_TOLERANCE, householder_vector

_BATCH = 256


def svcca_grid_torch(centred: dict[Hashable, np.ndarray], requests: Sequence[PairRequest], *,
                     keep: float, null: bool, seed: int, device: str,
                     progress: Callable[[int], object] | None = None) -> dict[str, np.ndarray]:
    """SVCCA scores (and nulls) of validated requests over column-centred sets.

    Used by `SVCCA.score_grid_torch`; the result has the keys of `batched.score_pairs`.
    """
    import torch

    grams = {}
    for key, xc in centred.items():
        xt = torch.as_tensor(xc, dtype=torch.float64, device=device)
        grams[key] = xt @ xt.T
    red_rows, pair_idx = _distinct_subsets(requests)
    vecs, kept = _reduce_all(grams, red_rows, keep, device)
    n_req = len(requests)
    out = {"score": np.full(n_req, np.nan), "kx": np.zeros(n_req, dtype=np.int64),
           "ky": np.zeros(n_req, dtype=np.int64), "n": np.zeros(n_req, dtype=np.int64)}
    if null:
        out["null"] = np.full(n_req, np.nan)
    req_by_m: dict[int, list[int]] = {}
    for i, req in enumerate(requests):
        req_by_m.setdefault(req.x_rows.shape[0], []).append(i)
    for m, members in req_by_m.items():
        for j in range(0, len(members), _BATCH):
            chunk = members[j : j + _BATCH]
            _score_chunk(out, chunk, m, [pair_idx[i] for i in chunk], vecs, kept,
                         null=null, seed=seed, device=device)
            if progress is not None:
                progress(len(chunk))
    return out


def _distinct_subsets(requests: Sequence[PairRequest]):
    """The distinct (set, rows) subsets, and per request the indices of its two subsets."""
    index: dict[tuple[Hashable, bytes], int] = {}
    red_rows: list[tuple[Hashable, np.ndarray]] = []
    pair_idx = []
    for req in requests:
        ids = []
        for key, rows in ((req.x_key, req.x_rows), (req.y_key, req.y_rows)):
            ck = (key, rows.tobytes())
            if ck not in index:
                index[ck] = len(red_rows)
                red_rows.append((key, rows))
            ids.append(index[ck])
        pair_idx.append(ids)
    return red_rows, pair_idx


def _reduce_all(grams: dict, red_rows: list[tuple[Hashable, np.ndarray]], keep: float, device: str):
    """Every distinct subset's eigenvectors in the basis of 1-perp and its kept count, computed
    in batches of equal subset size."""
    import torch

    dt = torch.float64
    vecs: dict[int, torch.Tensor] = {}
    kept = np.zeros(len(red_rows), dtype=np.int64)
    by_m: dict[int, list[int]] = {}
    for r, (_, rows) in enumerate(red_rows):
        by_m.setdefault(rows.shape[0], []).append(r)
    for m, members in by_m.items():
        w = torch.tensor(np.array(householder_vector(m)), dtype=dt, device=device)
        a = m - 1
        for j in range(0, len(members), _BATCH):
            chunk = members[j : j + _BATCH]
            blocks = []
            for r in chunk:
                key, rows = red_rows[r]
                rt = torch.as_tensor(rows, device=device)
                blocks.append(grams[key][rt][:, rt])
            g = torch.stack(blocks)
            gw = g @ w
            z = 2.0 * (gw - (gw @ w)[:, None] * w)
            kmat = g[:, :a, :a] - w[:a, None] * z[:, None, :a] - z[:, :a, None] * w[None, None, :a]
            lam, v = torch.linalg.eigh(kmat)
            lam = lam.flip(-1).clamp_min(0.0)
            v = v.flip(-1)
            total = lam.sum(-1)
            if bool((total <= 0).any()):
                bad = red_rows[chunk[int(torch.nonzero(total <= 0)[0, 0])]][0]
                raise AnalysisInputError(
                    f"set {bad!r} (selected rows) has zero variance (all rows identical); pass "
                    "sets whose rows differ."
                )
            cum = lam.cumsum(-1) / total[:, None]
            k = ((cum < keep - KEEP_TOLERANCE).sum(-1) + 1).clamp_max(a)
            kept[chunk] = k.cpu().numpy()
            for r, vr in zip(chunk, v):
                vecs[r] = vr
    return vecs, kept


def _score_chunk(out: dict[str, np.ndarray], chunk: list[int], m: int, subsets: list[list[int]],
                 vecs: dict, kept: np.ndarray, *, null: bool, seed: int, device: str) -> None:
    """Scores (and nulls) of one batch of requests with m paired rows, written into `out`."""
    import torch

    dt = torch.float64
    a = m - 1
    cols = torch.arange(a, device=device)
    ix = [pair[0] for pair in subsets]
    iy = [pair[1] for pair in subsets]
    kx = torch.as_tensor(kept[ix], device=device)
    ky = torch.as_tensor(kept[iy], device=device)
    vx = torch.stack([vecs[r] for r in ix]) * (cols < kx[:, None])[:, None, :]
    vy = torch.stack([vecs[r] for r in iy]) * (cols < ky[:, None])[:, None, :]
    denom = torch.minimum(kx, ky).to(dt)
    sig = torch.linalg.svdvals(vx.transpose(1, 2) @ vy).clamp(0.0, 1.0)
    score = sig.sum(-1) / denom
    out["score"][chunk] = score.cpu().numpy()
    out["kx"][chunk], out["ky"][chunk], out["n"][chunk] = kept[ix], kept[iy], m
    if null:
        h = torch.as_tensor(np.eye(m)[:, :a] - 2.0 * np.outer(householder_vector(m),
                            householder_vector(m)[:a]), dtype=dt, device=device)
        perms = torch.as_tensor(np.stack([null_permutation(seed, i, m) for i in chunk]), device=device)
        ux = h @ vx
        uy = torch.gather(h @ vy, 1, perms[:, :, None].expand(-1, -1, a))
        sig0 = torch.linalg.svdvals(ux.transpose(1, 2) @ uy).clamp(0.0, 1.0)
        out["null"][chunk] = (sig0.sum(-1) / denom).cpu().numpy()
