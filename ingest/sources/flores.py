"""FLORES-200 text, plus speech synthesised from it with espeak-ng: the offline default source.

Layout (the official `flores200_dataset` tarball, and what ships in `ingest/data/flores200/`):
`{root}/{split}/{flores_code}.{split}`, split "dev" (997 lines) or "devtest" (1012 lines), one
sentence per line, the same order in every language. Line N (1-based) is sentence id N: the
parallel key. The package ships devtest for the study's 36 languages (CC-BY-SA 4.0, see
`ingest/data/flores200/README.md`); point `data_dir` at a full FLORES-200 directory for `dev` or
other languages (the catalogue's `flores_code` names the file).

`FloresText` is text only (name "flores200"); `FloresSource` adds espeak-ng speech of the same
sentences (name "flores200+espeak-ng"). A language without an espeak-ng voice (khm, lao, sna in
the study) has text only: it is listed in `languages_without_speech` and logged once, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError
from actstore.ingest.items import Item
from actstore.ingest.sources.base import Entry, Source
from actstore.ingest.sources.espeak import EspeakSynthesizer

log = logging.getLogger(__name__)

SPLITS = ("dev", "devtest")


def shipped_flores_dir() -> Path:
    """The FLORES-200 directory shipped inside the package (devtest only)."""
    return Path(str(resources.files("actstore.ingest.data").joinpath("flores200")))


def read_flores_file(path: Path) -> list[str]:
    """The sentences of one FLORES file, index i = sentence id i+1; empty lines are errors."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataSourceError(f"FLORES file {path} is not UTF-8 ({exc}); re-download it.") from None
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r").strip()
        if not text:
            raise DataSourceError(
                f"FLORES file {path} line {number} is empty; restore the file (every line is a sentence)."
            )
        out.append(text)
    if not out:
        raise DataSourceError(f"FLORES file {path} has no sentences; restore or re-download it.")
    return out


class FloresText(Source):
    """FLORES-200 sentences as text items; sample_id `flores200:{split}:{lang}:{id}`."""

    name = "flores200"

    def __init__(self, catalogue: Catalogue, data_dir: str | Path | None = None, split: str = "devtest"):
        if split not in SPLITS:
            raise DataSourceError(f"FLORES-200 has no split {split!r}; use 'dev' or 'devtest'.")
        root = Path(data_dir) if data_dir is not None else shipped_flores_dir()
        split_dir = root / split
        if not split_dir.is_dir():
            hint = (
                "the shipped data has only devtest: pass --data-dir with a full FLORES-200 directory"
                if data_dir is None
                else "pass a FLORES-200 directory that contains dev/ and devtest/"
            )
            raise DataSourceError(f"FLORES-200 directory {split_dir} does not exist; {hint}.")
        self.catalogue = catalogue
        self.root = root
        self.split = split
        self._dir = split_dir
        self._lines: dict[str, list[str]] = {}
        self._langs = sorted(
            lang.code for lang in catalogue
            if lang.flores_code and self._file(lang.flores_code).is_file()
        )
        self._revision: str | None = None

    def _file(self, flores_code: str) -> Path:
        return self._dir / f"{flores_code}.{self.split}"

    def revision(self) -> str | None:
        """`flores200:{split}:sha256:{first 16 hex}` over the files of this source's languages."""
        if self._revision is None:
            h = hashlib.sha256()
            for code in self._langs:
                path = self._file(self.catalogue.get(code).flores_code)
                h.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
            self._revision = f"flores200:{self.split}:sha256:{h.hexdigest()[:16]}"
        return self._revision

    def languages(self) -> list[str]:
        return list(self._langs)

    def modalities(self, lang: str) -> list[str]:
        return ["text"]

    def lines(self, lang: str) -> list[str]:
        """All sentences of `lang` (index i = sentence id i+1), read once."""
        if lang not in self._lines:
            if lang not in self._langs:
                raise DataSourceError(
                    f"FLORES-200 in {self._dir} has no file for {lang!r}; choose from {', '.join(self._langs)}."
                )
            self._lines[lang] = read_flores_file(self._file(self.catalogue.get(lang).flores_code))
        return self._lines[lang]

    def texts(self, lang: str) -> dict[int, str]:
        return {i: text for i, text in enumerate(self.lines(lang), start=1)}

    def _entries(self, lang: str, modality: str) -> list[Entry]:
        return [
            Entry(i, f"flores200:{self.split}:{lang}:{i}", text)
            for i, text in enumerate(self.lines(lang), start=1)
        ]

    def _load(self, lang: str, modality: str, entries: list[Entry]) -> Iterator[Item]:
        for e in entries:
            yield Item(e.sentence_id, lang, "text", e.sample_id, self.split, text=e.ref)


class FloresSource(FloresText):
    """FLORES-200 text plus espeak-ng speech of every sentence (the offline default).

    Speech sample_id: `espeak-ng:{voice}:{split}:{lang}:{id}`. Pass `speech=False` for text only.
    """

    name = "flores200+espeak-ng"

    def __init__(
        self,
        catalogue: Catalogue,
        data_dir: str | Path | None = None,
        split: str = "devtest",
        cache_dir: str | Path | None = None,
        *,
        speech: bool = True,
        workers: int = 2,
        synthesizer: EspeakSynthesizer | None = None,
    ):
        super().__init__(catalogue, data_dir, split)
        self.speech = speech
        self.synth = synthesizer or EspeakSynthesizer(cache_dir, workers=workers)
        self._without_speech: list[str] | None = None

    def _voice(self, lang: str) -> str:
        return self.catalogue.get(lang).espeak_voice

    def _has_speech(self, lang: str) -> bool:
        voice = self._voice(lang)
        if not (self.speech and voice):
            return False
        # Without espeak-ng we keep speech listed, so asking for it gives the install hint.
        return not self.synth.available() or self.synth.has_voice(voice)

    @property
    def languages_without_speech(self) -> list[str]:
        """Languages with text but no espeak-ng voice (logged once as a warning, not fatal)."""
        if self._without_speech is None:
            self._without_speech = [c for c in self._langs if not self._has_speech(c)]
            if self._without_speech and self.speech:
                log.warning(
                    "No espeak-ng voice for %s: text only for %s (set espeak_voice in a languages "
                    "CSV to add speech).",
                    ", ".join(self._without_speech),
                    "this language" if len(self._without_speech) == 1 else "these languages",
                )
        return list(self._without_speech)

    def revision(self) -> str | None:
        """The FLORES content hash, plus `+espeak-ng:{version}` when speech is synthesised."""
        text_rev = super().revision()
        if self.speech and self.synth.available():
            return f"{text_rev}+espeak-ng:{self.synth.version}"
        return text_rev

    def modalities(self, lang: str) -> list[str]:
        if lang not in self._langs:
            return []
        return ["text"] if lang in self.languages_without_speech else ["speech", "text"]

    def _entries(self, lang: str, modality: str) -> list[Entry]:
        if modality == "text":
            return super()._entries(lang, modality)
        voice = self._voice(lang)
        return [
            Entry(i, f"espeak-ng:{voice}:{self.split}:{lang}:{i}", text)
            for i, text in enumerate(self.lines(lang), start=1)
        ]

    def _load(self, lang: str, modality: str, entries: list[Entry]) -> Iterator[Item]:
        if modality == "text":
            return super()._load(lang, modality, entries)
        voice = self._voice(lang)
        self.synth.check(voice)  # eagerly: a missing espeak-ng fails before the first item
        return self._speech(lang, voice, entries)

    def _speech(self, lang: str, voice: str, entries: list[Entry]) -> Iterator[Item]:
        waves = self.synth.synthesize_many((e.ref for e in entries), voice)
        try:
            for e, audio in zip(entries, waves):
                yield Item(e.sentence_id, lang, "speech", e.sample_id, self.split, audio=audio)
        finally:
            waves.close()
