"""Data files shipped with actstore (the study's language catalogue)."""
