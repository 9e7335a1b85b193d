"""Planning and resume: which points, which jobs, and what each job still has to do.

Everything here is decided before any model runs. `prepare_plan` chooses the points (checked
against the store's widths and dtypes) and cuts the work into jobs; `pending_keys` reads, once
per job, which of its items the store already holds at every requested point (resume), from the
store and the source's index alone; `load_work` then reads the payloads (decodes audio) of the
keys still to encode.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import polars as pl

from actstore.catalogue import Catalogue
from actstore.errors import ActstoreError
from actstore.store import Store
from actstore.ingest.adapters.base import Adapter
from actstore.ingest.adapters.common.sites import check_kinds, expand_kinds, parse_name
from actstore.ingest.adapters.common.study import STUDY_LAYERS
from actstore.ingest.sources.base import Entry
from actstore.ingest.steps.targets import with_targets
from actstore.ingest.steps.jobs import IngestPlan, IngestRequest, Job, JobKeys, JobWork

log = logging.getLogger("actstore.ingest")


def study_layers(adapter: Adapter) -> list[int]:
    """`--layers study`: the adapter's own study layers, else the SeamlessM4T study's."""
    own = adapter.study_layers
    return list(own) if own else list(STUDY_LAYERS)


def _check_point_names(adapter: Adapter, names: Sequence[str]) -> None:
    """Refuse `--points` names the model does not have, naming each one as the user wrote it."""
    every = [p for m in adapter.modalities for p in adapter.points(m) + adapter.optional_points(m)]
    bad = [n for n in names if n not in every]
    if bad and any(n.startswith("decoder.") for n in bad) and not adapter.has_decoder():
        raise ActstoreError(f"Model {adapter.info.name!r} is encoder-only: it has no decoder points "
                            f"({', '.join(n for n in bad if n.startswith('decoder.'))}); drop them.")
    if bad:
        what = f"point {bad[0]!r}" if len(bad) == 1 else "points " + ", ".join(map(repr, bad))
        raise ActstoreError(f"Unknown {what} in --points; this model has {', '.join(every)}.")


def choose_points(adapter: Adapter, request: IngestRequest) -> tuple[dict[str, list[str]], list[dict]]:
    """Points per modality, and the points-registry rows (layer, width, vector dtype) for them."""
    if request.sites:
        check_kinds(request.sites)
    study = request.layers == "study"
    layers = study_layers(adapter) if study else request.layers
    names = request.points
    if names is not None:
        _check_point_names(adapter, names)
    points_by_mod: dict[str, list[str]] = {}
    for modality in request.modalities:
        if modality not in adapter.modalities:
            continue
        if study:
            # The study's set names depths of the full-size model; a smaller model (a tiny
            # random-init check) gets those of them it has, and the log says which were dropped.
            have = {adapter.layer_of(p) for p in adapter.points(modality)}
            dropped = [i for i in study_layers(adapter) if i not in have]
            if dropped:
                log.warning("--layers study: %s has no %s layer(s) %s; using the others", adapter.info.name,
                            modality, dropped)
            layers = [i for i in study_layers(adapter) if i in have]
        own = set(adapter.points(modality)) | set(adapter.optional_points(modality))
        if names is not None and not any(n in own or n.startswith(modality + ".") for n in names):
            continue  # explicit names for the other modality only: choose nothing here
        chosen = adapter.select_points(modality, layers=layers, names=names)
        if request.sites:
            chosen += [p for p in expand_kinds(request.sites, adapter.optional_points(modality), layers,
                                                   adapter.layer_of)
                       if p not in chosen]
        if chosen:
            points_by_mod[modality] = chosen
    if request.sites and not any(parse_name(p) and parse_name(p)[2] for ps in points_by_mod.values()
                                 for p in ps):
        raise ActstoreError(f"Model {adapter.info.name!r} has no {','.join(request.sites)} site at the "
                            "requested layers; see `actstore points --model ...` for its sites.")
    if not points_by_mod:
        raise ActstoreError(
            f"Model {adapter.info.name!r} encodes {', '.join(adapter.modalities)}; none of the requested "
            f"modalities/points ({', '.join(request.modalities)}) apply."
        )
    point_rows = [
        {"point": p, "modality": m, "layer": adapter.layer_of(p), "width": adapter.width(p),
         "vector_dtype": request.vector_dtype}
        for m, ps in points_by_mod.items() for p in ps
    ]
    return points_by_mod, point_rows
def plan_jobs(source, langs: Sequence[str], points_by_mod: dict[str, list[str]], *,
              limit: int | None, paired: bool = False,
              supports: Callable[[str, str], bool] | None = None) -> tuple[list[Job], dict[str, str]]:
    """Jobs in (language, modality) order, and the (language, modality) combinations skipped.

    A paired adapter gets one job per language holding both modalities, restricted to the
    sentence ids both modalities have (a sentence is encoded as a speech+text pair).
    `supports(lang, modality)` lets an adapter decline a language it has no weights for (SONAR's
    per-language speech encoders): that combination is reported as skipped, not fatal.
    """
    jobs: list[Job] = []
    skipped: dict[str, str] = {}
    for lang in langs:
        ids_by_mod: dict[str, list[int]] = {}
        for modality in points_by_mod:
            if modality not in source.modalities(lang):
                skipped[f"{lang}/{modality}"] = f"{source.name} has no {modality} for {lang}"
                continue
            if supports is not None and not supports(lang, modality):
                skipped[f"{lang}/{modality}"] = f"the model cannot encode {modality} in {lang}"
                continue
            ids_by_mod[modality] = sorted(source.sentence_ids(lang, modality))
        if paired and len(points_by_mod) > 1:
            if len(ids_by_mod) < len(points_by_mod):
                for modality in ids_by_mod:  # a pair needs both sides
                    skipped[f"{lang}/{modality}"] = f"{source.name} has no paired speech and text for {lang}"
                continue
            shared = sorted(set.intersection(*(set(v) for v in ids_by_mod.values())))
            ids = shared[:limit] if limit is not None else shared
            jobs.append(Job(lang, tuple(ids_by_mod), ids, {m: points_by_mod[m] for m in ids_by_mod}))
            continue
        for modality, ids in ids_by_mod.items():
            ids = ids[:limit] if limit is not None else ids
            jobs.append(Job(lang, (modality,), ids, {modality: points_by_mod[modality]}))
    return jobs, skipped


def prepare_plan(store: Store, request: IngestRequest, adapter: Adapter, catalogue: Catalogue, source,
                 langs: list[str], chosen: tuple[dict, list] | None = None) -> IngestPlan:
    """Choose points (or take `chosen`, from `choose_points`), check them against the store
    (widths, dtypes) and plan the jobs."""
    points_by_mod, point_rows = chosen if chosen is not None else choose_points(adapter, request)
    model = adapter.info.name
    store.check_points(model, point_rows)
    jobs, skipped = plan_jobs(source, langs, points_by_mod, limit=request.limit, paired=bool(adapter.paired),
                              supports=adapter.supports_language)
    return IngestPlan(model=model, info=adapter.info, source=source, catalogue=catalogue, langs=langs,
                      points_by_mod=points_by_mod, point_rows=point_rows, jobs=jobs, skipped=skipped)


def stored_samples(store: Store, model: str, lang: str, modality: str,
                   points: Sequence[str]) -> tuple[set[str], set[str]]:
    """(complete, partial): sample ids stored at every one / only some of `points`."""
    if not store.points(model).height:
        return set(), set()
    stored = store.stored_keys(model, modality, lang, points)
    if not stored.height:
        return set(), set()
    counts = stored.group_by("sample_id").len()
    complete = set(counts.filter(pl.col("len") >= len(points))["sample_id"].to_list())
    return complete, set(counts["sample_id"].to_list()) - complete


def pending_keys(store: Store, model: str, source, job: Job, *, overwrite: bool) -> JobKeys:
    """The keys of `job` still to encode, from the store and the source's index only (no audio
    is decoded): engines that read payloads elsewhere (Ray actors) plan with this.

    Paired jobs skip a sentence only when both its speech and its text are fully stored.
    """
    state = {m: stored_samples(store, model, job.lang, m, job.points[m]) for m in job.modalities}
    complete = {m: (set() if overwrite else done) for m, (done, _) in state.items()}
    paired = len(job.modalities) > 1
    entries: dict[str, list[Entry]] = {}
    for modality in job.modalities:
        skip = frozenset() if overwrite or paired else frozenset(complete[modality])
        entries[modality] = source.entries(job.lang, modality, job.ids, skip)
    if paired:
        entries, complete = _pair_up(entries, complete)
    replace = overwrite or any(
        bool(partial) or bool(done & {e.sample_id for e in entries[m]})
        for m, (done, partial) in state.items()
    )
    return JobKeys(job=job, entries=entries, complete=complete, replace=replace)


def load_work(source, keys: JobKeys) -> JobWork:
    """The payloads of a job's pending keys (audio decoded, texts read), in the keys' order."""
    job = keys.job
    items = {m: with_targets(job, list(source.load(job.lang, m, es))) for m, es in keys.entries.items()}
    return JobWork(job=job, items=items, complete=keys.complete, replace=keys.replace)


def pending_work(store: Store, model: str, source, job: Job, *, overwrite: bool) -> JobWork:
    """The items of `job` still to encode: all with `overwrite`, else those not fully stored."""
    return load_work(source, pending_keys(store, model, source, job, overwrite=overwrite))


def pending_jobs(store: Store, plan: IngestPlan, *, overwrite: bool) -> list[JobKeys]:
    """Every job's pending keys, in job order: the store is read once per job, here, before the
    run starts; the memory check and the engines all work from this one answer."""
    return [pending_keys(store, plan.model, plan.source, job, overwrite=overwrite) for job in plan.jobs]


def _pair_up(items: dict[str, list], complete: dict[str, set[str]]
             ) -> tuple[dict[str, list], dict[str, set[str]]]:
    """Speech and text items (or source entries) of the same sentence ids, in the same order (one
    recording per id), leaving out sentences whose speech and text are both stored; returns
    (pairs, skipped ids)."""
    speech: dict[int, object] = {}
    for it in items.get("speech", []):
        speech.setdefault(it.sentence_id, it)
    text = {it.sentence_id: it for it in items.get("text", [])}
    todo: dict[str, list] = {"speech": [], "text": []}
    skipped: dict[str, set[str]] = {"speech": set(), "text": set()}
    for i in sorted(set(speech) & set(text)):
        pair = {"speech": speech[i], "text": text[i]}
        done = all(pair[m].sample_id in complete[m] for m in pair)
        for m, it in pair.items():
            if done:
                skipped[m].add(it.sample_id)
            else:
                todo[m].append(it)
    return todo, skipped

