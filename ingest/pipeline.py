"""The ingest pipeline: source items -> adapter (batched, hooked) -> pooled rows -> store.

Unit of work: a *job* = (language, modality). A job's rows at every requested point are written in
ONE commit, so an interrupted ingest leaves complete jobs and nothing half-written; a rerun skips
the sample ids already stored at every requested point (resume) and replaces keys it recomputes
(`--overwrite`, or items that miss only some points), so nothing is ever duplicated.

Batches are length-bucketed (items sorted by length, longest first) so padding stays small;
pooling is a masked mean in float32 inside the adapter.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from actstore.catalogue import Catalogue
from actstore.errors import ActstoreError
from actstore.schema import METADATA_FIELDS
from actstore.store import Store, numpy_to_vectors
from actstore.ingest.items import MODALITIES, Item

if TYPE_CHECKING:
    from actstore.ingest.adapters import Adapter, ModelInfo
    from actstore.ingest.sources import Source

log = logging.getLogger("actstore.ingest")

#: the study's layers of SeamlessM4T v2's 24-layer encoders
STUDY_LAYERS = (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 23, 24)
#: ingest engines (`--engine`)
ENGINES = ("local", "ray")


@dataclass
class IngestRequest:
    """Everything `actstore ingest` needs; defaults are the offline demo's."""

    model: str
    adapter: str | None = None
    name: str | None = None
    source: str = "flores"
    data_dir: str | None = None
    split: str = "devtest"
    langs: Sequence[str] | str | None = None
    modalities: Sequence[str] = MODALITIES
    layers: Sequence[int] | None = None
    points: Sequence[str] | None = None
    limit: int | None = None
    batch_size: int = 16
    device: str = "cpu"
    dtype: str = "float32"
    vector_dtype: str = "float32"
    overwrite: bool = False
    languages_csv: str | None = None
    cache_dir: str | None = None
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
    #: wall time per stage; engines may add their own (Ray: "startup", actor start + model load)
    seconds: dict[str, float] = field(default_factory=lambda: {"source": 0.0, "encode": 0.0, "write": 0.0})


def parse_layers(spec: str | None) -> list[int] | None:
    """'1,2,4' -> [1, 2, 4]; 'study' -> the study's 14 layers; '' or None -> None (all)."""
    if spec is None or spec.strip() == "":
        return None
    if spec.strip() == "study":
        return list(STUDY_LAYERS)
    out = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            try:
                out.append(int(part))
            except ValueError:
                raise ActstoreError(f"Layer {part!r} is not an integer; use e.g. --layers 1,2,4-8 or --layers study.") from None
    return out


def _batches(items: list[Item], batch_size: int) -> list[list[Item]]:
    ordered = sorted(items, key=lambda it: it.length, reverse=True)
    return [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]


def _job_rows(items: list[Item], point_vectors: dict[str, tuple[np.ndarray, np.ndarray]], *,
              model: str, layer_of: Callable[[str], int | None], lang_meta, run_id: str,
              vector_dtype: str) -> dict[int, pa.Table]:
    """Arrow rows of one job, grouped by vector width (one table per width)."""
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


def _check_finite(vectors: np.ndarray, point: str, lang: str, modality: str) -> None:
    if not np.isfinite(vectors).all():
        raise ActstoreError(
            f"The model produced NaN/inf at {point} for {lang} {modality}; try --dtype float32 "
            "(float16 overflows in some layers)."
        )


@dataclass
class Prepared:
    """What an ingest knows before any model runs: validated inputs, source, adapter, points."""

    catalogue: Catalogue
    source: Source
    langs: list[str]
    adapter: Adapter
    info: ModelInfo
    points_by_mod: dict[str, list[str]]
    point_rows: list[dict]

    @property
    def model(self) -> str:
        return self.info.name


@dataclass
class Pending:
    """One job's keys against the store: what is complete, partial, and what to skip reading."""

    complete: set[str]
    partial: set[str]
    skip: frozenset[str]


def prepare(store: Store, request: IngestRequest, *, device: str | None = None) -> Prepared:
    """Validate the request, open the source and the adapter, choose points; writes nothing.

    device: where the adapter is loaded here (default `request.device`); the Ray engine loads
    it on the CPU only to learn points and widths, its actors load it on `request.device`.
    """
    from actstore.ingest.adapters import load_adapter
    from actstore.ingest.sources import open_source

    if request.engine not in ENGINES:
        raise ActstoreError(f"--engine {request.engine!r} is not known; use one of {', '.join(ENGINES)}.")
    if request.vector_dtype not in ("float32", "float16"):
        raise ActstoreError(f"--vector-dtype {request.vector_dtype!r} is not supported; use float32 or float16.")
    if request.batch_size < 1:
        raise ActstoreError("--batch-size must be at least 1.")
    if request.limit is not None and request.limit < 1:
        raise ActstoreError("--limit must be at least 1 (or omitted for every sentence).")
    bad_mod = [m for m in request.modalities if m not in MODALITIES]
    if bad_mod:
        raise ActstoreError(f"Unknown modality {bad_mod[0]!r}; use speech and/or text.")

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
    langs = [c for c in wanted if c in available]

    adapter = load_adapter(request.model, adapter=request.adapter, name=request.name,
                           device=device or request.device, dtype=request.dtype)
    info = adapter.info
    model = info.name
    points_by_mod: dict[str, list[str]] = {}
    for modality in request.modalities:
        if modality not in adapter.modalities:
            continue
        names = request.points
        if names is not None and not any(n.startswith(modality + ".") for n in names):
            # explicit names for the other modality only: validate them, choose nothing here
            adapter.select_points(modality, names=names)
            continue
        chosen = adapter.select_points(modality, layers=request.layers, names=names)
        if chosen:
            points_by_mod[modality] = chosen
    if not points_by_mod:
        raise ActstoreError(
            f"Model {model!r} encodes {', '.join(adapter.modalities)}; none of the requested "
            f"modalities/points ({', '.join(request.modalities)}) apply."
        )
    point_rows = [
        {"point": p, "modality": m, "layer": adapter.layer_of(p), "width": adapter.width(p),
         "vector_dtype": request.vector_dtype}
        for m, ps in points_by_mod.items() for p in ps
    ]
    store.check_points(model, point_rows)
    return Prepared(catalogue=catalogue, source=source, langs=langs, adapter=adapter, info=info,
                    points_by_mod=points_by_mod, point_rows=point_rows)


def _start_run(store: Store, request: IngestRequest, prep: Prepared) -> str:
    info, source = prep.info, prep.source
    return store.start_run({
        "model": prep.model, "model_id": info.model_id, "model_revision": info.revision,
        "adapter": info.adapter, "random_init": info.random_init, "source": source.name,
        "dataset_revision": source.revision(), "split": request.split, "langs": prep.langs,
        "modalities": list(prep.points_by_mod), "points": [r["point"] for r in prep.point_rows],
        "pooling": "masked mean over valid positions, float32", "dtype": request.dtype,
        "vector_dtype": request.vector_dtype, "device": request.device,
        "batch_size": request.batch_size,
        "params": {"limit": request.limit, "overwrite": request.overwrite,
                   "layers": list(request.layers) if request.layers else None,
                   "data_dir": request.data_dir, "engine": request.engine, **info.extra},
    })


def plan_jobs(prep: Prepared, request: IngestRequest, summary: IngestSummary) -> list[tuple[str, str, list[int]]]:
    """(lang, modality, sentence ids) per job, in order; jobs the source cannot serve are noted."""
    plan = []
    for lang, modality in [(lang, m) for lang in prep.langs for m in prep.points_by_mod]:
        if modality not in prep.source.modalities(lang):
            summary.skipped_langs[f"{lang}/{modality}"] = f"{prep.source.name} has no {modality} for {lang}"
            continue
        ids = sorted(prep.source.sentence_ids(lang, modality))
        if request.limit is not None:
            ids = ids[: request.limit]
        plan.append((lang, modality, ids))
    for key, why in summary.skipped_langs.items():
        log.warning("skipping %s: %s", key, why)
    return plan


def pending_keys(store: Store, model: str, lang: str, modality: str, points: Sequence[str], *,
                 overwrite: bool) -> Pending:
    """Sample ids already stored for a job: complete ones are skipped (unless overwriting)."""
    stored = store.stored_keys(model, modality, lang, points) if store.points(model).height else None
    complete: set[str] = set()
    partial: set[str] = set()
    if stored is not None and stored.height:
        counts = stored.group_by("sample_id").len()
        complete = set(counts.filter(pl.col("len") >= len(points))["sample_id"].to_list())
        partial = set(counts["sample_id"].to_list()) - complete
    return Pending(complete=complete, partial=partial,
                   skip=frozenset() if overwrite else frozenset(complete))


def write_job(store: Store, request: IngestRequest, prep: Prepared, run_id: str, summary: IngestSummary,
              items: list[Item], point_vectors: dict[str, tuple[np.ndarray, np.ndarray]],
              pending: Pending) -> None:
    """Write one job's rows: one commit per vector width, key-guarded (never a duplicate).

    `items` are in the row order of `point_vectors` (audio is not needed here); NaN/inf refuse
    the whole job before anything is written.
    """
    lang, modality = items[0].lang, items[0].modality
    for p, (vecs, _) in point_vectors.items():
        _check_finite(vecs, p, lang, modality)
    store.register_points(prep.model, prep.point_rows, random_init=prep.info.random_init)
    tables = _job_rows(items, point_vectors, model=prep.model, layer_of=prep.adapter.layer_of,
                       lang_meta=prep.catalogue.get(lang), run_id=run_id,
                       vector_dtype=request.vector_dtype)
    replace = request.overwrite or bool(pending.partial) or bool(
        pending.complete & {it.sample_id for it in items})
    for width, table in tables.items():
        summary.rows += store.write_activations(prep.model, width, table,
                                                vector_dtype=request.vector_dtype, replace=replace)
    if modality == "text":
        texts = {it.sentence_id: it.text for it in items if it.text}
        store.write_sentences(pa.table({
            "source": [prep.source.name] * len(texts), "split": [request.split] * len(texts),
            "lang": [lang] * len(texts), "sentence_id": list(texts),
            "text": list(texts.values()),
        }))
    summary.items += len(items)
    summary.jobs += 1


def ingest(store: Store, request: IngestRequest, *, progress: bool = True) -> IngestSummary:
    """Run one ingest; returns what was done. Raises ActstoreError on bad input before writing.

    `request.engine` picks who runs the model: "local" (this process) or "ray" (Ray Data actors,
    actstore.ingest.engines.ray_engine); planning, resume filtering and writing are shared.
    """
    run_engine = _engine(request.engine)
    prep = prepare(store, request, device="cpu" if request.engine != "local" else None)
    run_id = _start_run(store, request, prep)
    summary = IngestSummary(run_id=run_id, model=prep.model, random_init=prep.info.random_init)
    status = "failed"
    try:
        plan = plan_jobs(prep, request, summary)
        bar = _progress(sum(len(ids) for *_, ids in plan), progress, desc=f"ingest {prep.model}")
        run_engine(store, request, prep, run_id, plan, summary, bar)
        bar.close()
        if summary.rows:
            t3 = time.perf_counter()
            store.finalize_model(prep.model)
            summary.seconds["write"] += time.perf_counter() - t3
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, status=status, n_items=summary.items, n_rows=summary.rows)
    return summary


def _engine(name: str):
    if name == "local":
        return run_local
    if name == "ray":
        from actstore.ingest.engines import ray_engine  # noqa: PLC0415 - optional dependency

        return ray_engine.run_ray
    raise ActstoreError(f"--engine {name!r} is not known; use one of {', '.join(ENGINES)}.")


def run_local(store: Store, request: IngestRequest, prep: Prepared, run_id: str,
              plan: list[tuple[str, str, list[int]]], summary: IngestSummary, bar) -> None:
    """The default engine: read, encode and write each job in this process, job after job."""
    adapter = prep.adapter
    for lang, modality, ids in plan:
        points = prep.points_by_mod[modality]
        t0 = time.perf_counter()
        pend = pending_keys(store, prep.model, lang, modality, points, overwrite=request.overwrite)
        items = list(prep.source.items(lang, modality, sentence_ids=ids, skip_sample_ids=pend.skip))
        summary.seconds["source"] += time.perf_counter() - t0
        if not items:
            summary.skipped_items += len(pend.complete)
            bar.update(len(ids))
            continue
        summary.skipped_items += len(pend.complete) if not request.overwrite else 0
        t1 = time.perf_counter()
        order: list[Item] = []
        pooled: dict[str, list[np.ndarray]] = {p: [] for p in points}
        frames: dict[str, list[np.ndarray]] = {p: [] for p in points}
        for batch in _batches(items, request.batch_size):
            out = adapter.encode(batch, points)
            for p in points:
                pooled[p].append(out[p].vectors)
                frames[p].append(out[p].n_frames)
            order.extend(batch)
            bar.update(len({it.sentence_id for it in batch}))
        point_vectors = {p: (np.concatenate(pooled[p]), np.concatenate(frames[p])) for p in points}
        summary.seconds["encode"] += time.perf_counter() - t1
        t2 = time.perf_counter()
        write_job(store, request, prep, run_id, summary, order, point_vectors, pend)
        summary.seconds["write"] += time.perf_counter() - t2


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
