"""Whole jobs as library calls: the layer above ingest, analyses and reports.

A workflow (the multi-model report, a study run from a TOML file) needs all three layers, which
may not import each other; before this package only the CLI could join them, so Python users and
the study runner could not reuse what the CLI did. The CLI and Python callers import workflows;
nothing in core, ingest, analyses or reports does (import-linter contracts in pyproject.toml,
docs/ARCHITECTURE.md, Layers).
"""
