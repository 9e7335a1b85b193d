"""Neighbours across points: a query from one point searched against another, with sentence texts.

`actstore neighbours` answers "what is closest to this sample?". The search is always LanceDB's
(`table_search.nearest_in_table`: a flat search with the filter applied first, exact without a
vector index): within the query's own point with the query sample left out, or, from here, in
another point with the query's vector: a speech query against text targets of the same model
(`--point speech.L6 --target-modality text`), or one model's point against another model's.
One path for both keeps their semantics (filter, width check, duplicate-key guard) one. Measured
on the shared 2 cores, 20k x 512 float32 targets, top 10, median of 7: LanceDB 53 ms vs 92 ms for
reading the slice and ranking it with `retrieval.topk_cosine` (identical neighbours); 41 vs 35 ms
with a one-language filter. The numpy kernels rank whole languages (`query_ranks`).

Across models the search is refused unless the two points have one width AND the user asserts
(`shared_space=True`, `--shared-space`) that the models were trained into one space (SONAR's
text and speech encoders are): cosine between unrelated spaces is meaningless, and comparing
unrelated models is `analyze cross-model`'s job (CCA/CKA/mutual kNN, invariant to the basis).

Every neighbour carries its sentence text (the `sentences` table, matched by corpus: ids of two
corpora never mix) and `own_sentence`: same corpus and sentence id as the query, i.e. the query's
own sentence or, in a parallel corpus, its translation. `query_ranks` does the same for a whole
language (the rank of the true sentence per query), with the retrieval grid's kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from actstore.analyses.aligned import depth_of
from actstore.analyses.table_search import nearest_in_table, resolve_point
from actstore.errors import AnalysisInputError
from actstore.schema import sql_quote
from actstore.store import Store
from actstore.store.corpora import with_corpus
from actstore.store.integrity import require_unique_keys

#: a neighbour row's columns, in the order the CLI prints them
COLUMNS = ("rank", "lang", "modality", "sentence_id", "own_sentence", "cosine", "distance", "text",
           "corpus", "sample_id", "model", "point", "random_init")
#: a `query_ranks` row's columns: the query, what it retrieved first, the true sentence's rank
RANK_COLUMNS = ("query_id", "retrieved_id", "rank", "correct", "query_text", "retrieved_text", "query_lang",
                "query_modality", "target_lang", "target_modality", "n", "corpus", "random_init")


@dataclass(frozen=True)
class Query:
    """The stored sample a search starts from, with its sentence text (None where none is stored)."""

    model: str
    point: str
    sample_id: str
    lang: str
    modality: str
    sentence_id: int
    corpus: str | None
    text: str | None
    vector: np.ndarray

    def describe(self) -> str:
        """One line for the terminal: which sample of which sentence, and its text."""
        text = repr(self.text) if self.text is not None else "(no text stored)"
        return (f"query {self.sample_id} ({self.lang} {self.modality}, sentence {self.sentence_id} of "
                f"{self.corpus}) at {self.model} {self.point}: {text}")


@dataclass(frozen=True)
class Target:
    """Where a search looks: a model's point (possibly the query's own)."""

    model: str
    point: str


def _stored_point(store: Store, model: str, point: str, sample_id: str | None) -> tuple[pl.DataFrame, str]:
    """(the model's points, `point` resolved from a depth) after refusing duplicate keys and
    points the model does not store."""
    pts = store.require_model(model)
    require_unique_keys(store, model)
    point = resolve_point(store, model, pts, point, sample_id)
    if point not in pts["point"].to_list():
        raise AnalysisInputError(f"Point {point!r} is not stored for model {model!r}; stored: "
                                 f"{', '.join(pts['point'].to_list())}.")
    return pts, point


def read_query(store: Store, model: str, point: str, sample_id: str) -> Query:
    """The query sample at `point` (a point or a depth, resolved as `nearest_in_table` does)."""
    pts, point = _stored_point(store, model, point, sample_id)
    found = store.read(model, points=point, where=f"sample_id = {sql_quote(sample_id)}",
                       columns=["lang", "modality", "sentence_id", "corpus"])
    if len(found) == 0:
        raise AnalysisInputError(f"Sample {sample_id!r} is not stored at {point} for {model!r}; "
                                 "find ids with `actstore query \"SELECT sample_id FROM activations\"`.")
    row = found.meta.row(0, named=True)
    texts = attach_texts(store, found.meta.head(1))
    return Query(model=model, point=point, sample_id=sample_id, lang=row["lang"], modality=row["modality"],
                 sentence_id=int(row["sentence_id"]), corpus=row["corpus"], text=texts["text"][0],
                 vector=np.asarray(found.vectors[0], dtype=np.float32))


def resolve_target(store: Store, query_model: str, query_point: str, *, model: str | None = None,
                   point: str | None = None, modality: str | None = None) -> Target:
    """The target point: `point` (a point or a depth) of `model` (default: the query's model).

    Unnamed, the target is the query's point name (or its depth) in the target model; a depth
    that holds several points there is narrowed by `modality` (`--target-modality text`: the text
    point at the query's depth), else the user must name one.
    """
    model = model or query_model
    pts = store.require_model(model)
    names = pts["point"].to_list()
    modality_of = dict(zip(names, pts["modality"].to_list()))
    wanted = point or query_point
    if wanted in names and modality in (None, modality_of[wanted]):
        return Target(model=model, point=wanted)
    if point in names:
        raise AnalysisInputError(f"{point} holds {modality_of[point]} rows, not {modality}; drop "
                                 f"--target-modality or name a {modality} point.")
    candidates = [p for p in names if depth_of(p) == depth_of(wanted)]
    if modality is not None:
        candidates = [p for p in candidates if modality_of[p] == modality]
    if len(candidates) == 1:
        return Target(model=model, point=candidates[0])
    if not candidates:
        what = f"{wanted!r}" + (f" with {modality} rows" if modality else "")
        raise AnalysisInputError(f"No point {what} is stored for model {model!r}; stored: {', '.join(names)}.")
    raise AnalysisInputError(f"Depth {wanted!r} of {model!r} holds several points ({', '.join(candidates)}); "
                             f"name one, e.g. --target-point {candidates[0]}, or pass --target-modality.")


def require_one_space(store: Store, query: Target, target: Target, *, shared_space: bool) -> None:
    """Refuse a search whose cosines would mean nothing: `query` (the query's model and point)
    and `target` of other widths, or another model's space not asserted to be the query's."""
    q_width = _width(store, query.model, query.point)
    t_width = _width(store, target.model, target.point)
    if q_width != t_width:
        raise AnalysisInputError(
            f"{query.model} {query.point} has {q_width} dims but {target.model} {target.point} has {t_width}, "
            "so the two share no space and cosine between them is meaningless: search a target point of the "
            "query's width, or compare different spaces with `actstore analyze cross-model`.")
    if target.model != query.model and not shared_space:
        raise AnalysisInputError(
            f"{query.model} and {target.model} are different models, and cosine between unrelated spaces is "
            "meaningless: pass --shared-space only if they were trained into one space (as SONAR's text and "
            "speech encoders are), else compare them with `actstore analyze cross-model` (CCA-based).")


def _width(store: Store, model: str, point: str) -> int:
    pts = store.require_model(model)
    return int(pts.filter(pl.col("point") == point)["width"][0])


def attach_texts(store: Store, rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` (lang, sentence_id, corpus) with the `text` of their sentence in THEIR corpus.

    Two corpora may use one id for different sentences; matching on (corpus, lang, sentence_id)
    shows each row its own corpus's text (null where the corpus stored none, e.g. speech-only).
    """
    langs = rows["lang"].unique().to_list()
    known = (with_corpus(store.sentences(langs)).select("corpus", "lang", "sentence_id", "text")
             .unique(["corpus", "lang", "sentence_id"], keep="first"))
    known = known.with_columns(pl.col("sentence_id").cast(rows.schema["sentence_id"]))
    return rows.join(known, on=["corpus", "lang", "sentence_id"], how="left", maintain_order="left")


def find_neighbours(store: Store, model: str, point: str, sample_id: str, *, k: int = 10,
                    where: str | None = None, target_model: str | None = None,
                    target_point: str | None = None, target_modality: str | None = None,
                    shared_space: bool = False) -> tuple[Query, pl.DataFrame]:
    """(the query, its k nearest rows with texts): `actstore neighbours`.

    Without a target, or with the query's own point as target, LanceDB searches the point's table
    and the query sample itself is left out; any other target is searched exactly here, after
    `require_one_space`. Columns: `COLUMNS`, nearest first (rank 1).
    """
    query = read_query(store, model, point, sample_id)
    target = Target(model, query.point)
    if target_model is not None or target_point is not None or target_modality is not None:
        target = resolve_target(store, model, query.point, model=target_model, point=target_point,
                                modality=target_modality)
    if target == Target(model, query.point):
        hits = nearest_in_table(store, model, query.point, sample_id=sample_id, k=k, where=where)
    else:
        require_one_space(store, Target(model, query.point), target, shared_space=shared_space)
        hits = nearest_in_table(store, target.model, target.point, vector=query.vector, k=k, where=where)
    if hits.height == 0 and where:
        raise AnalysisInputError(f"No rows of {target.model} {target.point} besides the query match the filter "
                                 f"{where!r}; loosen --where.")
    rows = attach_texts(store, hits).with_columns(
        pl.int_range(1, pl.len() + 1).cast(pl.Int32).alias("rank"),
        ((pl.col("corpus") == query.corpus) & (pl.col("sentence_id") == query.sentence_id)).alias("own_sentence"),
        pl.lit(target.model).alias("model"), pl.lit(target.point).alias("point"),
        pl.lit(store.is_random_init(target.model)).alias("random_init"))
    return query, rows.select(COLUMNS)


def _language_set(store: Store, model: str, point: str, modality: str, lang: str, seed: int,
                  corpus: str | None):
    """(corpus, sorted sentence ids, their vectors) of one language at one point: one recording
    per id, chosen as the retrieval grid chooses them (`select_recordings`, seeded)."""
    from actstore.analyses.aligned import Depth, load_depth_sets, select_recordings

    stored = store.read(model, points=point, columns=["lang"], vectors=False).meta["lang"].unique().sort()
    if lang not in stored.to_list():
        raise AnalysisInputError(f"{model} stores no {lang} {modality} rows at {point} (stored: "
                                 f"{', '.join(stored.to_list())}); pick another language.")
    selection = select_recordings(store, model, {modality: point}, [lang], seed=seed, corpus=corpus)
    sets = load_depth_sets(store, model, Depth(name=depth_of(point), order=0, layer=None,
                                               points={modality: point}), selection, [modality])
    if (lang, modality) not in sets.vectors:
        raise AnalysisInputError(f"{model} stores no {lang} {modality} rows at {point}"
                                 f"{' in ' + selection.corpus if selection.corpus else ''}; pick another language.")
    return selection.corpus, sets.ids[(lang, modality)], sets.vectors[(lang, modality)]


def query_ranks(store: Store, model: str, point: str, lang: str, *, target_lang: str | None = None,
                target_model: str | None = None, target_point: str | None = None,
                target_modality: str | None = None, shared_space: bool = False,
                corpus: str | None = None, seed: int = 0) -> pl.DataFrame:
    """Every `lang` sentence at `point` as a query against the target's `target_lang` sentences.

    Both sides are the sentence ids they share in one corpus (the query model's largest, or
    `corpus`), one recording per id as in `analyze retrieval`; ranks come from the retrieval
    grid's kernel (`retrieval_scores`, a->b), so they equal `retrieval_items` for the same cell.
    One row per query: query_id, retrieved_id (retrieved first), rank of the true sentence
    (0 = retrieved first), correct, both texts, n (candidates; chance P@1 is 1/n).
    """
    from actstore.analyses.retrieval import retrieval_scores

    pts, point = _stored_point(store, model, point, None)
    modality = pts.filter(pl.col("point") == point)["modality"][0]
    target = resolve_target(store, model, point, model=target_model, point=target_point, modality=target_modality)
    t_modality = store.points(target.model).filter(pl.col("point") == target.point)["modality"][0]
    t_lang = target_lang or lang
    require_one_space(store, Target(model, point), target, shared_space=shared_space)
    corpus, q_ids, q_vecs = _language_set(store, model, point, modality, lang, seed, corpus)
    _, t_ids, t_vecs = _language_set(store, target.model, target.point, t_modality, t_lang, seed, corpus)
    ids = np.intersect1d(q_ids, t_ids)
    if ids.size < 2:
        raise AnalysisInputError(f"{lang} {modality} and {t_lang} {t_modality} share {ids.size} sentence id(s) in "
                                 f"{corpus}; ranking needs at least 2: ingest the same sentences for both.")
    a, b = q_vecs[np.searchsorted(q_ids, ids)], t_vecs[np.searchsorted(t_ids, ids)]
    scores = retrieval_scores(a, b, ks=(1,), margin_k=1).a_to_b
    frame = pl.DataFrame({
        "query_lang": lang, "query_modality": modality, "target_lang": t_lang, "target_modality": t_modality,
        "query_id": pl.Series(ids, dtype=pl.Int64), "retrieved_id": pl.Series(ids[scores.top1], dtype=pl.Int64),
        "rank": pl.Series(scores.ranks, dtype=pl.Int32), "n": ids.size, "corpus": corpus})
    frame = frame.with_columns((pl.col("rank") == 0).alias("correct"))
    q_text = attach_texts(store, frame.select(pl.col("query_lang").alias("lang"), pl.col("query_id").alias("sentence_id"),
                                              "corpus"))["text"]
    r_text = attach_texts(store, frame.select(pl.col("target_lang").alias("lang"),
                                              pl.col("retrieved_id").alias("sentence_id"), "corpus"))["text"]
    frame = frame.with_columns(q_text.alias("query_text"), r_text.alias("retrieved_text"),
                               pl.lit(store.is_random_init(model) or store.is_random_init(target.model)).alias("random_init"))
    return frame.select(RANK_COLUMNS)
