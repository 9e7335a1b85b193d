"""A synthetic store with neuron sites and decoder states, written through the real Store API.

Planted structure (what the tests expect to find):
- `speech.L2.ffn` neuron 5 fires for Russian speech only (language-selective, positive);
- `decoder.L1.cross_attn.v` neuron 3 fires under speech conditioning (modality-selective), and
  neuron 9 is silent for Thai (negative direction);
- `decoder.L2.ffn` neuron 7 fires for Thai under both conditionings (shared by the speech and
  text top sets);
- every site is ReLU-like (non-negative) and speech-conditioned decoder rows put their mass on
  few neurons (more concentrated);
- `decoder.L1` hidden states: text-conditioned rows carry the language on 4 dims (a probe
  separates them), speech-conditioned rows are noise (a probe scores about chance).
"""

from __future__ import annotations

import numpy as np

from actstore.store import Store

from _store_data import put

LANGS = {"eng": "Latin", "rus": "Cyrillic", "tha": "Thai"}
SITES = {"speech.L1.ffn": 24, "speech.L2.ffn": 24, "text.L1.ffn": 16,
         "decoder.L1.cross_attn.v": 32, "decoder.L2.ffn": 48}


def _site_vectors(rng, site: str, lang: str, modality: str, n: int, width: int) -> np.ndarray:
    x = np.maximum(rng.standard_normal((n, width)), 0.0)
    if site.startswith("decoder") and modality == "speech":
        x[:, 4:] *= 0.2  # speech-conditioned decoding: mass on the first few neurons
    if site == "speech.L2.ffn" and lang == "rus":
        x[:, 5] += 6.0
    if site == "decoder.L1.cross_attn.v":
        if modality == "speech":
            x[:, 3] += 6.0
        if lang == "tha":
            x[:, 9] = 0.0
            x[:, 9] -= 1.0
    if site == "decoder.L2.ffn" and lang == "tha":
        x[:, 7] += 6.0
    return x.astype(np.float32)


def site_store(path, *, n: int = 30, seed: int = 0, model: str = "m") -> Store:
    """The store of the module docstring: 3 languages x n sentences, sites and decoder states."""
    store = Store.open(path)
    rng = np.random.default_rng(seed)
    ids = np.arange(n)
    for li, (lang, script) in enumerate(LANGS.items()):
        for modality in ("speech", "text"):
            meta = dict(script=script, resource_level="high" if lang == "eng" else "low")
            for site, width in SITES.items():
                stack = site.split(".")[0]
                if stack in ("speech", "text") and stack != modality:
                    continue
                x = _site_vectors(rng, site, lang, modality, n, width)
                put(store, model, site, modality, lang, ids, x, layer=int(site.split(".")[1][1:]), **meta)
            h = rng.standard_normal((n, 12)).astype(np.float32)
            if modality == "text":
                h[:, li] += 3.0
                h[:, 4 + li] -= 3.0
            put(store, model, "decoder.L1", modality, lang, ids, h, layer=1, **meta)
    return store
