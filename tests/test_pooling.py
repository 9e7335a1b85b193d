"""Masked mean pooling: known answers, float32 arithmetic, padding isolation, bad input."""

import numpy as np
import pytest
import torch

from actstore.errors import ActstoreError, DataSourceError
from actstore.ingest.pooling import masked_mean


def test_known_answer_ignores_padded_positions():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 7.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    pooled, n = masked_mean(hidden, mask)
    np.testing.assert_array_equal(pooled.numpy(), [[2.0, 3.0], [5.0, 7.0]])
    np.testing.assert_array_equal(n.numpy(), [2, 1])
    assert pooled.dtype == torch.float32 and n.dtype == torch.int64


def test_int_and_bool_masks_agree():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    a, _ = masked_mean(hidden, mask)
    b, _ = masked_mean(hidden, mask.bool())
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a[1], hidden[1].mean(0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_states_are_pooled_in_float32(dtype):
    # 40000 + 40000 overflows float16 (max 65504); the mean must still be 40000.
    hidden = torch.full((1, 2, 3), 40000.0).to(dtype)
    pooled, _ = masked_mean(hidden, torch.ones(1, 2))
    assert pooled.dtype == torch.float32
    np.testing.assert_allclose(pooled.numpy(), hidden.float()[:, 0].numpy())


def test_nan_in_padding_does_not_leak():
    hidden = torch.tensor([[[1.0], [3.0], [float("nan")], [float("inf")]]])
    pooled, n = masked_mean(hidden, torch.tensor([[1, 1, 0, 0]]))
    assert pooled.item() == 2.0 and n.item() == 2


def test_item_without_valid_frames_is_an_error_not_nan():
    hidden = torch.ones(3, 4, 2)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    with pytest.raises(DataSourceError, match=r"position\(s\) \[1\]") as err:
        masked_mean(hidden, mask)
    assert isinstance(err.value, ActstoreError)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="mask must be"):
        masked_mean(torch.ones(2, 4, 3), torch.ones(2, 5))
    with pytest.raises(ValueError, match="hidden must be"):
        masked_mean(torch.ones(4, 3), torch.ones(4, 3))
