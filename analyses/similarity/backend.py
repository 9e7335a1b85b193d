"""Array backends for the measures: numpy (float64, CPU) or torch (float64, CPU or CUDA).

Both expose the handful of dense linear-algebra calls the measures need, so each measure is
written once. All maths is float64: SVCCA scores are compared to 1e-6 and the Gram route squares
condition numbers, so float32 is not accurate enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from actstore.analyses.devices import resolve_device


@dataclass(frozen=True)
class NumpyBackend:
    """float64 numpy / LAPACK."""

    name: str = "numpy"

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)

    def centre(self, a: np.ndarray) -> np.ndarray:
        return a - a.mean(axis=0, keepdims=True)

    def svd(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thin SVD a = u diag(s) vt, s descending."""
        return np.linalg.svd(a, full_matrices=False)

    def svdvals(self, a: np.ndarray) -> np.ndarray:
        return np.linalg.svd(a, compute_uv=False)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)


@dataclass(frozen=True)
class TorchBackend:
    """float64 torch on `device` ("cpu", "cuda", "cuda:1", ...)."""

    device: str = "cpu"
    name: str = "torch"

    def asarray(self, a: np.ndarray) -> Any:
        import torch

        return torch.as_tensor(np.asarray(a, dtype=np.float64), device=self.device)

    def centre(self, a: Any) -> Any:
        return a - a.mean(dim=0, keepdim=True)

    def svd(self, a: Any) -> tuple[Any, Any, Any]:
        import torch

        return torch.linalg.svd(a, full_matrices=False)

    def svdvals(self, a: Any) -> Any:
        import torch

        return torch.linalg.svdvals(a)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy().astype(np.float64, copy=False)


def get_backend(backend: str = "numpy", device: str | None = None) -> NumpyBackend | TorchBackend:
    """Resolve a backend name and device (`actstore.analyses.devices.resolve_device` rules)."""
    resolved = resolve_device(device, backend=backend, what="similarity")
    if backend == "numpy":
        return NumpyBackend()
    return TorchBackend(device=resolved)
