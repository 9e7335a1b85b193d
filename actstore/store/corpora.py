"""Sentence ids shared by several corpora of one model: found for `actstore check`.

A sentence id names a sentence only within its parallel corpus (FLORES-200 devtest, FLEURS test,
one user manifest; the `corpus` column of every activation row). Two corpora of one model may
use the same id for different sentences: analyses never align them (they work within one corpus,
`--corpus`), but a user who meant them to be parallel, or who mixed them up, should hear of it.
`shared_sentence_ids` lists the ids of one (model, lang) stored under several corpora whose texts
differ; `check` reports them as notes (not failures: the store is consistent). The functions take
the store's pieces (`Connection`, `RunLog`, `SentenceTexts`), as the other checks do.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl



def run_corpus_bases(runs: list[dict]) -> dict[str, str]:
    """run_id -> the corpus base of what the run ingested (its source; a manifest: its file).

    How stores written before rows carried `corpus` (schema < 3) learn it: `migrate` stores it,
    `check` derives it on the fly for a store it must read before the migration.
    """
    out = {}
    for r in runs:
        source = r.get("source") or "unknown"
        if source == "manifest":
            params = json.loads(r["params"]) if r.get("params") else {}
            source = f"manifest:{Path(params.get('data_dir') or 'manifest').stem}"
        out[r["run_id"]] = source
    return out


def derive_corpus(rows: pl.DataFrame, bases: dict[str, str]) -> pl.DataFrame:
    """Activation rows (with run_id and split) of a pre-corpus store, with their `corpus`."""
    base = pl.col("run_id").replace_strict(bases, default="unknown", return_dtype=pl.String)
    base = pl.when(base.str.starts_with("flores200")).then(pl.lit("flores200")).otherwise(base)
    return rows.with_columns(pl.concat_str([base, pl.col("split").fill_null("")], separator=":").alias("corpus"))


def rows_with_corpus(conn, runs, table_name: str, columns: list[str], where: str | None = None) -> pl.DataFrame:
    """Distinct `columns` of an activation table plus each row's `corpus`, also before schema 3.

    conn: the store's `Connection`; runs: its `RunLog` (read only for a store before schema 3).
    """
    ds = conn.dataset(table_name)
    if "corpus" in ds.schema.names:
        return pl.from_arrow(ds.to_table(columns=[*columns, "corpus"], filter=where)).unique()  # type: ignore
    extra = [c for c in ("run_id", "split") if c not in columns]
    rows = pl.from_arrow(ds.to_table(columns=[*columns, *extra], filter=where)).unique()  # type: ignore
    return derive_corpus(rows, run_corpus_bases(runs.runs().to_dicts())).drop(extra).unique()


def with_corpus(sentences: pl.DataFrame) -> pl.DataFrame:
    """`sentences` rows with their `corpus` (`actstore.schema.corpus_name` of source and split)."""
    base = (pl.when(pl.col("source").str.starts_with("flores200")).then(pl.lit("flores200"))
            .otherwise(pl.col("source")))
    return sentences.with_columns(pl.concat_str([base, pl.col("split")], separator=":").alias("corpus"))


def corpus_texts(sentences: pl.DataFrame, corpus: str | None) -> dict[tuple[str, int], str]:
    """(lang, sentence_id) -> text of one corpus, from `sentences` rows (every corpus when None:
    ids may then collide)."""
    texts = with_corpus(sentences)
    if corpus is not None:
        texts = texts.filter(pl.col("corpus") == corpus)
    return {(r["lang"], r["sentence_id"]): r["text"] for r in texts.iter_rows(named=True)}


def shared_sentence_ids(conn, runs, texts, act_tables: list[str]) -> pl.DataFrame:
    """(model, lang, sentence_id, corpora, texts) for ids carrying different texts in several corpora.

    Texts come from the `sentences` table, matched by corpus (`with_corpus`); an id whose text
    is known in only one corpus still counts when the corpora differ, since nothing shows the
    texts agree.
    """
    frames = [rows_with_corpus(conn, runs, name, ["model", "lang", "sentence_id"]) for name in act_tables]
    if not frames:
        return pl.DataFrame()
    rows = pl.concat(frames).unique()  # type: ignore[arg-type]
    multi = (rows.group_by("model", "lang", "sentence_id").agg(pl.col("corpus").n_unique().alias("n"))
             .filter(pl.col("n") > 1).drop("n"))
    if multi.height == 0:
        return multi
    rows = rows.join(multi, on=["model", "lang", "sentence_id"], how="semi")
    known = with_corpus(texts.sentences()).select("corpus", "lang", "sentence_id", "text")
    rows = rows.join(known, on=["corpus", "lang", "sentence_id"], how="left")
    per_corpus = rows.group_by("model", "lang", "sentence_id", "corpus").agg(pl.col("text").drop_nulls().first())
    out = (per_corpus.sort("corpus").group_by("model", "lang", "sentence_id")
           .agg(pl.col("corpus").alias("corpora"), pl.col("text").alias("texts"),
                pl.col("text").null_count().alias("_unknown"), pl.col("text").n_unique().alias("_distinct")))
    same = (pl.col("_unknown") == 0) & (pl.col("_distinct") == 1)
    return out.filter(~same).drop("_unknown", "_distinct").sort("model", "lang", "sentence_id")
