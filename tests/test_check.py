"""`actstore check [--repair]` on real stores with real inconsistencies (issue 10, item 1).

The base store is what the issue's scenario leaves: two ingests of the real all-MiniLM-L6-v2
(`--langs eng,fra --limit 5`) into one new store, started together as separate processes. Each
test copies it, injects one inconsistency for real (rows written through LanceDB directly,
bypassing the key guard; deleted rows; a runs row with a dead pid), and checks that `check`
finds exactly it with its counts, `--repair` fixes it, a second `check` passes, and analyses
refuse before the repair and work after.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lancedb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from actstore.schema import ACTIVATION_KEY, RUNS_SCHEMA, SCHEMA_VERSION
from actstore.store import Store
from actstore.store.integrity import check_store, count_duplicates

from _cli import cli
from test_store_migrate import _old_store

MODEL = "all-MiniLM-L6-v2"
TESTS = Path(__file__).parent


def problems(db) -> list[str]:
    """The problem lines `check` prints (exit code 1 when there are any)."""
    result = cli("check", "--db", db, code=None)
    lines = [ln for ln in result.stdout.splitlines() if ln and not ln.startswith(str(db))]
    assert result.exit_code == (1 if lines else 0), result.output
    return lines


@pytest.fixture(scope="module", autouse=True)
def no_retention():
    """These tests check the cleanup of old versions itself: no retention window for live readers
    (tests/test_store_retention.py checks the window)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACTSTORE_KEEP_VERSIONS", "0")
        yield


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory):
    """Two ingests of the same model and languages into one new store, started together."""
    root = tmp_path_factory.mktemp("concurrent")
    db, barrier = root / "store.lance", root / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, str(TESTS / "_check_ingest.py"), str(barrier), "2", "ingest", "--db", str(db),
            "--model", MODEL, "--modalities", "text", "--langs", "eng,fra", "--limit", "5", "--quiet"]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    return db, [p.returncode for p in procs], outputs


@pytest.fixture
def db(concurrent, tmp_path):
    """A private copy of the base store."""
    copy = tmp_path / "store.lance"
    shutil.copytree(concurrent[0], copy)
    return copy


def table_of(db) -> str:
    return Store.open(db, create=False).points(MODEL)["table_name"][0]


def all_rows(db) -> pl.DataFrame:
    """Every activation row with its vector, sorted by key (to compare stores)."""
    store = Store.open(db, create=False)
    s = store.read(MODEL, points=store.points(MODEL)["point"].to_list())
    return s.meta.with_columns(pl.Series("vector", s.vectors.tolist())).sort(list(ACTIVATION_KEY))


def test_two_concurrent_ingests_store_each_key_once_and_pass_the_check(concurrent):
    db, codes, outputs = concurrent
    assert codes == [0, 0], outputs
    store = Store.open(db, create=False)
    table = table_of(db)
    assert store.dataset(table).count_rows() == 2 * 5 * 7  # 2 languages x 5 sentences x 7 points
    assert count_duplicates(store, table, ACTIVATION_KEY) == (0, 0)
    assert store.sentences().height == 10
    assert problems(db) == []
    assert "ok (" in cli("check", "--db", db).stdout


def test_duplicate_keys_are_found_refused_and_removed_keeping_the_newest(db):
    original = all_rows(db)
    store = Store.open(db, create=False)
    table = table_of(db)
    raw = lancedb.connect(str(db)).open_table(table)
    fra = raw.to_lance().to_table(filter="lang = 'fra'")
    raw.add(fra)  # exact copies of 35 rows, bypassing the key guard (a plain add checks nothing)
    newer = store.start_run({"model": MODEL})  # a later run rewrote 3 eng rows with other vectors
    eng = raw.to_lance().to_table(filter="lang = 'eng' AND point = 'text.L6'").sort_by("sentence_id").slice(0, 3)
    ids = eng["sentence_id"].to_pylist()
    vec = pa.FixedSizeListArray.from_arrays(pa.array(np.full(3 * 384, 7.0, np.float32)), 384)
    raw.add(eng.set_column(eng.schema.get_field_index("vector"), "vector", vec)
            .set_column(eng.schema.get_field_index("run_id"), "run_id", pa.array([newer] * 3)))
    store.finish_run(newer, status="complete", n_items=3, n_rows=3)

    found = problems(db)
    assert found[0] == (f"duplicate-keys: table '{table}' stores 38 keys (model, point, modality, lang, "
                        "sample_id) more than once: 38 surplus rows")
    assert sorted(p.split(":")[0] for p in found) == ["duplicate-keys", "fragments", "indices", "old-versions"]

    refused = cli("analyze", "svcca", "--db", db, "--model", MODEL, "--kind", "cross-lingual",
                  "--points", "L6", "--quiet", code=1)
    assert "38 activation keys stored more than once" in refused.output
    assert f"run `actstore check --repair --db {db}`" in refused.output
    assert refused.output.count(".") <= 3 and "Traceback" not in refused.output  # one sentence
    cli("neighbours", "--db", db, "--model", MODEL, "--point", "text.L6",
        "--sample-id", original["sample_id"][0], code=1)
    info = cli("info", "--db", db)
    assert "warning: duplicate-keys" in info.stderr and "actstore check --repair" in info.stderr

    repaired = cli("check", "--repair", "--db", db)
    assert f"deduplicated '{table}': deleted 38 surplus rows" in repaired.stdout
    assert "ok (" in repaired.stdout
    assert problems(db) == []

    after = all_rows(db)
    assert after.height == original.height
    newest = (pl.col("lang") == "eng") & (pl.col("point") == "text.L6") & pl.col("sentence_id").is_in(ids)
    assert after.filter(~newest).drop("run_id").equals(original.filter(~newest).drop("run_id"))
    assert np.array(after.filter(newest)["vector"].to_list()).tolist() == np.full((3, 384), 7.0).tolist()
    cli("analyze", "svcca", "--db", db, "--model", MODEL, "--kind", "cross-lingual", "--points", "L6",
        "--no-null", "--quiet")


def test_missing_sentence_texts_name_the_ingest_that_fills_them(db):
    store = Store.open(db, create=False)
    fra_ids = sorted(store.read(MODEL, points="text.L1", langs=["fra"]).meta["sentence_id"].to_list())
    lancedb.connect(str(db)).open_table("sentences").delete(f"lang = 'fra' AND sentence_id IN {tuple(fra_ids[:3])}")
    found = problems(db)
    assert len(found) == 1 and found[0].startswith(
        f"missing-sentences: 3 sentence ids with text activations of '{MODEL}' have no text (fra 3); run `actstore ingest")
    repaired = cli("check", "--repair", "--db", db, code=1)  # only the model can give them back
    assert "missing-sentences: 3" in repaired.stdout
    command = found[0].split("run `", 1)[1].rstrip("`")
    assert "--langs fra" in command and "--modalities text" in command
    cli(*shlex.split(command)[1:], "--quiet")
    assert problems(db) == []
    texts = Store.open(db, create=False).sentences(["fra"])
    assert sorted(texts["sentence_id"].to_list()) == fra_ids


def test_points_registry_is_repaired_to_match_the_rows(db):
    store = Store.open(db, create=False)
    registered = store.points().sort("point")
    pts = lancedb.connect(str(db)).open_table("points")
    pts.delete("point = 'text.L3'")  # rows without a registration
    pts.update(where="point = 'text.L2'", values={"width": 999})  # a wrong width
    pts.add(registered.filter(pl.col("point") == "text.L1")  # a registration without rows
            .with_columns(pl.lit("text.L99").alias("point")).to_arrow().cast(pts.schema))
    found = problems(db)
    assert found == [
        f"unregistered-points: 1 (model, point) pairs have 10 activation rows but are not in the points "
        f"registry ({MODEL}/text.L3), so no reader sees them",
        f"empty-points: 1 registered (model, point) pairs have no activation rows ({MODEL}/text.L99)",
        f"point-width: 1 registered points disagree with their rows on width, dtype or table ({MODEL}/text.L2)",
    ]
    repaired = cli("check", "--repair", "--db", db)
    assert "points registry: 3 (model, point) registrations added, fixed or removed" in repaired.stdout
    assert problems(db) == []
    assert Store.open(db, create=False).points().sort("point").equals(registered)


def test_a_running_run_whose_process_is_gone_is_marked_interrupted(db, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        now = datetime.now(timezone.utc)
        rows = [  # dead pid; a live pid that was reused after the run started; a live run; another host
            {"run_id": "dead", "pid": dead.pid, "started_at": now, "host": os.uname().nodename},
            {"run_id": "reused", "pid": live.pid, "started_at": now - timedelta(hours=1), "host": os.uname().nodename},
            {"run_id": "alive", "pid": live.pid, "started_at": now, "host": os.uname().nodename},
            {"run_id": "elsewhere", "pid": dead.pid, "started_at": now, "host": "another-host"},
        ]
        runs = lancedb.connect(str(db)).open_table("runs")
        runs.add(pa.Table.from_pylist([{**{f.name: None for f in RUNS_SCHEMA}, "model": MODEL,
                                        "status": "running", **r} for r in rows], schema=RUNS_SCHEMA))
        found = problems(db)
        assert found == ["stale-runs: 2 runs are marked running but their process is gone (reused, dead)"]  # by start
        cli("check", "--repair", "--db", db)
        assert problems(db) == []
        status = dict(Store.open(db, create=False).runs().select("run_id", "status").iter_rows())
        assert [status[r] for r in ("dead", "reused", "alive", "elsewhere")] == [
            "interrupted", "interrupted", "running", "running"]
    finally:
        live.kill()
        live.wait()


def test_an_unfinalized_table_is_indexed_compacted_and_cleaned(db):
    table = table_of(db)
    store = Store.open(db, create=False)
    tbl = lancedb.connect(str(db)).open_table(table)
    tbl.drop_index("lang_idx")
    extra = tbl.to_lance().to_table(filter="lang = 'fra'")
    extra = extra.set_column(extra.schema.get_field_index("lang"), extra.schema.field("lang"),
                             pa.array(["deu"] * extra.num_rows))
    tbl.merge_insert(list(ACTIVATION_KEY)).when_not_matched_insert_all().execute(extra)
    store.write_sentences(store.sentences(["fra"]).with_columns(pl.lit("deu").alias("lang")).to_arrow())
    found = problems(db)
    assert found == [
        f"indices: table '{table}' lacks 1 of its 4 metadata indices and has 35 rows outside them",
        f"fragments: table '{table}' is not compacted: 2 small fragments, 0 fragments with over 10% deleted rows",
        f"old-versions: table '{table}' keeps 2 old versions (disk not cleaned up)",
    ]
    cli("check", "--repair", "--db", db)
    assert problems(db) == []
    ds = store.dataset(table)
    assert len(ds.get_fragments()) == 1 and len(ds.versions()) == 1 and ds.count_rows() == 105


def test_an_old_schema_store_with_duplicates_is_repaired_then_migrates(tmp_path):
    uri = _old_store(tmp_path / "old", duplicate=True)
    cli("migrate", "--db", uri, code=1)  # refuses, naming `actstore check --repair`
    found = problems(uri)
    assert found[0] == ("schema-version: the store has schema version 1, this actstore reads "
                        f"{SCHEMA_VERSION}; after the repair run `actstore migrate --db {uri}`")
    assert found[1] == ("duplicate-keys: table 'sentences' stores 1 keys (source, split, lang, sentence_id) "
                        "more than once: 1 surplus rows")
    cli("check", "--repair", "--db", uri, code=1)  # repaired, but the version needs migrate
    assert [p.split(":")[0] for p in problems(uri)] == ["schema-version"]
    cli("migrate", "--db", uri)
    # migrate's schema commits leave the versions before them (no data is rewritten): cleaned on request
    assert [p.split(":")[0] for p in problems(uri)] == ["old-versions"]
    cli("check", "--repair", "--db", uri)
    assert problems(uri) == []


def test_a_runs_table_without_host_and_pid_gains_them_on_the_next_run(tmp_path):
    store = Store.open(tmp_path / "s.lance")
    lancedb.connect(str(tmp_path / "s.lance")).open_table("runs").drop_columns(["host", "pid"])
    store = Store.open(tmp_path / "s.lance")
    assert store.runs()["pid"].dtype == pl.Int64  # read as null columns before any new run
    run_id = store.start_run({"model": "m"})
    row = store.runs().row(0, named=True)
    assert (row["run_id"], row["pid"], row["host"]) == (run_id, os.getpid(), os.uname().nodename)
    assert check_store(store).ok  # its own process: running, not stale
