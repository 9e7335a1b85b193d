"""The language catalogue: code -> name, script, family, resource level, FLORES/FLEURS/espeak ids.

The study's 36 languages ship with the package (`actstore/data/languages.csv`, copied from the
study's table). Users add languages or override rows with their own CSV of the same columns
(only `code` is required; missing columns stay empty), e.g. `--languages my_langs.csv`.
Every stored activation row carries its language's script, family and resource level, so that
analyses can group by them without joining.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from actstore.errors import ActstoreError, UnknownLanguageError

RESOURCE_LEVELS = ("high", "medium", "low")


@dataclass(frozen=True)
class Language:
    """One row of the catalogue. `code` is ISO 639-3 and is the key everywhere in actstore."""

    code: str
    name: str = ""
    script: str = ""
    family: str = ""
    resource_level: str = ""
    seamless_salmonn_set: bool = False
    sonar_set: bool = False
    flores_code: str = ""
    fleurs_config: str = ""
    espeak_voice: str = ""

    @property
    def short_code(self) -> str:
        """The two-letter (ISO 639-1 style) code FLEURS spells the language with (`fr_fr` -> `fr`),
        which Whisper's language tokens and py3langid use; "" where the catalogue has no config."""
        return self.fleurs_config.split("_")[0]


_COLUMNS = tuple(f.name for f in fields(Language))
_BOOL_COLUMNS = ("seamless_salmonn_set", "sonar_set")


def _row_to_language(row: dict[str, str], origin: str) -> Language:
    code = (row.get("code") or "").strip()
    if not code:
        raise ActstoreError(f"{origin}: a row has no 'code'; give every language its ISO 639-3 code.")
    values: dict[str, object] = {"code": code}
    for column in _COLUMNS[1:]:
        raw = (row.get(column) or "").strip()
        if column in _BOOL_COLUMNS:
            values[column] = raw.lower() in ("1", "true", "yes")
        else:
            values[column] = raw
    level = values["resource_level"]
    if level and level not in RESOURCE_LEVELS:
        raise ActstoreError(
            f"{origin}: language {code!r} has resource_level {level!r}; use one of high, medium, low."
        )
    return Language(**values)  # type: ignore[arg-type]


def _read_csv(text: str, origin: str) -> dict[str, Language]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "code" not in reader.fieldnames:
        raise ActstoreError(f"{origin}: the CSV needs a header with at least a 'code' column.")
    unknown = set(reader.fieldnames) - set(_COLUMNS)
    if unknown:
        raise ActstoreError(
            f"{origin}: unknown column(s) {sorted(unknown)}; allowed columns are {', '.join(_COLUMNS)}."
        )
    out: dict[str, Language] = {}
    for row in reader:
        lang = _row_to_language(row, origin)
        out[lang.code] = lang
    return out


class Catalogue:
    """Languages by ISO 639-3 code; the study's table plus any user CSVs layered on top."""

    def __init__(self, languages: dict[str, Language]):
        self._languages = dict(languages)

    @classmethod
    def load(cls, *extra_csvs: str | Path | None) -> "Catalogue":
        """The shipped study table, then each user CSV in order (later rows override earlier)."""
        text = resources.files("actstore.data").joinpath("languages.csv").read_text("utf-8")
        languages = _read_csv(text, "the shipped languages.csv")
        for path in extra_csvs:
            if path is None:
                continue
            p = Path(path)
            if not p.is_file():
                raise ActstoreError(f"Language CSV {p} does not exist; pass an existing CSV file.")
            for code, lang in _read_csv(p.read_text("utf-8"), str(p)).items():
                base = languages.get(code)
                if base is not None:
                    # Only override the columns the user filled in.
                    merged = {f: getattr(lang, f) or getattr(base, f) for f in _COLUMNS}
                    lang = Language(**merged)
                languages[code] = lang
        return cls(languages)

    def __contains__(self, code: str) -> bool:
        return code in self._languages

    def __iter__(self):
        return iter(self._languages.values())

    def __len__(self) -> int:
        return len(self._languages)

    @property
    def codes(self) -> list[str]:
        return sorted(self._languages)

    def get(self, code: str) -> Language:
        """The language for `code`, or a clear error naming how to add it."""
        try:
            return self._languages[code]
        except KeyError:
            raise UnknownLanguageError(
                f"Unknown language {code!r}; use one of {', '.join(self.codes)} "
                "or add it with --languages YOUR.csv (columns as in the shipped languages.csv)."
            ) from None

    def resolve(self, codes: str | list[str] | None, *, language_set: str | None = None) -> list[str]:
        """Validate a list (or comma string) of codes; None or 'all' means every language.

        `language_set` picks one of the study's sets: 'seamless_salmonn' or 'sonar'.
        """
        if isinstance(codes, str):
            codes = [c.strip() for c in codes.split(",") if c.strip()]
        if not codes or codes == ["all"]:
            chosen = self.codes
        else:
            chosen = []
            for c in codes:
                self.get(c)
                if c not in chosen:
                    chosen.append(c)
        if language_set:
            column = {"seamless_salmonn": "seamless_salmonn_set", "sonar": "sonar_set"}.get(language_set)
            if column is None:
                raise ActstoreError(
                    f"Unknown language set {language_set!r}; use 'seamless_salmonn' or 'sonar'."
                )
            chosen = [c for c in chosen if getattr(self._languages[c], column)]
        return chosen
