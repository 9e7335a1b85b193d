"""One definition of a grid's means (issue 13 §4): the terminal, the comparison and the report agree.

`actstore.grid_means` is the only place the cross-modal and cross-lingual means are computed;
the analyses print and compare them, the report reshapes them for its charts. These tests pin
the known answers on a frame with a language of no resource level (the case that made the two
former copies give different group sets) and check that every reader shows the same numbers.
"""

from __future__ import annotations

import polars as pl
import pytest

from actstore.analyses.tasks import grid_summary
from actstore.grid_means import cross_lingual_summary, cross_modal_summary
from actstore.kinds import CROSS_LINGUAL_KINDS, SYMMETRIC_KINDS, kinds_help
from actstore.reports.summaries import cross_lingual_means, cross_lingual_rows, cross_modal_series

LANGS = {"eng": "high", "fra": "high", "hin": "medium", "yor": "low", "xxx": ""}


def _frame() -> pl.DataFrame:
    rows = []
    for d, depth in enumerate(("L1", "L2")):
        for i, (lang, level) in enumerate(LANGS.items()):
            rows.append(dict(model="m", measure="svcca", kind="cross-modal", depth=depth, point_order=d,
                             lang_a=lang, lang_b=lang, resource_level_a=level, score=0.1 * i + d, n=50, kx=5, ky=5,
                             baseline=0.3, null=0.2, ci_low=None, ci_high=None, forced=i % 2))
            for j, other in enumerate(LANGS):
                rows.append(dict(model="m", measure="svcca", kind="speech-text", depth=depth,
                                 point_order=d, lang_a=lang, lang_b=other, resource_level_a=level,
                                 score=0.01 * (i + j) + d, n=50, kx=5, ky=5, baseline=0.25, null=0.15, ci_low=None,
                                 ci_high=None, forced=0))
    return pl.DataFrame(rows, schema_overrides={"ci_low": pl.Float64, "ci_high": pl.Float64})


def test_cross_modal_means_known_answers_and_group_set():
    summary = cross_modal_summary(_frame())
    at = {r["group"]: r for r in summary.filter(pl.col("depth") == "L2").iter_rows(named=True)}
    assert set(at) == {"all", "high", "medium", "low"}  # no group for a language without a level
    assert at["all"]["score"] == pytest.approx(1 + 0.1 * (0 + 1 + 2 + 3 + 4) / 5)
    assert at["all"]["languages"] == 5 and at["high"]["languages"] == 2
    assert at["high"]["score"] == pytest.approx(1.05) and at["low"]["score"] == pytest.approx(1.3)
    assert at["all"]["forced"] == 1 and at["high"]["forced"] == 1 and at["medium"]["forced"] == 0


def test_report_and_terminal_show_the_same_cross_modal_means():
    frame = _frame()
    wide = cross_modal_summary(frame)
    printed = grid_summary(frame, "cross-modal")  # what `actstore analyze` prints
    series = cross_modal_series(frame)  # what the report's line chart draws
    score = series.filter(pl.col("series") == "score")
    assert set(score["group"]) == set(wide["group"]) == set(printed["group"])
    for row in wide.iter_rows(named=True):
        drawn = score.filter((pl.col("depth") == row["depth"]) & (pl.col("group") == row["group"]))
        shown = printed.filter((pl.col("depth") == row["depth"]) & (pl.col("group") == row["group"]))
        assert drawn["value"].item() == row["score"] == shown["score"].item()
        assert drawn["n_langs"].item() == row["languages"]
    baseline = series.filter(pl.col("series") == "random baseline")
    assert set(baseline["group"]) == {"all"} and baseline["value"].to_list() == pytest.approx([0.3, 0.3])


def test_report_and_terminal_show_the_same_cross_lingual_means():
    frame = _frame()
    printed = cross_lingual_summary(frame)
    drawn = cross_lingual_means(cross_lingual_rows(frame, "svcca"))
    assert drawn["n_pairs"].to_list() == printed["pairs"].to_list() == [20, 20]  # 5 x 5 minus diagonal
    assert drawn["score"].to_list() == printed["score"].to_list()
    assert printed["score"][0] == pytest.approx(0.04)  # mean of 0.01 (i + j) over i != j


def test_kinds_have_one_definition():
    assert SYMMETRIC_KINDS == ("speech-speech", "text-text")
    assert kinds_help() == "speech-speech,text-text,speech-text"
    assert all(a != b for k, (a, b) in CROSS_LINGUAL_KINDS.items() if k not in SYMMETRIC_KINDS)
