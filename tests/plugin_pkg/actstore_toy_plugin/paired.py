"""A toy paired adapter: a sentence's speech and text meet in one forward (SALMONN-style).

`paired = True` makes the ingest pipeline hand it speech[i] and text[i] of the same sentence
through `encode_pairs`. speech.embed: mean over 20 ms frames of log band energies; text.embed:
the character-trigram embedding of `chars`; L1 of each side: tanh of a fixed map of its own
embedding concatenated with the other side's, so each side's L1 depends on its partner, as in a
model whose prompt holds both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from actstore.errors import ActstoreError
from actstore.ingest.adapters.base import Adapter, ModelInfo, Pooled
from actstore.ingest.items import Item
from actstore.ingest.model_paths import ModelSource

from .chars import WIDTH, trigram_ids

FRAME = 320  # 20 ms at 16 kHz


def band_energies(audio: np.ndarray) -> np.ndarray:
    """(n_frames, WIDTH) log energies of WIDTH equal frequency bands per 20 ms frame."""
    n = max(len(audio) // FRAME, 1)
    frames = np.zeros((n, FRAME))
    usable = audio[: n * FRAME]
    frames.flat[: usable.size] = usable
    spectrum = np.abs(np.fft.rfft(frames, axis=1))[:, 1:]  # drop DC: 160 bins
    bands = np.array_split(spectrum, WIDTH, axis=1)
    return np.log1p(np.stack([b.sum(axis=1) for b in bands], axis=1))


class PairedToyAdapter(Adapter):
    """speech.embed, speech.L1, text.embed, text.L1; only `--adapter toy-paired --model toy-paired`."""

    modalities = ("speech", "text")
    priority = 90
    paired = True

    @classmethod
    def locate(cls, model: str, cache_dir) -> ModelSource | None:
        if model != "toy-paired":
            return None
        return ModelSource(model_id=model, path=Path(__file__).parent, name=model,
                           source="package actstore-toy-plugin")

    def load(self) -> None:
        rng = np.random.default_rng(11)
        self._joint = {m: rng.standard_normal((2 * WIDTH, WIDTH)) / np.sqrt(2 * WIDTH)
                       for m in ("speech", "text")}

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(model_id=self.source.model_id, name=self.model_name, adapter=self.adapter_label,
                         random_init=True)

    def points(self, modality: str) -> list[str]:
        return [f"{modality}.embed", f"{modality}.L1"] if modality in self.modalities else []

    def layer_of(self, point: str) -> int | None:
        return 0 if point.endswith(".embed") else 1

    def width(self, point: str) -> int:
        return WIDTH

    def encode(self, items: Sequence[Item], points: Sequence[str]) -> dict[str, Pooled]:
        raise ActstoreError("toy-paired encodes a sentence's speech and text together; "
                            "pass --modalities speech,text.")

    def encode_pairs(self, speech: Sequence[Item], text: Sequence[Item],
                     points: Sequence[str]) -> dict[str, Pooled]:
        assert [s.sentence_id for s in speech] == [t.sentence_id for t in text], "pairs out of order"
        s_frames = [band_energies(it.audio) for it in speech]
        t_chars = []
        for it in text:
            h = np.zeros((max(len(it.text), 1), WIDTH))
            h[np.arange(len(it.text)), trigram_ids(it.text)] = 1.0
            t_chars.append(h)
        emb = {"speech": np.stack([f.mean(axis=0) for f in s_frames]),
               "text": np.stack([c.mean(axis=0) for c in t_chars])}
        other = {"speech": "text", "text": "speech"}
        out: dict[str, Pooled] = {}
        n = {"speech": np.array([len(f) for f in s_frames]), "text": np.array([len(c) for c in t_chars])}
        for p in points:
            modality, name = p.split(".", 1)
            if name == "embed":
                vec = emb[modality]
            else:
                vec = np.tanh(np.concatenate([emb[modality], emb[other[modality]]], axis=1) @ self._joint[modality])
            out[p] = Pooled(vec.astype(np.float32), n[modality])
        return out
