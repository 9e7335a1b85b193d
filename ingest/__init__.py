"""Ingest: sources of parallel speech/text items, model adapters, pooling and the pipeline."""
