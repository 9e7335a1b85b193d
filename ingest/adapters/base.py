"""What every model adapter provides.

An adapter loads one family of models (from a hub id, a local directory or the HF cache), names
its extraction points, and turns a batch of `Item`s of one modality into one pooled float32
vector per (item, point). Points are named `{modality}.{name}`: `speech.embed`, `speech.L3`,
`speech.adaptor`, `text.embed`, `text.L12`, ... (names are the API; keep them stable).

Adding a model = adding one module in `ingest/adapters/` that defines `ADAPTER = YourAdapter`;
`ingest.adapters.load_adapter` discovers it. Nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np

from ingest.items import Item


@dataclass
class Pooled:
    """Pooled output of one batch at one point.

    vectors: (B, d) float32, the masked mean over the point's valid positions.
    n_frames: (B,) int, how many positions were pooled for each item.
    """

    vectors: np.ndarray
    n_frames: np.ndarray


@dataclass
class ModelInfo:
    """Provenance of a loaded model, written to the `runs` table."""

    model_id: str                  # what the user passed (hub id or directory)
    name: str                      # stored model name (the `model` column)
    adapter: str                   # adapter class name
    revision: str | None = None    # hub commit hash when loaded from the HF cache
    random_init: bool = False      # True for random-initialised test/demo models: label results!
    extra: dict = field(default_factory=dict)


class Adapter(ABC):
    """Base class. Subclasses do no heavy work until `load()`."""

    #: modalities this adapter encodes, e.g. ("speech", "text")
    modalities: ClassVar[tuple[str, ...]] = ()
    #: lower runs first when several adapters match a config (the generic text adapter is last)
    priority: ClassVar[int] = 50

    @classmethod
    @abstractmethod
    def matches(cls, config) -> bool:
        """True if this adapter handles a transformers config (usually by `config.model_type`)."""

    @abstractmethod
    def __init__(self, path: str, *, name: str, device: str = "cpu", dtype: str = "float32",
                 revision: str | None = None):
        """Remember where to load from; `load()` does the work."""

    @abstractmethod
    def load(self) -> None:
        """Load weights and the preprocessor, put the model in eval mode on the device."""

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Provenance for the runs table."""

    @abstractmethod
    def points(self, modality: str) -> list[str]:
        """All extraction point names for a modality, in depth order."""

    @abstractmethod
    def layer_of(self, point: str) -> int | None:
        """Depth index for ordering (0 for embeddings, i for layer i); None if not a layer."""

    @abstractmethod
    def width(self, point: str) -> int:
        """Vector width at a point."""

    @abstractmethod
    def encode(self, items: Sequence[Item], points: Sequence[str]) -> dict[str, Pooled]:
        """Forward one batch (all items share a modality) and pool every requested point.

        Pooling is a masked mean in float32 over each point's own valid positions, so a padded
        batch gives the same vectors as running each item alone (to 1e-5).
        """

    def select_points(self, modality: str, *, layers: Sequence[int] | None = None,
                      names: Sequence[str] | None = None) -> list[str]:
        """Points of a modality chosen by layer index list and/or explicit names (None: all)."""
        from actstore.errors import ActstoreError

        available = self.points(modality)
        if layers is None and names is None:
            return available
        chosen: list[str] = []
        if layers is not None:
            by_layer = {self.layer_of(p): p for p in available if self.layer_of(p) is not None}
            for i in layers:
                if i not in by_layer:
                    have = sorted(k for k in by_layer if k is not None)
                    raise ActstoreError(
                        f"Layer {i} does not exist for {modality}; this model has layers "
                        f"{have[0]}..{have[-1]}."
                    )
                chosen.append(by_layer[i])
        if names is not None:
            other = [n for n in names if not n.startswith(modality + ".")]
            mine = [n for n in names if n.startswith(modality + ".")]
            all_points = {p for m in self.modalities for p in self.points(m)}
            bad = [n for n in other if n not in all_points]
            if bad:
                raise ActstoreError(
                    f"Unknown point(s) {bad}; this model has {', '.join(sorted(all_points))}."
                )
            for n in mine:
                if n not in available:
                    raise ActstoreError(f"Unknown point {n!r}; this model has {', '.join(available)}.")
                if n not in chosen:
                    chosen.append(n)
        order = {p: i for i, p in enumerate(available)}
        return sorted(chosen, key=order.__getitem__)
