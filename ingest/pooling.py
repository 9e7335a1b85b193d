"""Masked mean pooling: one vector per item from a padded batch of hidden states.

For item b with valid positions V_b = {t : mask[b, t]} the pooled vector is

    pooled[b] = (1 / |V_b|) * sum_{t in V_b} hidden[b, t, :]

computed in float32 whatever the model's dtype (a float16 sum over thousands of frames loses
digits and can overflow). Padded positions are *selected away* with `where`, not multiplied by
zero, so a NaN or inf that a model leaves in a padded position cannot leak into the mean.

An item with no valid position has no mean: that is a data problem (empty text, audio shorter
than one model frame), reported as an error rather than returned as NaN.
"""

from __future__ import annotations

import torch

from actstore.errors import DataSourceError


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of `hidden` [B, T, d] over the positions where `mask` [B, T] is true/non-zero.

    Returns (pooled [B, d] float32, n_frames [B] int64). Raises `DataSourceError` if an item
    has zero valid positions, and `ValueError` on shape mismatches (a programming error).
    """
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be [B, T, d], got shape {tuple(hidden.shape)}")
    if mask.dim() != 2 or tuple(mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(f"mask must be [B, T] = {tuple(hidden.shape[:2])}, got {tuple(mask.shape)}")
    valid = mask.to(device=hidden.device).bool()
    n_frames = valid.sum(dim=1)
    empty = (n_frames == 0).nonzero().flatten().tolist()
    if empty:
        raise DataSourceError(
            f"Batch item(s) at position(s) {empty} have no valid frame or token to pool "
            "(empty text or audio shorter than one model frame); drop or lengthen those items."
        )
    h = torch.where(valid.unsqueeze(-1), hidden.float(), torch.zeros((), dtype=torch.float32,
                                                                     device=hidden.device))
    pooled = h.sum(dim=1) / n_frames.unsqueeze(-1).to(torch.float32)
    return pooled, n_frames.to(torch.int64)
