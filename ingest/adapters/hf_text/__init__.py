"""Any transformers text encoder (BERT, MiniLM, XLM-R, ...): the generic, lowest-priority adapter.

- `adapter`: `HFTextAdapter` (entry point `hf-text`);
- `tiny`: a tiny random-initialised BERT with a trained WordPiece tokenizer.
"""
