"""Sentence ids shared by several corpora of one model: found for `actstore check`.

A sentence id names a sentence only within its parallel corpus (FLORES-200 devtest, FLEURS test,
one user manifest; the `corpus` column of every activation row). Two corpora of one model may
use the same id for different sentences: analyses never align them (they work within one corpus,
`--corpus`), but a user who meant them to be parallel, or who mixed them up, should hear of it.
`shared_sentence_ids` lists the ids of one (model, lang) stored under several corpora whose texts
differ; `check` reports them as notes (not failures: the store is consistent).
"""

from __future__ import annotations

import polars as pl

from actstore.schema import RUNS_TABLE, SENTENCES_TABLE


def shared_sentence_ids(store, act_tables: list[str]) -> pl.DataFrame:
    """(model, lang, sentence_id, corpora, texts) for ids carrying different texts in several corpora.

    Texts come from the `sentences` table through each row's run (its source); an id whose text
    is known in only one corpus still counts when the corpora differ, since nothing shows the
    texts agree.
    """
    frames = [pl.from_arrow(store.dataset(name).to_table(
        columns=["model", "lang", "sentence_id", "corpus", "run_id", "split"])).unique()
        for name in act_tables]
    if not frames:
        return pl.DataFrame()
    rows = pl.concat(frames).unique()  # type: ignore[arg-type]
    multi = (rows.group_by("model", "lang", "sentence_id").agg(pl.col("corpus").n_unique().alias("n"))
             .filter(pl.col("n") > 1).drop("n"))
    if multi.height == 0:
        return multi
    rows = rows.join(multi, on=["model", "lang", "sentence_id"], how="semi")
    if store.has_table(RUNS_TABLE) and store.has_table(SENTENCES_TABLE):
        runs = store.runs().select("run_id", "source")
        texts = store.sentences().select("source", "split", "lang", "sentence_id", "text")
        rows = (rows.join(runs, on="run_id", how="left")
                .join(texts, on=["source", "split", "lang", "sentence_id"], how="left"))
    else:
        rows = rows.with_columns(pl.lit(None, pl.String).alias("text"))
    per_corpus = rows.group_by("model", "lang", "sentence_id", "corpus").agg(pl.col("text").drop_nulls().first())
    out = (per_corpus.sort("corpus").group_by("model", "lang", "sentence_id")
           .agg(pl.col("corpus").alias("corpora"), pl.col("text").alias("texts"),
                pl.col("text").null_count().alias("_unknown"), pl.col("text").n_unique().alias("_distinct")))
    same = (pl.col("_unknown") == 0) & (pl.col("_distinct") == 1)
    return out.filter(~same).drop("_unknown", "_distinct").sort("model", "lang", "sentence_id")
