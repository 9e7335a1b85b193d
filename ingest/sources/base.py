"""What every data source provides: parallel items keyed by sentence id, cheaply indexed.

A source knows, without decoding audio or synthesising speech, which (sentence_id, sample_id)
entries it has per (language, modality): that index is what `sentence_ids` and `sample_ids`
answer from, so the pipeline can plan and resume for free. Only `items` does the expensive
work (decode, synthesise), lazily, and only for the entries that were asked for and are not
stored yet (`skip_sample_ids`). Subclasses implement `_entries` (the index) and `_load`
(entries -> items); the filtering lives here once.

Requested sentence ids that a source does not have are ignored: a selection is an
intersection (FLEURS, for example, lacks some FLORES sentences in each language).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from actstore.errors import DataSourceError
from actstore.schema import corpus_name
from actstore.ingest.items import MODALITIES, Item


@dataclass(frozen=True)
class Entry:
    """One item a source can produce: its keys plus `ref`, where its payload lives."""

    sentence_id: int
    sample_id: str
    ref: Any = None


class Source(ABC):
    """Base class of the data sources. Constructors only locate data; nothing heavy happens."""

    #: stored as the dataset name in the runs table, e.g. "fleurs"
    name: str = ""
    #: a corpus the user declared this source's sentence ids to belong to (`ingest --corpus`)
    declared_corpus: str | None = None

    def corpus(self, split: str) -> str:
        """The parallel corpus of this source's ids in `split` (stored on every activation row).

        Sentence ids mean something only within their corpus: FLORES id 3 and a user manifest's
        id 3 are different sentences and must never be aligned (docs/ARCHITECTURE.md, Store).
        """
        return self.declared_corpus or corpus_name(self.corpus_base, split)

    @property
    def text_source(self) -> str:
        """The `source` under which this source's texts are stored in the `sentences` table.

        `corpus_name(text_source, split)` is the rows' corpus, so texts are found by corpus: two
        manifests never overwrite each other's texts, and a manifest declared part of FLORES
        (`--corpus flores200:devtest`) stores its texts under that corpus.
        """
        return self.declared_corpus.rsplit(":", 1)[0] if self.declared_corpus else self.corpus_base

    @property
    def corpus_base(self) -> str:
        """The corpus name without its split; sources whose ids name other sentences override it."""
        return self.name

    @abstractmethod
    def revision(self) -> str | None:
        """Dataset revision (hub snapshot hash) or a content hash, for provenance."""

    @abstractmethod
    def languages(self) -> list[str]:
        """ISO 639-3 codes of the languages this source has, sorted."""

    @abstractmethod
    def modalities(self, lang: str) -> list[str]:
        """The modalities this source has for `lang`, e.g. ["text"] for a language without a voice."""

    @abstractmethod
    def texts(self, lang: str) -> dict[int, str]:
        """Sentence text by sentence id (for the `sentences` table and chart tooltips)."""

    @abstractmethod
    def _entries(self, lang: str, modality: str) -> list[Entry]:
        """The index of (lang, modality), in a stable order; cheap (no audio)."""

    @abstractmethod
    def _load(self, lang: str, modality: str, entries: list[Entry]) -> Iterator[Item]:
        """Materialise `entries` (non-empty) as items, lazily."""

    # -- shared behaviour ------------------------------------------------------------------

    def _check(self, lang: str, modality: str) -> None:
        if modality not in MODALITIES:
            raise DataSourceError(
                f"Unknown modality {modality!r}; use one of {', '.join(MODALITIES)}."
            )
        langs = self.languages()
        if lang not in langs:
            raise DataSourceError(
                f"Source {self.name} has no language {lang!r}; choose from {', '.join(langs) or '(none)'}."
            )
        if modality not in self.modalities(lang):
            raise DataSourceError(
                f"Source {self.name} has no {modality} for {lang!r} (only {', '.join(self.modalities(lang))}); "
                "drop that modality for this language or use another source."
            )

    def sentence_ids(self, lang: str, modality: str) -> list[int]:
        """Sorted distinct sentence ids available for (lang, modality)."""
        self._check(lang, modality)
        return sorted({e.sentence_id for e in self._entries(lang, modality)})

    def sample_ids(self, lang: str, modality: str, sentence_ids: Iterable[int] | None = None) -> list[str]:
        """Sample ids of the items `items` would yield for these sentence ids (all if None)."""
        return [e.sample_id for e in self._select(lang, modality, sentence_ids, frozenset())]

    def entries(self, lang: str, modality: str, sentence_ids: Iterable[int] | None = None,
                skip_sample_ids: Collection[str] = frozenset()) -> list[Entry]:
        """The index entries `items` would load, in its order (cheap; for engines that plan)."""
        return self._select(lang, modality, sentence_ids, skip_sample_ids)

    def load(self, lang: str, modality: str, entries: list[Entry]) -> Iterator[Item]:
        """Items of these `entries` (from `entries`), lazily, in the source's reading order:
        planning decides what to read once (possibly on another machine), loading reads that."""
        if not entries:
            return iter(())
        self._check(lang, modality)
        return self._load(lang, modality, list(entries))

    def items(
        self,
        lang: str,
        modality: str,
        *,
        sentence_ids: Iterable[int] | None = None,
        skip_sample_ids: Collection[str] = frozenset(),
    ) -> Iterator[Item]:
        """Items of (lang, modality), lazily; only `sentence_ids` (all if None), minus stored ones.

        Validation happens here (eagerly); the returned iterator does the decoding/synthesis.
        """
        selected = self._select(lang, modality, sentence_ids, skip_sample_ids)
        if not selected:
            return iter(())
        return self._load(lang, modality, selected)

    def _select(
        self,
        lang: str,
        modality: str,
        sentence_ids: Iterable[int] | None,
        skip_sample_ids: Collection[str],
    ) -> list[Entry]:
        self._check(lang, modality)
        entries = self._entries(lang, modality)
        wanted = None if sentence_ids is None else {int(s) for s in sentence_ids}
        skip = skip_sample_ids if isinstance(skip_sample_ids, (set, frozenset)) else set(skip_sample_ids)
        return [
            e for e in entries
            if (wanted is None or e.sentence_id in wanted) and e.sample_id not in skip
        ]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
