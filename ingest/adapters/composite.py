"""An adapter made of one adapter per modality, forwarding the whole contract to its parts.

Why: a system whose modalities are separate models (SONAR: a text encoder and per-language
speech encoders) must still be ONE model in the store, because the study compares its speech
and text vectors of the same sentences. `ModalityComposite` routes every per-modality hook of
`Adapter` (points, layer_of, width, cost_model, supports_language, speech_window, encode) to the
part for that modality, so a hook added to the contract is forwarded here once, not by each
composite. tests/test_adapter_contract.py fails when a hook of `Adapter` is neither forwarded
here nor listed there as modality-independent.
"""

from __future__ import annotations

from typing import Sequence

from actstore.errors import ActstoreError
from actstore.ingest.adapters.base import Adapter, Pooled
from actstore.ingest.items import Item


class ModalityComposite(Adapter):
    """Base for composites: subclasses set `self.parts = {modality: adapter}` in `__init__`."""

    parts: dict[str, Adapter]

    def load(self) -> None:
        for part in self.parts.values():
            part.load()

    def part(self, modality_or_point: str) -> Adapter:
        """The adapter for a modality (`speech`) or a point (`speech.L4`)."""
        modality = modality_or_point.split(".")[0]
        if modality not in self.parts:
            raise ActstoreError(f"Unknown modality or point {modality_or_point!r}; "
                                f"{type(self).__name__} has {', '.join(self.parts)} points "
                                f"(e.g. {', '.join(m + '.L1' for m in self.parts)}).")
        return self.parts[modality]

    def points(self, modality: str) -> list[str]:
        return self.part(modality).points(modality)

    def optional_points(self, modality: str) -> list[str]:
        return self.part(modality).optional_points(modality)

    def has_decoder(self) -> bool:
        return any(part.has_decoder() for part in self.parts.values())

    def layer_of(self, point: str) -> int | None:
        return self.part(point).layer_of(point)

    def width(self, point: str) -> int:
        return self.part(point).width(point)

    def cost_model(self, modality: str):
        return self.part(modality).cost_model(modality)

    def supports_language(self, lang: str, modality: str) -> bool:
        return self.part(modality).supports_language(lang, modality)

    def speech_window(self) -> float | None:
        return self.parts["speech"].speech_window() if "speech" in self.parts else None

    def encode(self, items: Sequence[Item], points: Sequence[str]) -> dict[str, Pooled]:
        if not points:
            return {}
        modalities = {it.modality for it in items}
        if len(modalities) > 1:
            raise ActstoreError(f"A batch must hold one modality, got {sorted(modalities)}; "
                                "group items by modality before encode().")
        modality = modalities.pop() if modalities else points[0].split(".")[0]
        return self.part(modality).encode(items, points)
