"""Text activations whose sentence texts are missing, and the ingest command that stores them.

Only the model can recompute a text's activations, and only the source can give its text: so
`actstore check` cannot repair this; it names the `actstore ingest` command that does.
"""

from __future__ import annotations

import json

import polars as pl

from actstore.schema import SENTENCES_TABLE
from actstore.store.connection import Connection
from actstore.store.corpora import rows_with_corpus, shared_sentence_ids, with_corpus
from actstore.store.points import PointsRegistry
from actstore.store.problems import CheckReport, Problem
from actstore.store.runs import RunLog
from actstore.store.sentences import SentenceTexts


def missing_sentences(conn: Connection, runs: RunLog, texts: SentenceTexts, act_tables: list[str]) -> pl.DataFrame:
    """Text activation (model, run_id, split, lang, sentence_id) whose text is not stored."""
    frames = [rows_with_corpus(conn, runs, name, ["model", "run_id", "split", "lang", "sentence_id"],
                               "modality = 'text'").select("model", "run_id", "split", "corpus", "lang", "sentence_id")
              for name in act_tables]
    if not frames:
        return pl.DataFrame()
    text = pl.concat(frames).unique()  # type: ignore[arg-type]
    text = text.join(runs.runs().select("run_id", "source"), on="run_id", how="left")  # names the fix command
    # texts are matched by corpus (a text belongs to the corpus of its id, whichever run wrote it)
    have = with_corpus(texts.sentences()).select("corpus", "split", "lang", "sentence_id")
    unknown = pl.col("corpus").str.starts_with("unknown:")  # the run row is gone: match without corpus
    missing = pl.concat([
        text.filter(~unknown).join(have, on=["corpus", "lang", "sentence_id"], how="anti"),
        text.filter(unknown).join(have.drop("corpus").unique(), on=["split", "lang", "sentence_id"], how="anti"),
    ])
    return missing.unique(["model", "source", "split", "lang", "sentence_id"])


def fill_command(uri: str, run_log: RunLog, points: PointsRegistry, model: str, missing: pl.DataFrame) -> str:
    """The `actstore ingest` command that re-encodes the texts of `missing` rows (and stores them)."""
    runs = run_log.runs(model)
    run = runs.filter(pl.col("run_id").is_in(missing["run_id"].unique().to_list()))
    row = (run if run.height else runs).tail(1).to_dicts()
    last = row[0] if row else {}
    params = json.loads(last["params"]) if last.get("params") else {}
    text_points = points.points(model).filter(pl.col("modality") == "text")["point"].sort().to_list()
    parts = ["actstore ingest", f"--db {uri}", f"--model {last.get('model_id') or model}"]
    if last.get("model_id") and last["model_id"] != model:
        parts.append(f"--name {model}")
    source = missing["source"].drop_nulls().first() if missing["source"].drop_nulls().len() else last.get("source")
    if source:
        parts.append(f"--source {'flores' if str(source).startswith('flores') else source}")
    if params.get("data_dir"):
        parts.append(f"--data-dir {params['data_dir']}")
    parts += [f"--split {missing['split'][0]}", f"--langs {','.join(sorted(missing['lang'].unique().to_list()))}",
              "--modalities text"]
    if text_points:
        parts.append(f"--points {','.join(text_points)}")
    if params.get("limit"):
        parts.append(f"--limit {params['limit']}")
    parts.append("--overwrite")
    return "run `" + " ".join(parts) + "`"


def note_shared_ids(conn: Connection, runs: RunLog, texts: SentenceTexts, act_tables: list[str],
                    report: CheckReport) -> None:
    """Sentence ids carrying different texts in several corpora of one model (a note, not a problem)."""
    shared = shared_sentence_ids(conn, runs, texts, act_tables)
    if shared.height == 0:
        return
    for (model,), grp in shared.group_by(["model"], maintain_order=True):
        first = grp.row(0, named=True)
        example = " vs ".join(f"{c}: {t!r}" if t else f"{c}: (no text stored)"
                              for c, t in zip(first["corpora"], first["texts"]))
        report.notes.append(Problem(
            "shared-sentence-ids", "activations", grp.height,
            f"{grp.height} sentence ids of {model!r} are used by several corpora with different texts "
            f"(e.g. {first['lang']} id {first['sentence_id']}: {example}); analyses align within one "
            "corpus (pick it with --corpus)", repairable=False,
            fix="if the ids name the same sentences, re-ingest with `--corpus NAME` to declare them parallel"))


def check_sentences(conn: Connection, runs: RunLog, texts: SentenceTexts, points: PointsRegistry,
                    act_tables: list[str], report: CheckReport) -> None:
    """Add a `missing-sentences` problem per model whose text activations lack their texts."""
    missing = missing_sentences(conn, runs, texts, act_tables)
    if missing.height == 0:
        return
    for (model,), grp in missing.group_by(["model"], maintain_order=True):
        per_lang = grp.group_by("lang").len().sort("lang")
        counts = ", ".join(f"{r['lang']} {r['len']}" for r in per_lang.iter_rows(named=True))
        report.problems.append(Problem(
            "missing-sentences", SENTENCES_TABLE, grp.height,
            f"{grp.height} sentence ids with text activations of {model!r} have no text ({counts})",
            repairable=False, fix=fill_command(conn.uri, runs, points, model, grp)))
