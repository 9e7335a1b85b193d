"""Which pooling options each ingest run used, read from the run's params for the runs table.

Vectors of the same model differ with the adapter's pooling options (SALMONN and Qwen2-Audio pool
the prompt's fixed tokens into `text.*` unless told to pool the sentence only; SALMONN's speech
points average Whisper's padding windows unless `speech_pooling=valid_windows`; an E5 text model
needs its `passage: ` prefix). A reader comparing two runs must see which choice each made.
"""

from __future__ import annotations

import json

import polars as pl

#: adapter options recorded in a run's params that change what a vector pools (shown in this order)
POOLING_KEYS = ("mode", "text_pooling", "text_pool", "speech_pooling", "text_prefix", "weights")


def pooling_text(params: str | None) -> str:
    """"text_pooling=all_non_speech, speech_pooling=all_windows" from a run's params JSON ("" if none)."""
    try:
        values = json.loads(params) if params else {}
    except ValueError:
        return ""
    if not isinstance(values, dict):
        return ""
    shown = []
    for key in POOLING_KEYS:
        value = values.get(key)
        if value is None:
            continue
        shown.append(f"{key}={json.dumps(value, ensure_ascii=False) if key == 'text_prefix' else value}")
    return ", ".join(shown)


def with_pooling(runs: pl.DataFrame) -> pl.DataFrame:
    """`runs` with a "pooling options" column when it carries params (left as is otherwise)."""
    if "params" not in runs.columns:
        return runs
    texts = [pooling_text(p) for p in runs["params"].cast(pl.Utf8).to_list()]
    return runs.with_columns(pl.Series("pooling options", texts, dtype=pl.Utf8))
