"""Decoder targets: which sentence a teacher-forced decoder reads, checked before any store opens.

With decoder points requested, every item's target is the sentence itself (transcription: the
source's text of the item's language and sentence id) or, with `--target-lang`, the parallel
sentence in that language (same corpus, same sentence id: translation). A target that does not
exist is refused here, in one sentence, so a refused ingest leaves the store unchanged.
"""

from __future__ import annotations

import dataclasses

from actstore.errors import ActstoreError
from actstore.ingest.adapters.base import Adapter
from actstore.ingest.items import Item
from actstore.ingest.steps.jobs import IngestRequest, Job


def wants_decoder(points_by_mod: dict[str, list[str]]) -> bool:
    return any(p.startswith("decoder.") for ps in points_by_mod.values() for p in ps)


def resolve_targets(request: IngestRequest, adapter: Adapter, source, langs: list[str],
                    points_by_mod: dict[str, list[str]]) -> dict[str, dict[int, str]]:
    """lang -> {sentence id: target text} for every sentence the ingest may decode ({} when no
    decoder point is requested); refuses a missing target sentence or a pointless --target-lang."""
    if not wants_decoder(points_by_mod):
        if request.target_lang is not None:
            raise ActstoreError(f"--target-lang {request.target_lang} needs decoder points; add e.g. "
                                "--points decoder.L1 or --sites cross_attn.k, or drop --target-lang.")
        return {}
    other = [lang for lang in langs if lang != request.target_lang]
    if request.target_lang is not None and other and not adapter.translates:
        raise ActstoreError(f"{adapter.adapter_label} decodes transcriptions only, not {other[0]}->"
                            f"{request.target_lang}; drop --target-lang.")
    out: dict[str, dict[int, str]] = {}
    fixed = None
    if request.target_lang is not None:
        fixed = source.texts(request.target_lang) if request.target_lang in source.languages() else {}
        if not fixed:
            raise ActstoreError(f"Source {source.name} has no {request.target_lang} text to decode as the "
                                "target; pick a --target-lang the source has texts for.")
    for lang in langs:
        texts = fixed if fixed is not None else source.texts(lang)
        for modality in points_by_mod:
            if modality not in source.modalities(lang):
                continue
            ids = sorted(source.sentence_ids(lang, modality))
            ids = ids[: request.limit] if request.limit is not None else ids
            missing = [i for i in ids if not (texts.get(i) or "").strip()]
            if missing:
                target = request.target_lang or lang
                raise ActstoreError(f"{len(missing)} {lang} sentence(s) (e.g. id {missing[0]}) have no "
                                    f"{target} sentence to decode; pick another --target-lang or "
                                    "--langs, or use a source with those texts.")
        out[lang] = texts
    return out


def attach(jobs: list[Job], targets: dict[str, dict[int, str]], target_lang: str | None) -> None:
    """Give each decoding job its targets (what `with_targets` puts on the items)."""
    for job in jobs:
        if job.lang in targets:
            job.targets = {i: targets[job.lang][i] for i in job.ids if i in targets[job.lang]}
            job.target_lang = target_lang or job.lang


def with_targets(job: Job, items: list[Item]) -> list[Item]:
    """The items with their decoder target set (unchanged when the job does not decode)."""
    if not job.targets:
        return items
    return [dataclasses.replace(it, target=job.targets.get(it.sentence_id), target_lang=job.target_lang)
            for it in items]
