"""What every tiny random-initialised model builder shares (one builder per family lives in its
family's package: `sonar/tiny.py`, `salmonn/tiny.py`, ...; `actstore.ingest.tiny_builders` names them).

Each builder writes a directory that the real adapters load exactly as they load a real model
(a transformers directory, a fairseq checkpoint, SALMONN's decode config + checkpoints, ...), so
the tests and `make demo` exercise the real loading, preprocessing and hook code, only with small
widths.

Every config carries `actstore_random_init=True`: the adapters copy it into
`ModelInfo.random_init`, and every stored row and report from such a model is labelled
"random-init". Numbers from these models say nothing about language; they only prove plumbing.

Why the LayerNorms are perturbed: a fresh LayerNorm has weight 1 and bias 0, which hides a
class of padding bugs (a zeroed padded frame stays zero after a bias-free LayerNorm, but becomes
`bias` after a real one). Random affine parameters make the padded-batch tests as strict on
these models as they would be on real weights.
"""

from __future__ import annotations

import torch

#: width of the tiny transformers-format models (SeamlessM4T, Whisper, BERT)
TINY_HIDDEN = 32


def quiet():
    """transformers' logs and progress bars off while building (they are noise here)."""
    from actstore.ingest.adapters.common.hf import quiet_transformers

    return quiet_transformers()


def perturb_layernorms(model: torch.nn.Module, seed: int) -> None:
    """Give every LayerNorm a random affine map (see module docstring for why)."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) and module.weight is not None:
                module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=gen))
                if module.bias is not None:
                    module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=gen))


def flores_texts() -> list[str]:
    """All shipped FLORES devtest sentences (the demo corpus)."""
    from actstore.ingest.sources.flores import shipped_flores_dir

    root = shipped_flores_dir() / "devtest"
    texts: list[str] = []
    for f in sorted(root.glob("*.devtest")):
        texts.extend(line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
    return texts
