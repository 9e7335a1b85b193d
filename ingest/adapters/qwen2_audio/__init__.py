"""Qwen2-Audio (transformers): the audio tower and the LLM over a chat prompt.

- `adapter`: `Qwen2AudioAdapter` (entry point `qwen2-audio`);
- `tiny`: a tiny random-initialised Qwen2-Audio in the published layout.
"""
