"""Array backends for the measures: numpy (float64, CPU) or torch (float64, CPU or CUDA).

Both expose the handful of dense linear-algebra calls the measures need, so each measure is
written once. All maths is float64: SVCCA scores are compared to 1e-6 and the Gram route squares
condition numbers, so float32 is not accurate enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from actstore.errors import AnalysisInputError

BACKENDS = ("numpy", "torch")


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
    """Resolve a backend name; torch defaults to CUDA when available, else CPU."""
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise AnalysisInputError(
                f"device={device!r} needs backend='torch'; the numpy backend runs on the CPU only."
            )
        return NumpyBackend()
    if backend == "torch":
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            raise AnalysisInputError("backend='torch' needs PyTorch; install torch or use 'numpy'.")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise AnalysisInputError(
                f"device={device!r} was requested but no CUDA GPU is visible; pass device='cpu'."
            )
        return TorchBackend(device=str(device))
    raise AnalysisInputError(
        f"backend={backend!r} is unknown; choose one of {', '.join(BACKENDS)}."
    )
