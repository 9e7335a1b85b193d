"""A real but trivial text "model": hashed character trigrams through a few fixed random layers.

Each character position i of a sentence gets a one-hot vector of the hash bucket of the trigram
text[i-1:i+2] (crc32, so it is the same in every process); that is the point `text.embed`.
Layer l applies a fixed random linear map (seeded by l) and tanh. Every point is pooled by the
mean over character positions, as real adapters pool over tokens. Deterministic, numpy only,
no weights on disk: `--model toy-chars` is found by `locate`.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from actstore.ingest.adapters.base import Adapter, ModelInfo, Pooled
from actstore.ingest.items import Item
from actstore.ingest.model_paths import ModelSource

WIDTH = 48
LAYERS = 3


def trigram_ids(text: str, width: int = WIDTH) -> np.ndarray:
    """Hash bucket of the trigram centred on every character (padded with spaces)."""
    padded = f" {text} "
    return np.array([zlib.crc32(padded[i:i + 3].encode("utf-8")) % width for i in range(len(text))],
                    dtype=np.int64)


def layer_weights(layer: int, width: int = WIDTH) -> np.ndarray:
    return np.random.default_rng([7, layer]).standard_normal((width, width)) / np.sqrt(width)


class CharTrigramAdapter(Adapter):
    """Text only; points text.embed, text.L1 .. text.L3; found by name via `locate`."""

    modalities = ("text",)
    priority = 90
    study_layers = (1, 3)

    @classmethod
    def known_models(cls) -> tuple[str, ...]:
        return ("toy-chars",)  # offered as "did you mean" when --model is mistyped

    @classmethod
    def locate(cls, model: str, cache_dir) -> ModelSource | None:
        if model != "toy-chars":
            return None
        return ModelSource(model_id=model, path=Path(__file__).parent, name=model,
                           source="package actstore-toy-plugin")

    def load(self) -> None:
        self._weights = [layer_weights(layer) for layer in range(1, LAYERS + 1)]

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(model_id=self.source.model_id, name=self.model_name, adapter=self.adapter_label,
                         random_init=True, extra={"width": WIDTH})

    def points(self, modality: str) -> list[str]:
        return ["text.embed"] + [f"text.L{i}" for i in range(1, LAYERS + 1)] if modality == "text" else []

    def layer_of(self, point: str) -> int | None:
        name = point.split(".", 1)[1]
        return 0 if name == "embed" else int(name[1:])

    def width(self, point: str) -> int:
        return WIDTH

    def hidden(self, text: str) -> list[np.ndarray]:
        """Per-character states: [embed, L1, ..., L3], each (n_chars, WIDTH) float32."""
        h = np.zeros((max(len(text), 1), WIDTH))
        h[np.arange(len(text)), trigram_ids(text)] = 1.0
        states = [h]
        for w in self._weights:
            h = np.tanh(h @ w)
            states.append(h)
        return [s.astype(np.float32) for s in states]

    def encode(self, items: Sequence[Item], points: Sequence[str]) -> dict[str, Pooled]:
        rows = {p: [] for p in points}
        frames = np.array([max(len(it.text or ""), 1) for it in items])
        for it in items:
            states = self.hidden(it.text or "")
            for p in points:
                rows[p].append(states[self.layer_of(p)].mean(axis=0))
        return {p: Pooled(np.stack(rows[p]).astype(np.float32), frames) for p in points}
