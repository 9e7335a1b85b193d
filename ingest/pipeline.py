"""The ingest pipeline: source items -> adapter (batched, hooked) -> pooled rows -> store.

Unit of work: a *job* = (language, modality), or (language, speech+text) for `paired` adapters
that see a sentence's speech and text in one forward. A job's rows at every requested point are
written in ONE commit per vector width, so an interrupted ingest leaves complete jobs and nothing
half-written; a rerun skips the sample ids already stored at every requested point (resume) and
replaces keys it recomputes (`--overwrite`, or items that miss only some points), so nothing is
ever duplicated.

Crash safety (a kill at ANY point; issue 10, item 5). Every commit is atomic, and their order
makes each state after a kill one that the next ingest completes without help:

1. The job's sentence texts are upserted BEFORE its activations (keyed, idempotent), so stored
   activations always imply stored texts. A kill between the two leaves texts without rows: the
   rerun encodes the job and upserts the same texts again. (Stores written before this order could
   hold rows without texts: `fill_missing_texts` writes those from the source, no model needed.)
2. Activations: one keyed commit per width. A kill between widths leaves some points of the
   job's items stored: those items count as partial and are recomputed with a keyed replace.
3. Points are registered after the job's first activation commit (a failed write must not leave
   points without a table). A kill before the registration leaves rows the store does not list:
   the rerun sees nothing stored, encodes again and the keyed insert drops the rows it already has.
4. Finalize (compaction, indices, old-version cleanup) runs whenever `finalize_needed` says the
   store needs it, not only when this run wrote rows, so a finalize killed half-way is redone.
   Old versions are dropped only when no other live ingest may still read them
   (`other_live_runs`); otherwise the last (or the next) ingest drops them.
5. The runs row records host, pid and process start; every ingest first marks this host's
   `running` runs whose process is gone as `interrupted` (`mark_stale_runs`).

`ACTSTORE_FAULT=phase[:k]` kills the process at a named phase to test exactly this
(`actstore.ingest.faults`; `tests/test_faults.py`, `scripts/fault_campaign.py`).

The steps are separate functions so other engines reuse them (a distributed engine plans and
filters on the driver, encodes on workers and writes each job with `write_job`):

    check_request -> open_inputs -> choose_points -> plan_jobs      (no model runs yet)
    -> check_memory (every item of every job against --max-seconds / --memory-budget)
    -> pending_work (per job: what is stored, what to encode)
    -> encode_job (length-bucketed batches under the memory budget) -> job_rows
    -> write_job (one commit per width)
    -> finish (compact + index)

`ingest` runs them in order inside a provenance record (`runs` table). `on_phase(name, job)` is
called before each named phase (`PHASES`), so tests can inject faults exactly there.
Pooling is a masked mean in float32 inside the adapter.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from actstore.catalogue import Catalogue
from actstore.disk_faults import disk_errors
from actstore.errors import ActstoreError
from actstore.schema import METADATA_FIELDS
from actstore.store import Store, numpy_to_vectors
from actstore.store.runs import mark_stale_runs, other_live_runs
from actstore.ingest.faults import FAULT_PHASES, fault_hook
from actstore.ingest.adapters.base import Adapter, ModelInfo
from actstore.ingest.items import MODALITIES, Item
from actstore.ingest.memory import (BatchCost, MemoryLimits, budgeted_batches, check_items, parse_size,
                                    resolve_limits)
from actstore.ingest.sources.base import Entry

log = logging.getLogger("actstore.ingest")

from actstore.ingest.requests import STUDY_LAYERS, parse_layers  # noqa: F401  (re-exported)

#: named phases reported to `on_phase` (fault injection, progress, tracing), in order; see
#: `actstore.ingest.faults` for what each one means
PHASES = FAULT_PHASES  # the Ray engine also reports "startup" (cluster join, actors, model load)
PhaseHook = Callable[[str, "Job | None"], object]
#: ingest engines (`--engine`): who runs the model (planning and writing are shared)
ENGINES = ("local", "ray")


@dataclass
class IngestRequest:
    """Everything `actstore ingest` needs; defaults are the offline demo's."""

    model: str
    adapter: str | None = None
    adapter_options: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    source: str = "flores"
    data_dir: str | None = None
    split: str = "devtest"
    langs: Sequence[str] | str | None = None
    modalities: Sequence[str] = MODALITIES
    layers: Sequence[int] | Literal["study"] | None = None
    points: Sequence[str] | None = None
    limit: int | None = None
    batch_size: int = 16
    device: str = "cpu"
    dtype: str = "float32"
    vector_dtype: str = "float32"
    overwrite: bool = False
    languages_csv: str | None = None
    cache_dir: str | None = None
    max_seconds: float | None = None  # longest speech item (None: the model's window, else 60 s)
    memory_budget: int | str | None = None  # bytes one forward may use, e.g. "2GiB" (None: from free memory)
    #: who runs the model: "local" (this process) or "ray" (Ray Data actors, `actstore[ray]`)
    engine: str = "local"
    #: Ray cluster address (default: RAY_ADDRESS, else a local cluster is started)
    ray_address: str | None = None
    #: model actors (default: one per GPU with --device cuda, else 1)
    ray_actors: int | None = None


@dataclass
class IngestSummary:
    run_id: str
    model: str
    random_init: bool
    jobs: int = 0
    items: int = 0
    rows: int = 0
    skipped_items: int = 0
    skipped_langs: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """One unit of work: a language and its modalities (one, or speech+text when paired)."""

    lang: str
    modalities: tuple[str, ...]
    ids: list[int]  # sentence ids to cover (after --limit)
    points: dict[str, list[str]]  # modality -> points to extract

    @property
    def label(self) -> str:
        return f"{self.lang}/{'+'.join(self.modalities)}"

    @property
    def all_points(self) -> list[str]:
        return [p for m in self.modalities for p in self.points[m]]


@dataclass
class JobWork:
    """What one job still has to do, decided from the store before any model runs."""

    job: Job
    items: dict[str, list[Item]]  # modality -> items to encode
    complete: dict[str, set[str]]  # modality -> sample ids stored at every point
    replace: bool  # write with a key-guarded merge (some keys may exist) instead of an append

    @property
    def n_items(self) -> int:
        return sum(len(v) for v in self.items.values())

    @property
    def n_skipped(self) -> int:
        return sum(len(v) for v in self.complete.values())


@dataclass
class IngestPlan:
    """Everything decided before encoding: the model, its points, the jobs, provenance."""

    model: str
    info: ModelInfo
    source: object
    catalogue: Catalogue
    langs: list[str]
    points_by_mod: dict[str, list[str]]
    point_rows: list[dict]
    jobs: list[Job]
    skipped: dict[str, str]  # "lang/modality" -> why it is not ingested


def check_request(request: IngestRequest) -> None:
    """Refuse malformed arguments before anything is opened or loaded."""
    if request.vector_dtype not in ("float32", "float16"):
        raise ActstoreError(f"--vector-dtype {request.vector_dtype!r} is not supported; use float32 or float16.")
    if request.batch_size < 1:
        raise ActstoreError("--batch-size must be at least 1.")
    if request.max_seconds is not None and not request.max_seconds > 0:
        raise ActstoreError(f"--max-seconds {request.max_seconds} must be more than 0; e.g. --max-seconds 60.")
    parse_size(request.memory_budget)  # refuses a malformed size now
    if request.limit is not None and request.limit < 1:
        raise ActstoreError("--limit must be at least 1 (or omitted for every sentence).")
    if request.langs == "" or (isinstance(request.langs, (list, tuple)) and not request.langs):
        raise ActstoreError("--langs names no language; pass codes such as --langs eng,fra, or --langs all.")
    if not request.modalities:
        raise ActstoreError("--modalities names no modality; use speech, text or speech,text.")
    bad_mod = [m for m in request.modalities if m not in MODALITIES]
    if bad_mod:
        raise ActstoreError(f"Unknown modality {bad_mod[0]!r}; use speech and/or text.")
    if request.engine not in ENGINES:
        raise ActstoreError(f"--engine {request.engine!r} is not known; use one of {', '.join(ENGINES)}.")
    if request.ray_actors is not None and request.ray_actors < 1:
        raise ActstoreError("--ray-actors must be at least 1.")


def open_inputs(request: IngestRequest):
    """(catalogue, source, languages to ingest): explicit languages the source lacks are an error."""
    from actstore.ingest.sources import open_source

    catalogue = Catalogue.load(request.languages_csv)
    wanted = catalogue.resolve(request.langs)  # validates codes
    source = open_source(request.source, catalogue=catalogue, data_dir=request.data_dir,
                         split=request.split, cache_dir=request.cache_dir)
    available = set(source.languages())
    explicit = request.langs not in (None, "all", ["all"], [])
    missing = [c for c in wanted if c not in available]
    if explicit and missing:
        raise ActstoreError(
            f"Source {source.name} has no data for {', '.join(missing)}; drop them from --langs "
            "or point --data-dir at data that has them."
        )
    return catalogue, source, [c for c in wanted if c in available]


def study_layers(adapter: Adapter) -> list[int]:
    """`--layers study`: the adapter's own study layers, else the SeamlessM4T study's."""
    own = getattr(adapter, "study_layers", None)
    return list(own) if own else list(STUDY_LAYERS)


def choose_points(adapter: Adapter, request: IngestRequest) -> tuple[dict[str, list[str]], list[dict]]:
    """Points per modality, and the points-registry rows (layer, width, vector dtype) for them."""
    study = request.layers == "study"
    layers = study_layers(adapter) if study else request.layers
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
        names = request.points
        if names is not None and not any(n.startswith(modality + ".") for n in names):
            # explicit names for the other modality only: validate them, choose nothing here
            adapter.select_points(modality, names=names)
            continue
        chosen = adapter.select_points(modality, layers=layers, names=names)
        if chosen:
            points_by_mod[modality] = chosen
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
                 langs: list[str]) -> IngestPlan:
    """Choose points, check them against the store (widths, dtypes) and plan the jobs."""
    points_by_mod, point_rows = choose_points(adapter, request)
    model = adapter.info.name
    store.check_points(model, point_rows)
    jobs, skipped = plan_jobs(source, langs, points_by_mod, limit=request.limit,
                              paired=bool(getattr(adapter, "paired", False)),
                              supports=getattr(adapter, "supports_language", None))
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


@dataclass
class JobKeys:
    """`pending_work` before any payload is read: the source entries (keys) still to encode."""

    job: Job
    entries: dict[str, list[Entry]]  # modality -> entries to encode, in the source's order
    complete: dict[str, set[str]]
    replace: bool


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


def pending_work(store: Store, model: str, source, job: Job, *, overwrite: bool) -> JobWork:
    """The items of `job` still to encode: all with `overwrite`, else those not fully stored."""
    keys = pending_keys(store, model, source, job, overwrite=overwrite)
    items = {m: list(source.load(job.lang, m, es)) for m, es in keys.entries.items()}
    return JobWork(job=job, items=items, complete=keys.complete, replace=keys.replace)


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


def batches(items: list[Item], batch_size: int, cost: Callable[[list[Item]], int] | None = None,
            budget: int | None = None) -> list[list[Item]]:
    """Length-bucketed batches: longest first, so padding inside a batch stays small; with a
    `cost` (estimated bytes of a batch) and a `budget`, each batch also stays under the budget."""
    return budgeted_batches(items, batch_size, cost, budget)


def check_memory(store: Store, plan: IngestPlan, adapter: Adapter, request: IngestRequest,
                 limits: MemoryLimits) -> None:
    """Refuse, before any model runs, an item of any job that is over `--max-seconds` or whose
    forward alone would exceed the memory budget.

    Looks at exactly the items the run would encode (stored keys are filtered as `run_job` does).
    Audio is loaded here one job at a time and dropped again, so it is decoded twice; that is the
    price of knowing every length before the first forward.
    """
    cost = BatchCost(adapter)
    for job in plan.jobs:
        work = pending_work(store, plan.model, plan.source, job, overwrite=request.overwrite)
        if len(job.modalities) > 1:
            pairs = {it.sentence_id: it for it in work.items.get("text", [])}
            check_items(work.items.get("speech", []), limits, cost, pairs=pairs)
        else:
            for items in work.items.values():
                check_items(items, limits, cost)


Encoded = dict[str, tuple[list[Item], dict[str, tuple[np.ndarray, np.ndarray]]]]


def encode_job(adapter: Adapter, work: JobWork, batch_size: int,
               on_batch: Callable[[int], object] | None = None, budget: int | None = None) -> Encoded:
    """modality -> (items in encoded order, point -> (vectors (n, d) float32, n_frames (n,))).

    Unpaired jobs call `adapter.encode` per batch; paired jobs call `adapter.encode_pairs` with
    each batch's speech and text items of the same sentences. `on_batch(n)` gets the sentence
    ids each batch covered (progress). With a `budget` (bytes), batches are also cut so that each
    one's estimated activation memory (`adapter.cost_model`) stays under it.
    """
    job = work.job
    pooled: dict[str, dict[str, list[np.ndarray]]] = {m: {p: [] for p in job.points[m]} for m in job.modalities}
    frames: dict[str, dict[str, list[np.ndarray]]] = {m: {p: [] for p in job.points[m]} for m in job.modalities}
    order: dict[str, list[Item]] = {m: [] for m in job.modalities}
    for groups in _batch_groups(work, batch_size, BatchCost(adapter) if budget else None, budget):
        if len(job.modalities) > 1:
            out = adapter.encode_pairs(groups["speech"], groups["text"], job.all_points)
        else:
            (modality, batch), = groups.items()
            out = adapter.encode(batch, job.points[modality])
        for modality, batch in groups.items():
            for p in job.points[modality]:
                pooled[modality][p].append(out[p].vectors)
                frames[modality][p].append(out[p].n_frames)
            order[modality].extend(batch)
        if on_batch is not None:
            first = next(iter(groups.values()))
            on_batch(len({it.sentence_id for it in first}))
    result: Encoded = {}
    for modality in job.modalities:
        if not order[modality]:
            continue
        vectors = {}
        for p in job.points[modality]:
            vecs = np.concatenate(pooled[modality][p])
            _check_finite(vecs, p, job.lang, modality)
            vectors[p] = (vecs, np.concatenate(frames[modality][p]))
        result[modality] = (order[modality], vectors)
    return result


def _batch_groups(work: JobWork, batch_size: int, cost: BatchCost | None = None,
                  budget: int | None = None) -> Iterator[dict[str, list[Item]]]:
    """Batches of one modality, or paired speech/text batches bucketed by speech length."""
    mods = work.job.modalities
    if len(mods) == 1:
        m = mods[0]
        one = (lambda batch: cost({m: batch})) if cost is not None else None
        for batch in batches(work.items[m], batch_size, one, budget):
            yield {m: batch}
        return
    text_of = {it.sentence_id: it for it in work.items["text"]}
    pair = ((lambda batch: cost({"speech": batch, "text": [text_of[it.sentence_id] for it in batch]}))
            if cost is not None else None)
    for batch in batches(work.items["speech"], batch_size, pair, budget):
        yield {"speech": batch, "text": [text_of[it.sentence_id] for it in batch]}


def job_rows(items: list[Item], point_vectors: dict[str, tuple[np.ndarray, np.ndarray]], *,
             model: str, layer_of: Callable[[str], int | None], lang_meta, run_id: str,
             vector_dtype: str) -> dict[int, pa.Table]:
    """Arrow rows of one modality of a job, grouped by vector width (one table per width)."""
    by_width: dict[int, list[pa.Table]] = {}
    n = len(items)
    base = {
        "model": pa.array([model] * n),
        "modality": pa.array([it.modality for it in items]),
        "lang": pa.array([it.lang for it in items]),
        "sentence_id": pa.array([it.sentence_id for it in items], pa.int64()),
        "sample_id": pa.array([it.sample_id for it in items]),
        "split": pa.array([it.split for it in items]),
        "resource_level": pa.array([lang_meta.resource_level or None] * n, pa.string()),
        "script": pa.array([lang_meta.script or None] * n, pa.string()),
        "family": pa.array([lang_meta.family or None] * n, pa.string()),
        "run_id": pa.array([run_id] * n),
    }
    for point, (vectors, n_frames) in point_vectors.items():
        cols = dict(base)
        cols["point"] = pa.array([point] * n)
        layer = layer_of(point)
        cols["layer"] = pa.array([layer] * n, pa.int32())
        cols["n_frames"] = pa.array(n_frames.astype(np.int32), pa.int32())
        cols["vector"] = numpy_to_vectors(vectors, vector_dtype)
        names = [f.name for f in METADATA_FIELDS] + ["vector"]
        by_width.setdefault(vectors.shape[1], []).append(pa.table({k: cols[k] for k in names}))
    return {w: pa.concat_tables(ts) for w, ts in by_width.items()}


def build_job_tables(plan: IngestPlan, encoded: Encoded, *, layer_of: Callable[[str], int | None],
                     run_id: str, vector_dtype: str, lang: str) -> dict[int, pa.Table]:
    """Every modality's rows of one job, merged per width (so one commit per width)."""
    by_width: dict[int, list[pa.Table]] = {}
    for _modality, (items, vectors) in encoded.items():
        tables = job_rows(items, vectors, model=plan.model, layer_of=layer_of,
                          lang_meta=plan.catalogue.get(lang), run_id=run_id, vector_dtype=vector_dtype)
        for width, table in tables.items():
            by_width.setdefault(width, []).append(table)
    return {w: pa.concat_tables(ts) for w, ts in by_width.items()}


def sentence_rows(source_name: str, split: str, lang: str, items: Sequence[Item]) -> pa.Table:
    """The texts of a job's text items, for the `sentences` table."""
    texts = {it.sentence_id: it.text for it in items if it.text}
    return pa.table({
        "source": [source_name] * len(texts), "split": [split] * len(texts),
        "lang": [lang] * len(texts), "sentence_id": list(texts), "text": list(texts.values()),
    })


def write_job(store: Store, model: str, tables: dict[int, pa.Table], *, vector_dtype: str,
              replace: bool, sentences: pa.Table | None = None,
              on_phase: PhaseHook | None = None, job: "Job | None" = None) -> int:
    """Write one job: its sentence texts first, then one commit per vector width; returns rows.

    Texts first, so stored activations imply stored texts (see the module docstring).
    """
    if sentences is not None and sentences.num_rows:
        store.write_sentences(sentences)
    _phase(on_phase, "texts", job)
    rows = 0
    for width, table in tables.items():
        rows += store.write_activations(model, width, table, vector_dtype=vector_dtype, replace=replace)
    return rows


def fill_missing_texts(store: Store, source, split: str, job: Job, work: JobWork) -> int:
    """Write the texts of the job's already-stored text items that the `sentences` table lacks.

    Only stores written before texts were committed first can need this; it reads the sentences
    table and (only when some are missing) the source's texts, never the model. Returns the
    texts written.
    """
    stored = work.complete.get("text")
    if not stored:
        return 0
    have = store.sentences([job.lang])
    if have.height:
        have = have.filter((pl.col("source") == source.name) & (pl.col("split") == split))
    missing = sorted(set(job.ids) - set(have["sentence_id"].to_list()))
    if not missing:
        return 0
    items = [it for it in source.items(job.lang, "text", sentence_ids=missing) if it.sample_id in stored]
    rows = sentence_rows(source.name, split, job.lang, items)
    store.write_sentences(rows)
    return rows.num_rows


def provenance(plan: IngestPlan, request: IngestRequest, limits: MemoryLimits | None = None) -> dict:
    """The `runs` row that opens an ingest (status 'running' until `finish_run`)."""
    info, source = plan.info, plan.source
    return {
        "model": plan.model, "model_id": info.model_id, "model_revision": info.revision,
        "adapter": info.adapter, "random_init": info.random_init, "source": source.name,
        "dataset_revision": source.revision(), "split": request.split, "langs": plan.langs,
        "modalities": list(plan.points_by_mod), "points": [r["point"] for r in plan.point_rows],
        "pooling": "masked mean over valid positions, float32", "dtype": request.dtype,
        "vector_dtype": request.vector_dtype, "device": request.device,
        "batch_size": request.batch_size,
        "params": {"limit": request.limit, "overwrite": request.overwrite,
                   **({"max_seconds": limits.max_seconds, "memory_budget": limits.budget} if limits else {}),
                   "layers": (request.layers if isinstance(request.layers, str)
                              else list(request.layers) if request.layers else None),
                   "data_dir": request.data_dir, "engine": request.engine, **info.extra,
                   # the catalogue rows this run used: reports read them, not the installed table
                   "languages": {c: dataclasses.asdict(plan.catalogue.get(c)) for c in plan.langs}},
    }


def run_job(store: Store, plan: IngestPlan, adapter: Adapter, job: Job, request: IngestRequest,
            run_id: str, *, on_batch: Callable[[int], object] | None = None,
            on_phase: PhaseHook | None = None, register: Callable[[], None] | None = None,
            limits: MemoryLimits | None = None) -> tuple[JobWork, int]:
    """Filter, encode and write one job; returns its work description and the rows written."""
    _phase(on_phase, "filter", job)
    work = pending_work(store, plan.model, plan.source, job, overwrite=request.overwrite)
    fill_missing_texts(store, plan.source, request.split, job, work)
    if not work.n_items:
        _phase(on_phase, "job", job)
        return work, 0
    _phase(on_phase, "encode", job)
    encoded = encode_job(adapter, work, request.batch_size, on_batch=on_batch,
                         budget=limits.budget if limits else None)
    _phase(on_phase, "write", job)
    tables = build_job_tables(plan, encoded, layer_of=adapter.layer_of, run_id=run_id,
                              vector_dtype=request.vector_dtype, lang=job.lang)
    texts = work.items.get("text")
    sentences = sentence_rows(plan.source.name, request.split, job.lang, texts) if texts else None
    rows = write_job(store, plan.model, tables, vector_dtype=request.vector_dtype,
                     replace=work.replace, sentences=sentences, on_phase=on_phase, job=job)
    _phase(on_phase, "rows", job)
    # Points are registered only AFTER the run's first write succeeded: a write that fails (a
    # full disk) must not leave registered points without a table, which breaks every reader.
    if register is not None:
        register()
    _phase(on_phase, "job", job)
    return work, rows


def _phase(hook: PhaseHook | None, name: str, job: Job | None) -> None:
    if hook is not None:
        hook(name, job)


def _with_fault(on_phase: PhaseHook | None) -> PhaseHook | None:
    """The caller's hook, preceded by the ACTSTORE_FAULT one when that variable is set."""
    fault = fault_hook()
    if fault is None:
        return on_phase
    if on_phase is None:
        return fault

    def both(name: str, job: Job | None) -> None:
        fault(name, job)
        on_phase(name, job)

    return both


@disk_errors
def ingest(store: Store, request: IngestRequest, *, progress: bool = True,
           on_phase: PhaseHook | None = None) -> IngestSummary:
    """Run one ingest; returns what was done.

    Bad input raises ActstoreError before anything is written (no runs row); that includes items
    over `--max-seconds` or the memory budget and undecodable audio, since `check_memory` reads
    every pending item before the first forward. A failure after the run started (NaN
    activations, a full disk) keeps the jobs committed before it, writes nothing of the failing
    job and leaves the run's row with status 'failed'.

    `request.engine` picks who runs the model: "local" (this process, `run_job` per job) or
    "ray" (Ray Data actors, actstore.ingest.engines.ray_engine). Planning, resume filtering,
    the key-guarded write (one commit per job and width), provenance and finish are shared.
    """
    from actstore.ingest.adapters import load_adapter

    on_phase = _with_fault(on_phase)
    check_request(request)
    catalogue, source, langs = open_inputs(request)
    # the Ray driver loads the model only to learn its points and widths: its actors load it
    # on request.device (the driver of a GPU cluster may have no GPU)
    adapter = load_adapter(request.model, adapter=request.adapter, options=request.adapter_options,
                           name=request.name, device="cpu" if request.engine == "ray" else request.device,
                           dtype=request.dtype)
    _phase(on_phase, "plan", None)
    plan = prepare_plan(store, request, adapter, catalogue, source, langs)
    limits = resolve_limits(adapter, max_seconds=request.max_seconds,
                            memory_budget=parse_size(request.memory_budget), device=request.device)
    check_memory(store, plan, adapter, request, limits)  # too long / too big: refused, nothing ran
    for stale in mark_stale_runs(store):
        log.warning("run %s was left running by a process that is gone: marked interrupted", stale)
    run_id = store.start_run(provenance(plan, request, limits))
    _phase(on_phase, "run", None)
    summary = IngestSummary(run_id=run_id, model=plan.model, random_init=plan.info.random_init,
                            skipped_langs=dict(plan.skipped))
    for key, why in plan.skipped.items():
        log.warning("skipping %s: %s", key, why)
    registered = []

    def register() -> None:
        if not registered:
            store.register_points(plan.model, plan.point_rows, random_init=plan.info.random_init)
            registered.append(True)

    status = "failed"
    deferred_cleanup = False
    try:
        bar = _progress(sum(len(j.ids) for j in plan.jobs), progress, desc=f"ingest {plan.model}")
        if request.engine == "ray":
            from actstore.ingest.engines.ray_engine import run_ray  # optional dependency

            run_ray(store, plan, request, run_id, summary, bar, layer_of=adapter.layer_of, on_phase=on_phase,
                    register=register)
        else:
            for job in plan.jobs:
                work, rows = run_job(store, plan, adapter, job, request, run_id, on_batch=bar.update,
                                     on_phase=on_phase, register=register, limits=limits)
                summary.skipped_items += work.n_skipped
                if not work.n_items:
                    bar.update(len(job.ids))
                    continue
                summary.rows += rows
                summary.items += work.n_items
                summary.jobs += 1
        bar.close()
        # Finalize whenever the store needs it, not only when this run wrote rows: an earlier
        # finalize may have been killed half-way (missing indices, versions not cleaned up).
        if summary.rows or store.finalize_needed(plan.model):
            _phase(on_phase, "finish", None)
            others = other_live_runs(store, run_id)
            if others:
                log.info("keeping old versions: ingest(s) %s may still read them", ", ".join(others))
            store.finalize_model(plan.model, on_step=None if on_phase is None
                                 else (lambda step: on_phase(step, None)), cleanup=not others)
            deferred_cleanup = bool(others)
            _phase(on_phase, "finalized", None)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, status=status, n_items=summary.items, n_rows=summary.rows)
    if deferred_cleanup and not other_live_runs(store, run_id):
        # Concurrent ingests each skip the cleanup while the other is live; checking again AFTER
        # this run is marked finished means the last of them to finish always sees none live.
        store.finalize_model(plan.model)
    return summary


def _check_finite(vectors: np.ndarray, point: str, lang: str, modality: str) -> None:
    if not np.isfinite(vectors).all():
        raise ActstoreError(
            f"The model produced NaN/inf at {point} for {lang} {modality}; try --dtype float32 "
            "(float16 overflows in some layers)."
        )


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sent")
