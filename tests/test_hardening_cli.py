"""Bad input and disk faults as one sentence, before any work (issue 10, items 6 and 7).

Each case here was a traceback, a silent default or a late failure before; now it is one
sentence, exit status 1, and the store is what it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from actstore.disk_faults import disk_error_message, require_writable
from actstore.errors import ActstoreError
from actstore.ingest.requests import parse_langs, parse_layers
from actstore.store import Store

from _cli import cli
from _store_data import put

MINILM = "all-MiniLM-L6-v2"


def run(*args):
    """`actstore ARGS`, exit status unchecked, exceptions kept in the result (one_sentence_error checks)."""
    return cli(*args, code=None, catch_exceptions=True)


def one_sentence_error(result) -> str:
    """The CLI's error line; asserts exit 1, no traceback, one sentence."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    line = [l for l in result.output.splitlines() if l.startswith("Error: ")]
    assert len(line) == 1, result.output
    assert line[0].endswith(".") and ". " not in line[0][7:-1].replace("e.g. ", "").replace("(cp -r) ", ""), line
    return line[0]


def _store(tmp_path, langs=("eng", "fra"), n_ids=12, modalities=("speech", "text")):
    store = Store.open(tmp_path / "db.lance")
    rng = np.random.default_rng(0)
    for layer in (1, 2):
        for lang in langs:
            for modality in modalities:
                put(store, "m", f"{modality}.L{layer}", modality, lang, range(1, n_ids + 1),
                    rng.standard_normal((n_ids, 16)).astype(np.float32), layer=layer)
    return store


# ------------------------------------------------------------------------------ argument parsing
@pytest.mark.parametrize("spec, message", [
    ("-1", "Layer -1 in --layers '-1' is negative"),
    ("3-x", "Layer 'x' in --layers '3-x' is not an integer"),
    ("6-1", "Layer range '6-1' runs backwards; write the lower layer first, e.g. --layers 1-6."),
    ("2,-3", "is negative"),
    ("", "names no layer"),
    (" , ", "names no layer"),
])
def test_bad_layers_are_one_sentence(spec, message):
    with pytest.raises(ActstoreError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_layers(spec)


def test_layers_still_parse():
    assert parse_layers("1,2,4-6,2") == [1, 2, 4, 5, 6]
    assert parse_layers("study") == "study" and parse_layers(None) is None
    assert parse_langs("all") == "all" and parse_langs(" eng , fra ") == ["eng", "fra"]


@pytest.mark.parametrize("args, message", [
    (["--layers=-1"], "Layer -1 in --layers '-1' is negative"),
    (["--layers", "3-x"], "is not an integer"),
    (["--layers", "6-1"], "runs backwards"),
    (["--langs", ""], "--langs '' names no language"),
    (["--langs", ","], "names no language"),
    (["--modalities", ""], "--modalities '' names nothing"),
])
def test_ingest_arguments_refused_before_the_store_is_touched(tmp_path, args, message):
    db = tmp_path / "fresh.lance"
    result = run("ingest", "--db", db, "--model", MINILM, "--langs", "eng", "--quiet", *args)
    assert message in one_sentence_error(result)
    assert not db.exists()  # not even an empty store was created


def test_manifest_sentence_id_beyond_int64_is_refused_before_any_model(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("sentence_id,lang,modality,text\n1,eng,text,hello\n"
                        "9223372036854775808,eng,text,too big\n")
    # an unknown model: if the manifest were not validated first, the error would be about it
    result = run("ingest", "--db", tmp_path / "db", "--model", "no/such-model", "--source", "manifest",
                 "--data-dir", manifest, "--quiet")
    line = one_sentence_error(result)
    assert "line 3" in line and "does not fit a 64-bit integer" in line


# ------------------------------------------------------------------------------------ disk faults
def test_full_disk_on_ingest_is_one_sentence_and_keeps_the_store(tmp_path, monkeypatch):
    db = Path(_store(tmp_path).uri)  # a store with content to keep
    before = Store.open(db, create=False).count_rows()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(db / "x.lance"))

    monkeypatch.setattr(Store, "write_activations", full)
    result = run("ingest", "--db", db, "--model", MINILM, "--modalities", "text", "--langs", "fra",
                 "--limit", 2, "--quiet")
    line = one_sentence_error(result)
    assert "is full (no space left on device)" in line and "rerun" in line
    store = Store.open(db, create=False)
    assert store.count_rows() == before
    # what the README promises of the failing job: no activation; its texts, committed first, may stay
    assert store.scan_activations(with_vectors=False).filter(pl.col("model") == MINILM).collect().height == 0
    assert sorted(store.sentences(["fra"])["sentence_id"].to_list()) == [1, 2]  # --limit 2: FLORES ids 1, 2
    # the run had started: its row stays, marked failed (actstore/errors.py documents this)
    assert store.runs()["status"].to_list() == ["failed"]


def test_lance_style_disk_errors_are_recognised():
    assert "is full" in disk_error_message(RuntimeError("LanceError(IO): write failed (os error 28)"))
    assert "not writable" in disk_error_message(OSError(errno.EROFS, "Read-only file system"))
    assert disk_error_message(ValueError("something else")) is None


def test_validation_error_adds_no_runs_row(tmp_path):
    db = tmp_path / "db.lance"
    assert run("ingest", "--db", db, "--model", MINILM, "--modalities", "text", "--langs", "eng",
               "--limit", 2, "--quiet").exit_code == 0
    result = run("ingest", "--db", db, "--model", MINILM, "--modalities", "text", "--langs", "eng",
                 "--layers", "99", "--quiet")
    assert "Layer 99 does not exist" in one_sentence_error(result)
    assert Store.open(db, create=False).runs().height == 1


@pytest.fixture()
def read_only_copy(tmp_path):
    """A real read-only copy of a store: chattr +i as root (chmod does not stop root), chmod otherwise."""
    store = _store(tmp_path)
    copy = tmp_path / "ro.lance"
    shutil.copytree(store.uri, copy)
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "-R", "+i", str(copy)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"running as root and chattr +i is unavailable here ({done.stderr.decode().strip()}), "
                        "so no real read-only store can be made")
        yield copy
        subprocess.run(["chattr", "-R", "-i", str(copy)], check=True)
    else:
        for root, dirs, files in os.walk(copy):
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o555 if name in dirs else 0o444)
        os.chmod(copy, 0o555)
        yield copy
        for root, dirs, _files in os.walk(copy):
            os.chmod(root, 0o755)
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)


def test_read_only_store_refused_before_computing(read_only_copy, monkeypatch):
    import actstore.analyses.grids as grids

    def must_not_run(*args, **kwargs):
        raise AssertionError("the grid was computed on a read-only store")

    monkeypatch.setattr(grids, "score_pairs", must_not_run)
    for args in (["analyze", "svcca", "--kind", "all", "--quiet"], ["analyze", "retrieval", "--quiet"],
                 ["analyze", "tsne", "--quiet"], ["analyze", "neurons", "--quiet"], ["analyze", "probe", "--quiet"]):
        result = run(*args, "--db", read_only_copy, "--model", "m")
        line = one_sentence_error(result)
        assert "is read-only" in line and "copy it (cp -r)" in line, line
    result = run("ingest", "--db", read_only_copy, "--model", MINILM, "--langs", "eng", "--quiet")
    assert "ingest writes activations there" in one_sentence_error(result)
    # a report of a read-only store draws what is stored instead of computing (and failing late)
    out = read_only_copy.parent / "r.html"
    result = run("report", "--db", read_only_copy, "--model", "m", "--out", out)
    assert result.exit_code == 0 and "Drawing only the stored results" in result.output, result.output
    assert "actstore analyze similarity --model m --kind cross-modal --measure svcca" in out.read_text()
    # reading still works
    assert run("query", "--db", read_only_copy, "SELECT COUNT(*) AS n FROM activations").exit_code == 0


def test_new_store_in_a_read_only_folder(read_only_copy):
    result = run("ingest", "--db", read_only_copy / "new.lance", "--model", MINILM, "--langs", "eng", "--quiet")
    assert "is not writable" in one_sentence_error(result)


def test_require_writable_skips_object_storage():
    class Remote:
        uri = "s3://bucket/store"

    require_writable(Remote(), "x")  # no probe, no error


def test_query_output_into_missing_folder(tmp_path):
    store = _store(tmp_path)
    result = run("query", "--db", store.uri, "SELECT 1 AS x", "-o", tmp_path / "nope" / "x.csv")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the folder" in result.output and "does not exist" in result.output
    assert not (tmp_path / "nope").exists()


# --------------------------------------------------------------------------- smaller (item 7)
@pytest.mark.parametrize("n, message", [("1", "--n 1 is too few"), ("0", "--n 0 is not a positive"),
                                        ("-5", "--n -5 is not a positive"), ("2", "span at most 1")])
def test_analyze_bad_n_says_why(tmp_path, n, message):
    store = _store(tmp_path)
    result = run("analyze", "svcca", "--db", store.uri, "--model", "m", "--kind", "cross-modal", "--n", n, "--quiet")
    assert message in one_sentence_error(result)


def test_analyze_n3_warns_that_scores_are_forced(tmp_path):
    store = _store(tmp_path)
    result = cli("analyze", "similarity", "--db", store.uri, "--model", "m", "--kind", "cross-modal", "--n", 3, "--quiet")
    assert "1 by construction" in result.output and "1.0 whatever the data" in result.output
    forced = Store.open(store.uri, create=False)
    frame = pl.from_arrow(forced.dataset("similarity").to_table())
    assert (frame["forced"] > 0).all()


def test_report_on_one_language_speech_text_store(tmp_path):
    from actstore.analyses.tsne_maps import save_tsne, tsne_maps

    store = _store(tmp_path, langs=("eng",), n_ids=12)
    # t-SNE stored up front (short run) so the report computes only grids and retrieval
    save_tsne(store, tsne_maps(store, "m", depths=["L2"], per_language=12, perplexity=5, max_iter=250))
    out = tmp_path / "one.html"
    result = run("report", "--db", store.uri, "--model", "m", "--out", out)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Empty by definition: cross-lingual similarity compares pairs of languages" in page
    assert "fig-cm-lines" in page  # cross-modal is there


_DEPRECATIONS = """
import sys, warnings
import numpy as np
from actstore.cli import main
try:
    main(sys.argv[2:] + ["measures"])  # any command; lancedb is not loaded yet, as in `actstore info`
except SystemExit:
    pass
from actstore.store import Store
store = Store.open(sys.argv[1], create=False)
table = store._open_table(store.points("m")["table_name"][0])
# a search that selects columns without `_distance`: lancedb's Rust logger prints a deprecation note
table.search(np.ones(16, np.float32), vector_column_name="vector").select(["lang"]).limit(1).to_arrow()
warnings.warn_explicit("old API", FutureWarning, "lib.py", 1, module="somelib")  # a library's warning
"""


def test_library_deprecation_notes_stay_off_stderr_unless_verbose(tmp_path):
    """Lance's `_distance` note (lancedb's Rust logger) and library FutureWarnings: hidden, shown with -v."""
    store = _store(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "LANCEDB_LOG"}
    quiet, verbose = (subprocess.run([sys.executable, "-c", _DEPRECATIONS, store.uri, *flags], capture_output=True,
                                     text=True, timeout=120, env=env, cwd=tmp_path) for flags in ([], ["-v"]))
    assert quiet.returncode == 0 and verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert "_distance" in verbose.stderr and "old API" in verbose.stderr  # the case does produce both
    assert "_distance" not in quiet.stderr and "old API" not in quiet.stderr, quiet.stderr


@pytest.mark.parametrize("args, message", [
    (["--langs", "xxx"], "Unknown language 'xxx'"),
    (["--langs", "eng", "--model", "./no-such-model-dir"], "No model file or directory"),
    (["--langs", "eng", "--points", "text.L44"], "Unknown point 'text.L44'"),
])
def test_a_refused_ingest_creates_no_store(tmp_path, args, message):
    """Bad input on a new --db path is refused in one sentence and leaves nothing on disk."""
    db = tmp_path / "new.lance"
    base = ["ingest", "--db", db, "--model", MINILM, "--modalities", "text", "--quiet"]
    if "--model" in args:
        base = base[:4] + base[6:]
    line = one_sentence_error(run(*base, *args))
    assert message in line
    assert not db.exists()
