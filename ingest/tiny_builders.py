"""Tiny random-initialised models, one builder per family, by kind name.

Each builder writes a model in its family's PUBLISHED on-disk format (a transformers directory, a
fairseq checkpoint, SALMONN's decode config + checkpoints, ...), so the demo and the tests
exercise the same loading code as real weights. Every model is marked random-init, and results
computed from it are labelled RANDOM-INIT wherever they appear.

Builders are imported lazily (a builder module imports torch): the CLI lists the kinds without it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

#: kind -> "module:function"; the function takes (out_dir, *, seed) and returns the written path
TINY_BUILDERS: dict[str, str] = {
    "seamless-m4t-v2": "actstore.ingest.adapters.seamless_m4t_v2.tiny:build_tiny_seamless_m4t_v2",
    "whisper": "actstore.ingest.adapters.whisper.tiny:build_tiny_whisper",
    "bert": "actstore.ingest.adapters.hf_text.tiny:build_tiny_bert",
    "qwen2-audio": "actstore.ingest.adapters.qwen2_audio.tiny:build_tiny_qwen2_audio",
    "salmonn": "actstore.ingest.adapters.salmonn.tiny:build_tiny_salmonn",
    "sonar": "actstore.ingest.adapters.sonar.tiny:build_tiny_sonar",
    "sonar-text": "actstore.ingest.adapters.sonar.tiny:build_tiny_sonar_text",
    "sonar-speech": "actstore.ingest.adapters.sonar.tiny:build_tiny_sonar_speech",
}


def build_tiny(kind: str, out: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random-init model of `kind` to `out`; returns the path to pass to --model."""
    from actstore.errors import ActstoreError

    if kind not in TINY_BUILDERS:
        raise ActstoreError(f"Unknown tiny model kind {kind!r}; use one of {', '.join(TINY_BUILDERS)}.")
    module, func = TINY_BUILDERS[kind].split(":")
    return Path(getattr(importlib.import_module(module), func)(out, seed=seed))
