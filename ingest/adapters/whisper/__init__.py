"""Whisper's encoder (transformers).

- `adapter`: `WhisperAdapter` (entry point `whisper`) and `whisper_frames`;
- `tiny`: a tiny random-initialised Whisper in the transformers layout.
"""
