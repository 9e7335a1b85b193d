"""SeamlessM4T v2 (transformers): speech encoder, adaptor and text encoder.

- `adapter`: `SeamlessM4Tv2Adapter` (entry point `seamless-m4t-v2`);
- `tiny`: a tiny random-initialised SeamlessM4T v2 in the transformers layout.
"""
