"""A user's own parallel data, listed in a CSV or Parquet manifest.

Columns (one row per item):
- `sentence_id` (int): the parallel key; the same id in two languages is the same sentence.
- `lang`: an ISO 639-3 code the catalogue knows (add languages with --languages).
- `modality`: `speech` or `text`.
- `text`: the sentence (text rows); `audio`: a file path, relative to the manifest's directory
  or absolute (speech rows; any format soundfile reads, resampled to 16 kHz if needed).
- optional `sample_id`: unique within (lang, modality); default
  `manifest:{split}:{lang}:{audio path}` for speech, `manifest:{split}:{lang}:{sentence_id}`
  for text. Several recordings of one sentence need distinct audio paths or sample ids.
- optional `split`: stored as is; rows without one get the `split` given to `open_source`.
  Rows are not filtered by split.

The whole manifest is validated when the source is opened (cheap: no audio is decoded), so a
bad row fails before any model runs; each error names the row (CSV: the line number; Parquet:
the 1-based row index) and the fix. A text row may also carry a transcript for `texts()`; when a
sentence has no text row, its first speech row's `text` (if any) is used there.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError, UnknownLanguageError
from actstore.ingest.items import MODALITIES, Item
from actstore.ingest.sources.audio import ResampleTally
from actstore.ingest.sources.base import Entry, Source

REQUIRED = ("sentence_id", "lang", "modality")


def _read_rows(path: Path) -> tuple[list[str], list[tuple[str, dict[str, object]]]]:
    """(column names, [(row label, row dict)]) from a CSV or Parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataSourceError(f"Cannot read Parquet manifest {path} ({exc}); write a valid Parquet file.") from None
        return table.column_names, [(f"row {i}", row) for i, row in enumerate(table.to_pylist(), start=1)]
    if suffix in (".csv", ".tsv"):
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                columns = [c.strip() for c in (reader.fieldnames or [])]
                reader.fieldnames = columns
                rows = [(f"line {reader.line_num}", row) for row in reader]
        except UnicodeDecodeError as exc:
            raise DataSourceError(f"Manifest {path} is not UTF-8 ({exc}); save it as UTF-8.") from None
        return columns, rows
    raise DataSourceError(f"Manifest {path} is neither .csv, .tsv nor .parquet; use one of those formats.")


def _cell(row: dict[str, object], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


class ManifestSource(Source):
    """Items listed in a CSV/Parquet manifest (see module doc)."""

    name = "manifest"

    @property
    def corpus_base(self) -> str:
        """Each manifest is its own corpus, named after its file (`manifest:my_sentences`)."""
        return f"manifest:{self.path.stem}"

    def __init__(self, catalogue: Catalogue, path: str | Path, split: str = "devtest"):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataSourceError(f"Manifest {self.path} does not exist; pass the path of a CSV or Parquet file.")
        self.catalogue = catalogue
        self.default_split = split
        self._index: dict[tuple[str, str], list[Entry]] = {}
        self._texts: dict[str, dict[int, str]] = {}
        self._parse()

    def _parse(self) -> None:
        columns, rows = _read_rows(self.path)
        where = f"Manifest {self.path}"
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise DataSourceError(f"{where} lacks column(s) {', '.join(missing)}; add them (required: {', '.join(REQUIRED)}).")
        if "text" not in columns and "audio" not in columns:
            raise DataSourceError(f"{where} has neither a 'text' nor an 'audio' column; add the one your rows need.")
        if not rows:
            raise DataSourceError(f"{where} has no rows; list at least one item.")
        base = self.path.parent
        seen: dict[tuple[str, str, str], str] = {}
        speech_text: dict[str, dict[int, str]] = {}
        for label, row in rows:
            at = f"{where} {label}"
            raw_id = row.get("sentence_id")
            try:
                if isinstance(raw_id, float) and not raw_id.is_integer():
                    raise ValueError
                sentence_id = int(str(raw_id).strip()) if not isinstance(raw_id, (int, float)) else int(raw_id)
            except (TypeError, ValueError):
                raise DataSourceError(f"{at}: sentence_id {raw_id!r} is not an integer; use the integer sentence number.") from None
            if not -(2**63) <= sentence_id < 2**63:
                raise DataSourceError(f"{at}: sentence_id {sentence_id} does not fit a 64-bit integer; renumber "
                                      "the sentences with ids below 9223372036854775808.")
            lang = _cell(row, "lang")
            try:
                self.catalogue.get(lang)
            except UnknownLanguageError:
                raise DataSourceError(
                    f"{at}: unknown language {lang!r}; use an ISO 639-3 code from the catalogue or add it with --languages."
                ) from None
            modality = _cell(row, "modality").lower()
            if modality not in MODALITIES:
                raise DataSourceError(f"{at}: modality {modality!r} is not speech or text; use one of those.")
            split = _cell(row, "split") or self.default_split
            text = _cell(row, "text")
            if modality == "text":
                if not text:
                    raise DataSourceError(f"{at}: text is empty; fill in the sentence or drop the row.")
                ref: object = text
                default_id = f"manifest:{split}:{lang}:{sentence_id}"
                self._texts.setdefault(lang, {}).setdefault(sentence_id, text)
            else:
                audio = _cell(row, "audio")
                if not audio:
                    raise DataSourceError(f"{at}: a speech row has no audio path; fill in 'audio'.")
                audio_path = Path(audio) if Path(audio).is_absolute() else base / audio
                if not audio_path.is_file():
                    raise DataSourceError(f"{at}: audio file {audio_path} does not exist; fix the path (relative to the manifest's folder).")
                ref = (audio_path, split)
                default_id = f"manifest:{split}:{lang}:{audio}"
                if text:
                    speech_text.setdefault(lang, {}).setdefault(sentence_id, text)
            sample_id = _cell(row, "sample_id") or default_id
            key = (lang, modality, sample_id)
            if key in seen:
                raise DataSourceError(
                    f"{at}: sample_id {sample_id!r} repeats {seen[key]} for {lang} {modality}; give each item a distinct sample_id."
                )
            seen[key] = label
            if modality == "text":
                ref = (text, split)
            self._index.setdefault((lang, modality), []).append(Entry(sentence_id, sample_id, ref))
        for lang, by_id in speech_text.items():
            merged = dict(by_id)
            merged.update(self._texts.get(lang, {}))
            self._texts[lang] = merged

    def revision(self) -> str | None:
        """`sha256:{16 hex}` of the manifest file (audio files are not hashed)."""
        return "sha256:" + hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def languages(self) -> list[str]:
        return sorted({lang for lang, _ in self._index})

    def modalities(self, lang: str) -> list[str]:
        return [m for m in MODALITIES if (lang, m) in self._index]

    def texts(self, lang: str) -> dict[int, str]:
        return dict(sorted(self._texts.get(lang, {}).items()))

    def _entries(self, lang: str, modality: str) -> list[Entry]:
        return self._index[(lang, modality)]

    def _load(self, lang: str, modality: str, entries: list[Entry]) -> Iterator[Item]:
        with ResampleTally("manifest", lang, self.path) as tally:
            for e in entries:
                payload, split = e.ref
                if modality == "text":
                    yield Item(e.sentence_id, lang, "text", e.sample_id, split, text=payload)
                else:
                    yield Item(e.sentence_id, lang, "speech", e.sample_id, split, audio=tally.decode(payload))
