"""The comparison kinds of the similarity and retrieval grids: one definition for every layer.

The analyses compute rows of these kinds, the reports draw them and the CLI lists them in its
help; all three read them here (core), so a new kind or a renamed one cannot drift between them
(reports may not import analyses, so the fact cannot live there).

- ``cross-modal``: speech vs text of the same language and sentences;
- the cross-lingual kinds: two languages, each side a modality. speech-speech and text-text are
  symmetric (A vs B scores as B vs A) and stored once per pair, as the lower triangle;
  speech-text is the full matrix.
"""

from __future__ import annotations

#: speech vs text of one language
CROSS_MODAL = "cross-modal"

#: the cross-lingual kinds, in display order, and the modalities of their two sides
CROSS_LINGUAL_KINDS: dict[str, tuple[str, str]] = {
    "speech-speech": ("speech", "speech"),
    "text-text": ("text", "text"),
    "speech-text": ("speech", "text"),
}

#: cross-lingual kinds whose two sides have one modality: symmetric, stored once per language pair
SYMMETRIC_KINDS: tuple[str, ...] = tuple(k for k, (a, b) in CROSS_LINGUAL_KINDS.items() if a == b)


def kinds_help() -> str:
    """The kinds as a comma-separated list, for help texts and error messages."""
    return ",".join(CROSS_LINGUAL_KINDS)
