"""Issue 10, item 5: a kill at any phase of an ingest, then a rerun, gives a clean ingest's store.

Every case runs real `actstore ingest` processes (the all-MiniLM-L6-v2 text model, eng+fra, 4
sentences each): one with ACTSTORE_FAULT set, which must die by SIGKILL at that phase, then one
without, whose store must equal a clean ingest's: the same activation keys and vectors, the same
sentence texts, the points registered, finalize done, and no run left `running` (the killed one
is `interrupted`). The processes are forked from one preloaded server (see `fault_harness`) so
two dozen of them fit in about a minute on one core.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import lancedb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from actstore.cli import main
from actstore.errors import ActstoreError
from _fault_harness import Runner, compare_states, store_state
from actstore.ingest.faults import FAULT_PHASES, fault_hook, parse_fault
from actstore.ingest.pipeline import PHASES
from actstore.schema import RUNS_PROCESS_FIELDS, RUNS_SCHEMA, RUNS_TABLE, SENTENCES_TABLE
from actstore.store import Store
from actstore.store.runs import mark_stale_runs, other_live_runs, process_start, stale_runs

pytestmark = pytest.mark.filterwarnings("ignore:lancedb fork support")

LIMIT = 4
N_POINTS = 7  # all-MiniLM-L6-v2: embeddings + 6 layers

#: one case per phase; per-job phases at the second job where that is the more telling moment
CASES = ["plan", "run", "filter", "encode", "write:2", "texts:2", "rows", "job", "finish",
         "indexed", "compacted", "finalized"]


@pytest.fixture(scope="module", autouse=True)
def no_retention():
    """The cases check that a killed finalize is redone, cleanup included: no retention window for
    live readers here (it keeps the versions a kill after compaction leaves, on purpose;
    tests/test_store_retention.py checks the window)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACTSTORE_KEEP_VERSIONS", "0")
        yield


def ingest_args(db) -> list[str]:
    return ["ingest", "--db", str(db), "--model", "all-MiniLM-L6-v2", "--langs", "eng,fra",
            "--modalities", "text", "--limit", str(LIMIT), "--batch-size", "3", "--quiet"]


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with Runner(env=env, log_dir=tmp_path_factory.mktemp("logs")) as r:
        yield r


@pytest.fixture(scope="module")
def clean(runner, tmp_path_factory):
    """A clean ingest's store (path) and its state, shared by every case."""
    db = tmp_path_factory.mktemp("clean") / "db"
    assert runner.run(ingest_args(db)) == 0
    state = store_state(db)
    assert (state.rows, state.texts, len(state.points)) == (2 * LIMIT * N_POINTS, 2 * LIMIT, N_POINTS)
    assert state.runs == {"complete": 1} and not state.finalize
    return db, state


def test_every_phase_has_a_case():
    assert PHASES == FAULT_PHASES
    assert sorted({c.partition(":")[0] for c in CASES}) == sorted(FAULT_PHASES)


@pytest.mark.parametrize("case", CASES)
def test_kill_at_phase_then_rerun_equals_clean_ingest(case, runner, clean, tmp_path):
    _, want = clean
    db = tmp_path / "db"
    assert runner.run(ingest_args(db), fault=case) == -signal.SIGKILL
    killed = store_state(db)
    assert killed.duplicates == 0 and killed.runs.get("running", 0) == (0 if case == "plan" else 1)
    # what each kill leaves: texts never lag behind rows, and only whole jobs are listed
    assert not killed.langs_with_rows_but_no_texts
    if case == "texts:2":
        assert killed.texts == 2 * LIMIT and killed.rows == LIMIT * N_POINTS
    if case == "rows":  # rows committed, points not yet registered: the store lists nothing
        assert killed.rows == LIMIT * N_POINTS and not killed.points
    if case in ("compacted", "indexed"):
        assert killed.rows == want.rows and killed.finalize

    assert runner.run(ingest_args(db)) == 0
    got = store_state(db)
    assert compare_states(got, want) == []
    assert got.runs == ({"complete": 1} if case == "plan" else {"interrupted": 1, "complete": 1})


def test_two_ingests_of_the_same_keys_at_once_both_succeed_without_duplicates(runner, clean, tmp_path):
    """Finalize must not delete the files of a version the other ingest still reads."""
    _, want = clean
    db = tmp_path / "db"
    assert runner.run_together([ingest_args(db), ingest_args(db)]) == [0, 0]
    got = store_state(db)
    assert got.runs == {"complete": 2}
    assert runner.run(ingest_args(db)) == 0  # drops any versions kept while both were live
    assert compare_states(store_state(db), want) == []


def test_rerun_writes_texts_missing_from_an_older_store(runner, clean, tmp_path):
    """Stores written when texts came after the rows can hold rows without texts: a rerun fills them."""
    src, want = clean
    db = tmp_path / "db"
    shutil.copytree(src, db)
    Store.open(db)._open_table(SENTENCES_TABLE).delete("lang = 'fra'")
    assert store_state(db).langs_with_rows_but_no_texts == ["fra"]
    assert runner.run(ingest_args(db)) == 0
    got = store_state(db)
    assert compare_states(got, want) == [] and got.rows == want.rows


def test_fault_variable_unset_costs_nothing_and_bad_values_are_one_sentence():
    assert fault_hook({}) is None and fault_hook({"ACTSTORE_FAULT": ""}) is None
    assert parse_fault("texts") == ("texts", 1) and parse_fault("job:3") == ("job", 3)
    for bad in ("nope", "job:0", "job:x", "write:-1"):
        with pytest.raises(ActstoreError, match="ACTSTORE_FAULT"):
            parse_fault(bad)


def test_bad_fault_variable_fails_the_cli_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTSTORE_FAULT", "sometime")
    result = CliRunner().invoke(main, ingest_args(tmp_path / "db"))
    assert result.exit_code == 1 and "names no ingest phase" in result.output
    assert Store.open(tmp_path / "db").runs().height == 0


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_mark_stale_runs_only_marks_this_hosts_dead_processes(tmp_path):
    store = Store.open(tmp_path / "db")
    mine = store.start_run({"model": "m"})  # this process: alive
    dead = store.start_run({"model": "m", "pid": _dead_pid()})
    reused = store.start_run({"model": "m", "pid_start": (process_start(os.getpid()) or 0) + 1})
    elsewhere = store.start_run({"model": "m", "host": "another-host", "pid": _dead_pid()})
    done = store.start_run({"model": "m", "pid": _dead_pid()})
    store.finish_run(done, status="complete", n_items=0, n_rows=0)
    expected = {dead, reused} if process_start(os.getpid()) is not None else {dead}
    assert set(stale_runs(store)["run_id"].to_list()) == expected
    assert other_live_runs(store, mine) == [elsewhere]  # another host's run cannot be checked
    assert set(mark_stale_runs(store)) == expected
    status = dict(store.runs().select("run_id", "status").iter_rows())
    assert status[mine] == "running" and status[elsewhere] == "running" and status[done] == "complete"
    assert all(status[r] == "interrupted" for r in expected)
    assert mark_stale_runs(store) == []  # idempotent


def test_runs_of_a_store_without_process_columns(tmp_path):
    """A store made before host/pid existed: its old rows are unknown, new rows get the columns."""
    store = Store.open(tmp_path / "db")
    db = lancedb.connect(str(tmp_path / "db"))
    old_schema = pa.schema([f for f in RUNS_SCHEMA if f.name not in RUNS_PROCESS_FIELDS])
    db.drop_table(RUNS_TABLE)
    old = db.create_table(RUNS_TABLE, schema=old_schema)
    old.add(pa.Table.from_pylist([{"run_id": "old", "model": "m", "status": "running"}], schema=old_schema))
    store = Store.open(tmp_path / "db")
    assert mark_stale_runs(store) == []  # no process recorded: unknown, left alone
    new = store.start_run({"model": "m", "pid": _dead_pid()})
    runs = store.runs()
    assert set(RUNS_PROCESS_FIELDS) <= set(runs.columns)
    assert mark_stale_runs(store) == [new]
    assert dict(store.runs().select("run_id", "status").iter_rows()) == {"old": "running", new: "interrupted"}
