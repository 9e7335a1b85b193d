"""Aligned sets: which stored rows are compared with which, paired by sentence id.

Everything here is decided on metadata with Polars (pushdown reads, no vectors) and only then are
vectors read, once per (depth, modality): one scan per point for all languages.

Vocabulary
- *depth*: the part of a point name after the modality, shared by the speech and text points of
  the same depth (`speech.L4` and `text.L4` are depth `L4`); `speech.adaptor` is depth `adaptor`.
- *set*: for one depth, one (lang, modality): a matrix with ONE row per sentence id, sorted by
  id. Speech may hold several recordings per id (FLEURS speakers): the study keeps one, chosen at
  random with a recorded seed (`recording="random"`), or all recordings are averaged
  (`recording="mean"`). The same recording is used at every depth.
- *pair*: two sets and the sentence ids they are compared on. Rows are always paired BY ID, never
  by position: `PairSpec.x_rows[j]` and `y_rows[j]` are the rows of the same sentence id `ids[j]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import logging

import numpy as np
import polars as pl

from actstore.errors import AnalysisInputError
from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL, SYMMETRIC_KINDS
from actstore.store import Store
from actstore.store.integrity import require_unique_keys

log = logging.getLogger("actstore.analyses")

Recording = Literal["random", "mean"]
SetKey = tuple[str, str]  # (lang, modality)



def depth_of(point: str) -> str:
    """The depth a point is compared at: `speech.L4` and `text.L4` meet at `L4`. Decoder points keep
    their stack (`decoder.L4`): their rows' modality is the conditioning (the same decoder under
    speech and text), so they must not stand in for an encoder's `speech.L4`/`text.L4`."""
    if point.startswith("decoder."):
        return point
    return point.split(".", 1)[1] if "." in point else point


def language_levels(store: Store, model: str, langs: Sequence[str] | None) -> dict[str, str | None]:
    """lang -> resource level for the languages stored for `model` (validating requested ones)."""
    have = (store.scan_activations(model, with_vectors=False)
            .select("lang", "resource_level").unique().collect())
    levels = dict(zip(have["lang"].to_list(), have["resource_level"].to_list()))
    if langs:
        missing = [lang for lang in langs if lang not in levels]
        if missing:
            raise AnalysisInputError(
                f"Language(s) {', '.join(missing)} are not stored for model {model!r}; stored: "
                f"{', '.join(sorted(levels))}."
            )
        return {lang: levels[lang] for lang in langs}
    return dict(sorted(levels.items()))


def stored_modalities(store: Store, model: str) -> set[str]:
    """The model's modalities; the first call of every analysis, so it also refuses keys stored twice."""
    modalities = set(store.require_model(model)["modality"].to_list())
    require_unique_keys(store, model)
    return modalities


@dataclass(frozen=True)
class Depth:
    """One depth of a model: its points per modality and an order for plotting."""

    name: str
    order: int
    layer: int | None
    points: dict[str, str]  # modality -> point name


def model_depths(store: Store, model: str) -> list[Depth]:
    """Every depth stored for a model, in depth order (embeddings first, layers, then the rest)."""
    pts = store.require_model(model)
    by_depth: dict[str, dict] = {}
    for r in pts.iter_rows(named=True):
        d = by_depth.setdefault(depth_of(r["point"]), {"points": {}, "layer": r["layer"]})
        d["points"][r["modality"]] = r["point"]
        if d["layer"] is None:
            d["layer"] = r["layer"]
    ordered = sorted(by_depth.items(), key=lambda kv: (kv[1]["layer"] is None, kv[1]["layer"] or 0, kv[0]))
    return [Depth(name=k, order=i, layer=v["layer"], points=v["points"]) for i, (k, v) in enumerate(ordered)]


def choose_depths(store: Store, model: str, wanted: Sequence[str] | None,
                  need: Sequence[str] = ()) -> list[Depth]:
    """Depths by name (`L4`, or a point name like `speech.L4`), restricted to those having `need`."""
    depths = model_depths(store, model)
    usable = [d for d in depths if all(m in d.points for m in need)]
    if wanted:
        known = {d.name for d in depths}  # a depth name may hold a dot (Qwen2-Audio's llm.L3)
        names = {w if w in known else depth_of(w) for w in wanted}
        unknown = sorted(names - {d.name for d in depths})
        if unknown:
            raise AnalysisInputError(
                f"Point(s) {unknown} are not stored for model {model!r}; stored depths: "
                f"{', '.join(d.name for d in depths)}."
            )
        usable = [d for d in usable if d.name in names]
    if not usable:
        raise AnalysisInputError(
            f"Model {model!r} has no depth stored with {' and '.join(need) or 'any modality'}"
            f"{' among ' + ', '.join(sorted(wanted)) if wanted else ''}; ingest those modalities first."
        )
    return usable


def first_points(depths: Sequence[Depth]) -> dict[str, str]:
    """modality -> its point at the first depth that has it: what `select_recordings` reads.

    Depths of one model need not hold every modality (SALMONN's `text.embed` sorts before its
    speech-only `qformer`/`encoder`), so the first depth alone may miss a modality.
    """
    out: dict[str, str] = {}
    for depth in depths:
        for modality, point in depth.points.items():
            out.setdefault(modality, point)
    return out


@dataclass
class Selection:
    """Which stored row stands for each (lang, modality, sentence_id): the recording choice.

    A selection is always within ONE corpus: a sentence id names a sentence only within the
    parallel corpus it belongs to (FLORES-200 devtest, FLEURS test, one user manifest), so rows of
    different corpora never align (docs/ARCHITECTURE.md, Store).
    """

    rows: pl.DataFrame  # lang, modality, sentence_id, sample_id (one per id, or all for "mean")
    recording: Recording
    seed: int
    corpus: str | None = None
    _ids: dict[SetKey, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def ids(self, lang: str, modality: str) -> np.ndarray:
        """Sorted sentence ids of (lang, modality); an empty array if none."""
        if not self._ids:
            for (lg, mod), grp in self.rows.group_by(["lang", "modality"]):
                self._ids[(lg, mod)] = np.unique(grp["sentence_id"].to_numpy())
        return self._ids.get((lang, modality), np.empty(0, dtype=np.int64))


def choose_corpus(meta: pl.DataFrame, model: str, corpus: str | None) -> str | None:
    """The one corpus an analysis aligns in: `corpus` if given, else the one with the most rows.

    Several corpora in one model (FLORES plus a user's manifest) are analysed one at a time; the
    default is the largest, and the others are named so the user can pick one with --corpus.
    """
    counts = meta.group_by("corpus").len().sort(["len", "corpus"], descending=[True, False])
    stored = [c for c in counts["corpus"].to_list()]
    if corpus is not None:
        if corpus not in stored:
            raise AnalysisInputError(
                f"Corpus {corpus!r} is not stored for model {model!r}; stored: "
                f"{', '.join(str(c) for c in stored) or '(none)'}."
            )
        return corpus
    if len(stored) > 1:
        log.warning("Model %s holds %d corpora (%s): sentence ids align only within one; analysing %s "
                    "(choose another with --corpus).", model, len(stored),
                    ", ".join(map(str, stored)), stored[0])
    return stored[0] if stored else None


def select_recordings(store: Store, model: str, point_by_modality: dict[str, str],
                      langs: Sequence[str] | None, *, recording: Recording = "random",
                      seed: int = 0, corpus: str | None = None) -> Selection:
    """One recording per (lang, modality, sentence_id) of one corpus, chosen at random with `seed`.

    The draw is made over `sample_id`s sorted lexicographically, so it is reproducible from the
    seed and the stored data alone, and the same recording is used at every depth. Only rows of
    one corpus (`choose_corpus`) are selected; every later read joins on these sample ids.
    """
    if recording not in ("random", "mean"):
        raise AnalysisInputError(f"recording must be 'random' or 'mean', not {recording!r}.")
    frames = []
    for modality, point in point_by_modality.items():
        s = store.read(model, points=point, modality=modality, langs=langs,
                       columns=["lang", "modality", "sentence_id", "sample_id", "corpus"], vectors=False)
        frames.append(s.meta)
    meta = pl.concat(frames)
    chosen = choose_corpus(meta, model, corpus)
    meta = (meta.filter(pl.col("corpus") == chosen) if chosen is not None else meta).drop("corpus")
    meta = meta.sort("lang", "modality", "sentence_id", "sample_id")
    if recording == "random":
        rng = np.random.default_rng(seed)
        meta = (meta.with_columns(pl.Series("_draw", rng.random(meta.height)))
                .sort("lang", "modality", "sentence_id", "_draw")
                .unique(["lang", "modality", "sentence_id"], keep="first", maintain_order=True)
                .drop("_draw"))
    return Selection(rows=meta, recording=recording, seed=seed, corpus=chosen)


@dataclass
class DepthSets:
    """For one depth: a matrix per (lang, modality), one row per sentence id sorted by id."""

    depth: Depth
    vectors: dict[SetKey, np.ndarray]
    ids: dict[SetKey, np.ndarray]

    def rows_for(self, key: SetKey, ids: np.ndarray) -> np.ndarray:
        """Row indices of `ids` in the set `key` (every id must be present)."""
        have = self.ids[key]
        pos = np.searchsorted(have, ids)
        if np.any(pos >= have.size) or np.any(have[np.minimum(pos, have.size - 1)] != ids):
            raise AnalysisInputError(f"Set {key} lacks some requested sentence ids; this is a bug in pairing.")
        return pos


def load_depth_sets(store: Store, model: str, depth: Depth, selection: Selection,
                    modalities: Sequence[str]) -> DepthSets:
    """Read one depth's vectors (one pushdown scan per modality) and arrange them by id."""
    vectors: dict[SetKey, np.ndarray] = {}
    ids: dict[SetKey, np.ndarray] = {}
    for modality in modalities:
        point = depth.points[modality]
        chosen = selection.rows.filter(pl.col("modality") == modality)
        langs = chosen["lang"].unique().to_list()
        if not langs:  # nothing selected for this modality: no set (an empty IN () is no filter)
            continue
        sl = store.read(model, points=point, modality=modality, langs=langs,
                        columns=["lang", "sentence_id", "sample_id"])
        meta = sl.meta.with_row_index("_row")
        joined = chosen.join(meta, on=["lang", "sentence_id", "sample_id"], how="inner")
        for (lang,), grp in joined.group_by(["lang"], maintain_order=True):
            grp = grp.sort("sentence_id")
            rows = grp["_row"].to_numpy()
            x = sl.vectors[rows]
            sid = grp["sentence_id"].to_numpy()
            if selection.recording == "mean":
                uniq, inverse = np.unique(sid, return_inverse=True)
                summed = np.zeros((uniq.size, x.shape[1]), np.float64)
                np.add.at(summed, inverse, x)
                x = (summed / np.bincount(inverse)[:, None]).astype(np.float32)
                sid = uniq
            vectors[(lang, modality)] = np.ascontiguousarray(x)
            ids[(lang, modality)] = sid
    return DepthSets(depth=depth, vectors=vectors, ids=ids)


@dataclass(frozen=True)
class PairSpec:
    """Two sets compared on `ids` (sorted); the measure sees rows in this order."""

    kind: str
    x: SetKey
    y: SetKey
    ids: np.ndarray = field(compare=False)


def cross_modal_pairs(selection: Selection, langs: Sequence[str], n: int | None = None) -> list[PairSpec]:
    """Per language, speech vs text on the first N ids both modalities have (by id).

    N defaults to the smallest language's count of shared ids (the study: 251), so every
    language is compared on the same number of sentences.
    """
    shared = {}
    for lang in langs:
        common = np.intersect1d(selection.ids(lang, "speech"), selection.ids(lang, "text"))
        if common.size:
            shared[lang] = common
    if not shared:
        raise AnalysisInputError("No language has both speech and text stored for the same sentence ids; "
                                 "ingest both modalities first.")
    size = min(c.size for c in shared.values()) if n is None else n
    if n is not None and any(c.size < n for c in shared.values()):
        short = {k: int(v.size) for k, v in shared.items() if v.size < n}
        raise AnalysisInputError(f"--n {n} exceeds the shared ids of {short}; use a smaller --n.")
    return [PairSpec(CROSS_MODAL, (lang, "speech"), (lang, "text"), ids[:size]) for lang, ids in shared.items()]


def cross_lingual_pairs(selection: Selection, langs: Sequence[str], kind: str, *, n: int | None = None,
                        pairing: Literal["pairwise", "global"] = "pairwise") -> list[PairSpec]:
    """Language x language pairs of one kind on the ids both sides have.

    speech-speech and text-text are symmetric: only the lower triangle (lang_a > lang_b) is
    computed, without the diagonal (a set against itself scores 1). speech-text is the full
    matrix (speech of A vs text of B, diagonal included). `pairwise`: each pair uses its own
    intersection, every pair cut to the smallest intersection's size (the study: 194) unless `n`
    is given; `global`: the ids every language has, first N.
    """
    if kind not in CROSS_LINGUAL_KINDS:
        raise AnalysisInputError(f"Unknown kind {kind!r}; use one of {', '.join(CROSS_LINGUAL_KINDS)}.")
    if len(langs) < 2:
        raise AnalysisInputError("Cross-lingual comparisons need at least 2 languages; pass more --langs.")
    ma, mb = CROSS_LINGUAL_KINDS[kind]
    langs = sorted(langs)
    # a language with no rows of a modality (e.g. no speech voice) takes no part in that side
    side_a = [lang for lang in langs if selection.ids(lang, ma).size]
    side_b = [lang for lang in langs if selection.ids(lang, mb).size]
    dropped = sorted(set(langs) - (set(side_a) & set(side_b)))
    if dropped:
        log.warning("%s: %s left out (no %s stored)", kind, ", ".join(dropped),
                    " or ".join(sorted({ma, mb})))
    if kind not in SYMMETRIC_KINDS:  # speech-text: the full matrix
        pairs = [(a, b) for a in side_a for b in side_b]
    else:
        both = [lang for lang in side_a if lang in side_b]
        if len(both) < 2:
            raise AnalysisInputError(
                f"{kind} needs at least 2 languages with {ma} stored; only {len(both)} have it."
            )
        pairs = [(a, b) for i, a in enumerate(both) for b in both[:i]]
    if not pairs:
        raise AnalysisInputError(f"No language pair has data for {kind}; ingest both modalities first.")
    if pairing == "global":
        common = None
        for lang, m in [(a, ma) for a in side_a] + [(b, mb) for b in side_b]:
            ids = selection.ids(lang, m)
            common = ids if common is None else np.intersect1d(common, ids)
        inter = {p: common for p in pairs}
    elif pairing == "pairwise":
        inter = {(a, b): np.intersect1d(selection.ids(a, ma), selection.ids(b, mb)) for a, b in pairs}
    else:
        raise AnalysisInputError(f"pairing must be 'pairwise' or 'global', not {pairing!r}.")
    smallest = min(v.size for v in inter.values())
    size = smallest if n is None else n
    if n is not None and n > smallest:
        raise AnalysisInputError(f"--n {n} exceeds the smallest pair intersection ({smallest} ids); use a smaller --n.")
    if size < 3:
        worst = min(inter, key=lambda p: inter[p].size)
        raise AnalysisInputError(
            f"Languages {worst[0]} and {worst[1]} share only {inter[worst].size} sentence ids for {kind}; "
            "at least 3 are needed: drop one of them from --langs or ingest more sentences."
        )
    return [PairSpec(kind, (a, ma), (b, mb), inter[(a, b)][:size]) for a, b in pairs]
