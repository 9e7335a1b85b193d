"""Issue 17, Must show: a small study (two tiny random-init systems, two languages, speech and
text) runs end to end through `actstore study`; a second run is killed at several points (inside
an ingest with ACTSTORE_FAULT, between steps with ACTSTORE_STUDY_FAULT) and rerun, and its store
and result tables (the report's numbers) equal the uninterrupted run's.

Every run is a real `actstore study` process forked from the preloaded fault-harness server.
"""

from __future__ import annotations

import inspect
import os
import textwrap
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from _fault_harness import Runner, compare_states, store_state

pytestmark = pytest.mark.filterwarnings("ignore:lancedb fork support")

#: vectors and scores of a rerun equal the clean run's to this (polars renamed the arguments in 1.32)
TOLERANCE = ({"abs_tol": 1e-6, "rel_tol": 0} if "abs_tol" in inspect.signature(assert_frame_equal).parameters
             else {"atol": 1e-6, "rtol": 0})
#: result columns that say when, not what
VOLATILE = ("computed_at", "store_version")
RESULTS = ("similarity", "retrieval", "retrieval_items", "tsne", "neurons_top", "neurons_overlap", "concentration")

STUDY = """\
    # A small study: two tiny random-init systems, two languages, speech and text
    [study]
    name = "small"
    out = "{out}"

    [store]
    path = "{db}"

    [data]
    source = "flores"
    languages = ["eng", "fra"]
    limit = 5

    [systems.tiny-random-seamless-m4t-v2]
    model = "{seamless}"
    batch_size = 3

    [systems.tiny-random-sonar]
    build = "sonar"
    batch_size = 3

    [analyses]
    similarity = ["all"]
    retrieval = true
    tsne = {{ per_language = 5, perplexity = 4, max_iter = 250 }}
    neurons = true

    [report]
    path = "report.html"
    published = {{ tiny-random-seamless-m4t-v2 = "seamless-m4t-v2" }}
    """


def write_study(folder: Path, seamless: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "small.toml"
    path.write_text(textwrap.dedent(STUDY).format(out=folder / "out", db=folder / "small.lance", seamless=seamless))
    return path


def results(db: Path) -> dict[str, pl.DataFrame]:
    """Every result table, volatile columns dropped, rows in a fixed order."""
    from actstore.store import Store

    store = Store.open(str(db))
    out = {}
    for table in RESULTS:
        frame = store.read_results(table, None)
        assert frame is not None and frame.height, table
        frame = frame.drop([c for c in VOLATILE if c in frame.columns])
        keys = [c for c, t in frame.schema.items() if not t.is_float() and t != pl.List(pl.String)]
        out[table] = frame.sort(keys)
    return out


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               ACTSTORE_KEEP_VERSIONS="0")
    with Runner(env=env, log_dir=tmp_path_factory.mktemp("logs"),
                preload=["actstore.workflows.study", "actstore.analyses.tasks"]) as r:
        yield r


@pytest.fixture(scope="module")
def clean(runner, tmp_path_factory, tiny_seamless_dir):
    """The uninterrupted study's folder, store state and results."""
    folder = tmp_path_factory.mktemp("clean")
    study = write_study(folder, tiny_seamless_dir)
    assert runner.run(["study", str(study), "--quiet"]) == 0
    html = (folder / "out" / "report.html").read_text(encoding="utf-8")
    assert "0.901" in html  # the published SeamlessM4T v2 value, shown for the mapped (random-init) system
    return folder, store_state(folder / "small.lance"), results(folder / "small.lance")


def test_a_study_runs_end_to_end_and_a_rerun_runs_nothing(runner, clean, tiny_seamless_dir):
    folder, state, _ = clean
    assert {m for m, *_ in state.points} == {"tiny-random-seamless-m4t-v2", "tiny-random-sonar"}
    assert state.runs == {"complete": 2} and not state.finalize
    from click.testing import CliRunner

    from actstore.cli import main

    status = CliRunner().invoke(main, ["study", str(folder / "small.toml"), "--status"])
    assert status.exit_code == 0 and "0 of 12 steps left" in status.output, status.output


#: kills of one second run, in order on one store: inside the first ingest (its second job's texts
#: committed, rows not), at the end of an ingest (finalize done, status not written), after the
#: second ingest step, and after the first analysis that saved results
KILLS = [("ACTSTORE_FAULT", "texts:2"), ("ACTSTORE_FAULT", "finalized"), ("ACTSTORE_STUDY_FAULT", "ingest:2"),
         ("ACTSTORE_STUDY_FAULT", "similarity:1"), ("ACTSTORE_STUDY_FAULT", "neurons:1")]


def test_a_killed_study_reruns_to_the_same_store_and_numbers(runner, clean, tiny_seamless_dir, tmp_path):
    _, want_state, want_results = clean
    study = write_study(tmp_path, tiny_seamless_dir)
    for variable, spec in KILLS:
        runner.env.pop("ACTSTORE_STUDY_FAULT", None)
        if variable == "ACTSTORE_STUDY_FAULT":
            runner.env[variable] = spec
        code = runner.run(["study", str(study), "--quiet"], fault=spec if variable == "ACTSTORE_FAULT" else None)
        assert code == -9, (variable, spec, code)
        if spec == "texts:2":  # killed inside the first ingest: --status says how far it got
            from click.testing import CliRunner

            from actstore.cli import main

            status = CliRunner().invoke(main, ["study", str(study), "--status"]).output
            assert "left  ingest tiny-random-seamless-m4t-v2" in status and "of ~20 items stored)" in status, status
    runner.env.pop("ACTSTORE_STUDY_FAULT", None)
    assert runner.run(["study", str(study), "--quiet"]) == 0
    got = store_state(tmp_path / "small.lance")
    assert compare_states(got, want_state) == []
    got_results = results(tmp_path / "small.lance")
    for table, frame in want_results.items():
        assert_frame_equal(got_results[table], frame, check_exact=False, **TOLERANCE)
    assert (tmp_path / "out" / "report.html").is_file()
