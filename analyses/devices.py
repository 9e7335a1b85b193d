"""One device resolver for every analysis, so `--device` means the same everywhere.

Rules (SVCCA and the other similarity measures, retrieval, t-SNE, neurons):
- no device, or ``"cpu"``: the CPU, whatever the backend;
- the numpy backend (and the CPU-only analyses) run on the CPU only: any other device is refused;
- the torch backend takes any torch device; none given means CUDA when a GPU is visible, else
  the CPU; CUDA requested on a machine without a visible GPU is refused with one sentence.
"""

from __future__ import annotations

from actstore.errors import AnalysisInputError

BACKENDS = ("numpy", "torch")


def resolve_device(device: object = None, *, backend: str = "numpy", what: str = "this analysis",
                   torch_backend: bool = True) -> str:
    """The device an analysis runs on, as a string ("cpu", "cuda", "cuda:1", ...).

    backend: "numpy" or "torch"; what: the analysis, named in errors; torch_backend: False for
    analyses that have no torch backend (t-SNE, neurons), which changes the advice in errors.
    """
    if backend not in BACKENDS:
        raise AnalysisInputError(f"backend={backend!r} is unknown; choose one of {', '.join(BACKENDS)}.")
    name = None if device is None else str(device).strip()
    if backend == "numpy":
        if name in (None, "", "cpu"):
            return "cpu"
        if not torch_backend:
            raise AnalysisInputError(
                f"device={name!r} is not available: {what} runs on the CPU only; pass --device cpu."
            )
        raise AnalysisInputError(
            f"device={name!r} needs backend='torch'; the numpy backend runs on the CPU only "
            "(pass --backend torch, or --device cpu)."
        )
    import torch

    if name in (None, ""):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AnalysisInputError(
            f"device={name!r} is not a torch device ({exc}); pass e.g. 'cpu' or 'cuda:0'."
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise AnalysisInputError(
            f"device={name!r} was requested but no CUDA GPU is visible; pass --device cpu."
        )
    return name
