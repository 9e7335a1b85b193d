"""Table-wide nearest neighbours with LanceDB vector search (cosine), for ad-hoc exploration.

The study's retrieval scores use exact search on aligned slices (`actstore.analyses.retrieval`); this is
for a user who asks "what, anywhere in the store, is closest to this sentence at this point?".
Without a vector index LanceDB scans exactly (a flat search, with the metadata filter applied
before the search), so results equal brute-force cosine; build an IVF_PQ index only for global
ANN over millions of rows (docs/ARCHITECTURE.md, "Store").
"""

from __future__ import annotations

import numpy as np
import polars as pl

from actstore.analyses.aligned import depth_of
from actstore.errors import AnalysisInputError
from actstore.schema import sql_quote
from actstore.store import Store
from actstore.store.integrity import require_unique_keys


def nearest_in_table(store: Store, model: str, point: str, *, sample_id: str | None = None,
                     vector: np.ndarray | None = None, k: int = 10, where: str | None = None,
                     include_self: bool = False) -> pl.DataFrame:
    """The k rows of `point` closest (cosine) to a stored sample or a given vector.

    `point` is a point name (`text.L6`) or a depth (`L6`), as `analyze --points` accepts: a depth
    held by several modalities means the query sample's own point there (see `resolve_point`).
    Returns lang, modality, sentence_id, sample_id, corpus, distance (1 - cosine) and cosine,
    nearest first (`cross_search.find_neighbours` adds texts and searches other points). `where` is an extra SQL filter on metadata columns (e.g. "lang = 'fra'").
    """
    if (sample_id is None) == (vector is None):
        raise AnalysisInputError("Give exactly one of a sample id or a query vector to search with.")
    if k < 1:
        raise AnalysisInputError(f"k={k} must be at least 1.")
    pts = store.require_model(model)
    require_unique_keys(store, model)  # a key stored twice would list its hit twice
    point = resolve_point(store, model, pts, point, sample_id)
    row = pts.filter(pl.col("point") == point)
    if row.height == 0:
        raise AnalysisInputError(f"Point {point!r} is not stored for model {model!r}; stored: "
                                 f"{', '.join(pts['point'].to_list())}.")
    width = int(row["width"][0])
    if sample_id is not None:
        found = store.read(model, points=point, where=f"sample_id = {sql_quote(sample_id)}")
        if len(found) == 0:
            raise AnalysisInputError(f"Sample {sample_id!r} is not stored at {point} for {model!r}; "
                                     "find ids with `actstore query \"SELECT sample_id FROM activations\"`.")
        vector = found.vectors[0]
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vector.shape[0] != width:
        raise AnalysisInputError(f"The query vector has {vector.shape[0]} dims but {point} stores {width}; "
                                 "pass a vector of the point's width.")
    if not np.isfinite(vector).all() or not np.any(vector):
        raise AnalysisInputError("The query vector is zero or has NaN/inf; cosine is undefined for it.")
    clauses = [f"model = {sql_quote(model)}", f"point = {sql_quote(point)}"]
    if where:
        clauses.append(f"({where})")
    if sample_id is not None and not include_self:
        clauses.append(f"sample_id != {sql_quote(sample_id)}")
    table = store._open_table(row["table_name"][0])
    try:
        hits = (table.search(vector, vector_column_name="vector").distance_type("cosine")
                .where(" AND ".join(clauses), prefilter=True)
                .select(["lang", "modality", "sentence_id", "sample_id", "corpus", "_distance"]).limit(k).to_arrow())
    except (ValueError, RuntimeError) as exc:
        raise AnalysisInputError(f"The search failed ({str(exc).splitlines()[0]}); check the --where filter.") from None
    frame = pl.from_arrow(hits).rename({"_distance": "distance"})
    return frame.with_columns((1.0 - pl.col("distance")).alias("cosine")).sort("distance")


def resolve_point(store: Store, model: str, pts: pl.DataFrame, point: str, sample_id: str | None) -> str:
    """The stored point meant by `point`: itself when stored, else the one point at that depth.

    A depth stored for several modalities (`L4`: speech.L4 and text.L4) resolves to the point that
    holds the query sample, so `--point L4` searches where the sample lives; with a query vector
    instead of a sample the user must name the point. An unknown name is returned unchanged (the
    caller's "not stored" message lists the stored points).
    """
    names = pts["point"].to_list()
    at_depth = [p for p in names if depth_of(p) == point]
    if point in names or not at_depth:
        return point
    if len(at_depth) > 1 and sample_id is not None:
        found = store.read(model, points=at_depth, where=f"sample_id = {sql_quote(sample_id)}",
                           columns=["point"], vectors=False)
        at_depth = sorted(set(found.meta["point"].to_list())) or at_depth[:1]  # not stored: say so next
    if len(at_depth) > 1:
        raise AnalysisInputError(f"Depth {point!r} of {model!r} holds several points ({', '.join(at_depth)}); "
                                 f"name one, e.g. --point {at_depth[0]}.")
    return at_depth[0]
