"""Stores on S3-compatible object storage (a real moto server on 127.0.0.1): every command works
on `--db s3://...` with the standard AWS_* variables or `--storage-option`, gives the same
answers as a local store, and concurrent ingests of the same keys leave no duplicate."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
from _cli import cli as run_cli
from _cloud import MINILM, aws_env, make_bucket, s3_env, s3_server, start_cli  # noqa: F401
from actstore.errors import StoreError
from actstore.store_uri import check_uri, parse_storage_options
from actstore.store import Store

pytestmark = pytest.mark.s3

LANGS = "eng,fra,deu"
LIMIT = "12"


def cli(*args: str) -> str:
    """stdout of `actstore ARGS` (exit 0 asserted by the shared runner)."""
    return run_cli(*args).stdout


@pytest.fixture(scope="module")
def stores(tmp_path_factory, s3_env):
    """The same MiniLM ingest (real weights, shipped FLORES text) in a local dir and on S3."""
    local = str(tmp_path_factory.mktemp("s3cmp") / "local.lance")
    remote = f"s3://{s3_env}/study"
    for db in (local, remote):
        cli("ingest", "--db", db, "--model", MINILM, "--langs", LANGS, "--limit", LIMIT, "--quiet")
    return local, remote


def _csv(text: str) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(text))


def test_rows_on_s3_equal_local(stores):
    local, remote = stores
    a, b = Store.open(local, create=False), Store.open(remote, create=False)
    cols = ["point", "lang", "modality", "sample_id", "sentence_id", "n_frames", "layer"]
    sa, sb = a.read(MINILM, columns=cols), b.read(MINILM, columns=cols)
    assert sa.meta.height == 3 * 12 * 7
    ia = sa.meta.with_row_index("i").sort(cols[:4])
    ib = sb.meta.with_row_index("i").sort(cols[:4])
    assert ia.drop("i").equals(ib.drop("i"))
    np.testing.assert_array_equal(sa.vectors[ia["i"].to_numpy()], sb.vectors[ib["i"].to_numpy()])


def test_query_analyze_neighbours_report_on_s3_equal_local(stores, tmp_path):
    local, remote = stores
    outs = {}
    for name, db in (("local", local), ("s3", remote)):
        outs[name] = {
            "query": cli("query", "--db", db, "--format", "csv",
                         "SELECT lang, point, COUNT(*) AS n, SUM(n_frames) AS f FROM activations "
                         "GROUP BY lang, point ORDER BY lang, point"),
            "coverage": cli("query", "--db", db, "--named", "coverage", "--format", "csv"),
            "svcca": cli("analyze", "svcca", "--db", db, "--model", MINILM, "--kind", "cross-lingual",
                         "--points", "L1,L6", "--quiet", "--format", "csv"),
            "retrieval": cli("analyze", "retrieval", "--db", db, "--model", MINILM, "--points", "L6",
                             "--quiet", "--format", "csv"),
            "neighbours": cli("neighbours", "--db", db, "--model", MINILM, "--point", "text.L6", "--k", "5",
                              "--sample-id", "flores200:devtest:eng:1", "--format", "csv"),
        }
        report = tmp_path / f"{name}.html"
        cli("report", "--db", db, "--model", MINILM, "--out", str(report), "--no-compute")
        outs[name]["report"] = report.read_text(encoding="utf-8").replace(db, "DB")
        outs[name]["info"] = cli("info", "--db", db).replace(db, "DB")
    assert _csv(outs["s3"]["query"]).height == 3 * 7
    for key in ("query", "coverage", "svcca", "retrieval", "neighbours"):
        assert _csv(outs["s3"][key]).equals(_csv(outs["local"][key])), key
    assert outs["s3"]["info"].splitlines()[1:] == outs["local"]["info"].splitlines()[1:]
    assert len(outs["s3"]["report"]) > 10_000 and "svcca" in outs["s3"]["report"].lower()


def test_delete_on_s3(s3_server, s3_env):
    db = f"s3://{make_bucket(s3_server)}/del"
    cli("ingest", "--db", db, "--model", MINILM, "--langs", "eng", "--limit", "3", "--quiet")
    assert "deleted 21 rows" in cli("delete", "--db", db, "--model", MINILM, "--yes")
    assert Store.open(db, create=False).count_rows() == 0


def test_storage_option_wins_over_environment(s3_server, s3_env, monkeypatch):
    """Endpoint and credentials from --storage-option alone (the AWS_* variables removed)."""
    bucket = make_bucket(s3_server)
    for k in aws_env(s3_server):
        monkeypatch.delenv(k, raising=False)
    opts = ["--storage-option", f"aws_endpoint={s3_server}", "--storage-option", "aws_access_key_id=testing",
            "--storage-option", "aws_secret_access_key=testing", "--storage-option", "aws_region=us-east-1",
            "--storage-option", "allow_http=true"]
    cli("ingest", "--db", f"s3://{bucket}/opt", *opts, "--model", MINILM, "--langs", "eng", "--limit", "2", "--quiet")
    out = cli("query", "--db", f"s3://{bucket}/opt", *opts, "--format", "csv", "SELECT COUNT(*) AS n FROM activations")
    assert _csv(out)["n"].item() == 14
    store = Store.open(f"s3://{bucket}/opt", create=False,
                       storage_options=parse_storage_options(o for o in opts if o != "--storage-option"))
    assert store.storage_options["aws_endpoint"] == s3_server
    assert store.dataset("points").count_rows() == 7  # a direct Lance open sees the same options


@pytest.mark.parametrize("args, message", [
    (["--db", "s3://no-such-bucket-here/x"], "NoSuchBucket"),
    (["--db", "s4://bucket/x"], "unknown scheme 's4'"),
    (["--db", "s3://"], "names no bucket"),
    (["--db", "s3://b/x", "--storage-option", "region"], "is not KEY=VALUE"),
])
def test_bad_store_locations_fail_with_one_sentence(s3_env, args, message):
    res = run_cli("info", *args, code=None, catch_exceptions=True)
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output


def test_storage_helpers():
    assert parse_storage_options(["AWS_Region=eu-west-1", "allow_http = true", "x=a=b"]) == {
        "aws_region": "eu-west-1", "allow_http": "true", "x": "a=b"}
    assert check_uri("./local.lance") == "./local.lance"
    assert check_uri("gs://bucket/prefix") == "gs://bucket/prefix"
    with pytest.raises(StoreError):
        parse_storage_options(["=x"])


def test_two_concurrent_ingests_of_the_same_keys_leave_no_duplicate(s3_server, s3_env):
    """Two processes ingest the same (eng) keys into one S3 store at the same time.

    The activation table exists beforehand (fra), so both see no stored eng keys and both write
    them: only the table's primary-key guard (DESIGN §2) keeps one row per key.
    """
    db = f"s3://{make_bucket(s3_server)}/race"
    cli("ingest", "--db", db, "--model", MINILM, "--langs", "fra", "--limit", "2", "--quiet")
    args = ["ingest", "--db", db, "--model", MINILM, "--langs", "eng", "--limit", "40", "--quiet"]
    procs = [start_cli(args) for _ in range(2)]
    outs = [p.communicate(timeout=170)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0, 0], outs  # neither fails: not the write, not the finalize (compaction race)
    store = Store.open(db, create=False)
    keys = store.read(MINILM, langs=["eng"], columns=["point", "sample_id"], vectors=False).meta
    dup = keys.group_by("point", "sample_id").len().filter(pl.col("len") > 1)
    assert dup.height == 0, f"{dup.height} duplicated keys; outputs: {outs}"
    assert keys.height == 40 * 7
    print(f"two concurrent ingests on S3: exit codes {codes}, {keys.height} rows, {dup.height} duplicated keys")
