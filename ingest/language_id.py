"""Which language a generated text is in: py3langid (an offline identifier from PyPI with its
model bundled: no download, deterministic), mapped onto the catalogue's ISO 639-3 codes.

Why py3langid: it is made for short texts, ships its model inside the wheel, and answers in
microseconds, so judging every greedy output of an intervention costs nothing beside decoding.
It answers ISO 639-1 codes (some 639-3: `yue`, `sn`...); a catalogue language maps to the code
py3langid knows: an alias where one is needed (`cmn` -> `zh`; `yue` -> `zh` too, because py3langid
calls all 40 of the first FLORES devtest Cantonese sentences `zh`, so Cantonese and Mandarin outputs
are not told apart), else its FLEURS prefix (`fr_fr` -> `fr`), else its own 639-3 code. A language it cannot identify is refused before any model
runs. An empty output is identified as nothing (it counts as not in the language). py3langid
judges over all the languages it knows, not only the study's: an output that drifts into a
third language is caught.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from actstore.errors import ActstoreError

#: catalogue languages py3langid identifies under another (macrolanguage) code (module doc)
ALIASES = {"cmn": "zh", "yue": "zh"}


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE)  # our own: never the shared global


def known_codes() -> frozenset[str]:
    return frozenset(_identifier().labels)


def langid_code(lang: str) -> str:
    """The py3langid code of catalogue language `lang` (ISO 639-3), or one sentence refusing."""
    from actstore.catalogue import Catalogue

    cat = Catalogue.load()
    prefix = cat.get(lang).short_code if lang in cat else ""
    for code in (ALIASES.get(lang, ""), prefix, lang):
        if code and code in known_codes():
            return code
    raise ActstoreError(f"py3langid cannot identify {lang!r}, so --generate cannot judge its output "
                        "language; drop that language from --langs or run without --generate.")


@lru_cache(maxsize=1)
def _to_catalogue() -> dict[str, str]:
    """py3langid code -> catalogue language (the first in code order where several share one)."""
    from actstore.catalogue import Catalogue

    out: dict[str, str] = {}
    for lang in sorted(Catalogue.load().codes):
        try:
            out.setdefault(langid_code(lang), lang)
        except ActstoreError:
            continue
    return out


def identify(texts: Sequence[str]) -> list[str | None]:
    """Per text its py3langid code (None for an empty text)."""
    ident = _identifier()
    return [ident.classify(t)[0] if t.strip() else None for t in texts]


def as_catalogue(code: str | None) -> str | None:
    """A py3langid code as the catalogue's ISO 639-3 language where the catalogue has it, else as
    py3langid's own code (None stays None)."""
    return None if code is None else _to_catalogue().get(code, code)
