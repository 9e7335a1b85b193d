"""`actstore.workflows.report.write_report`: the report as a library call, without the CLI.

A Python user (or the study runner) calls `write_report` and gets the page `actstore report`
writes: the same datasets (every number the charts draw), the same models in the same order, the
same random-init labels. The library call computes the missing results itself and says so through
`progress`; the CLI run after it on the same store then finds everything stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actstore.errors import ReportError, StoreError
from actstore.store import Store
from actstore.workflows.report import ReportResult, write_report

from _cli import cli
from _models import small_corpus

LANGS = "eng,fra"
SONAR = "tiny-random-sonar"


def _page_data(page: Path) -> dict:
    """The datasets the page hands to the charts (the ACTSTORE_DATA script constant)."""
    line = next(l for l in page.read_text().splitlines() if l.startswith("const ACTSTORE_DATA = "))
    return json.loads(line.removeprefix("const ACTSTORE_DATA = ").rstrip(";"))


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory, tiny_seamless_dir):
    from actstore.ingest.adapters.sonar.tiny import build_tiny_sonar_speech, build_tiny_sonar_text

    tmp = tmp_path_factory.mktemp("report_library")
    db = tmp / "store.lance"
    sonar = build_tiny_sonar_text(tmp / SONAR, corpus_texts=small_corpus(), vocab_size=400)
    build_tiny_sonar_speech(sonar)
    for model in (tiny_seamless_dir, sonar):
        cli("ingest", "--db", db, "--model", model, "--langs", LANGS, "--limit", 4, "--quiet",
            "--cache-dir", tmp / "espeak")
    return tmp, db, tiny_seamless_dir.name


@pytest.mark.slow  # two tiny models ingested, every report result computed once (about 30 s)
def test_library_call_writes_the_cli_page(store_dir):
    tmp, db, seamless = store_dir
    said: list[str] = []
    result = write_report(Store.open(db), [seamless, SONAR, seamless], tmp / "lib.html", progress=said.append)
    assert isinstance(result, ReportResult) and result.path == tmp / "lib.html" and result.path.exists()
    assert result.models == [seamless, SONAR]  # named twice, drawn once
    assert result.random_init == {seamless: True, SONAR: True}
    assert result.computed[seamless] and result.computed[SONAR]  # a fresh store: results were computed
    assert any(f"for {SONAR}" in line and "saved to the store" in line for line in said)
    # both are random-init builds of study architectures (adapter families): published values only
    rows = result.published
    assert set(rows["system"]) == {"seamless-m4t-v2", "sonar"} and (rows["how"] == "adapter family").all()
    assert rows["ours"].is_null().all() and rows["difference"].is_null().all()
    page = result.path.read_text()
    published = page[page.index('<section id="published">'):]
    assert published.index('<div class="banner">RANDOM-INIT models: ') < published.index("</section>")

    run = cli("report", "--db", db, "--model", seamless, "--model", SONAR, "--out", tmp / "cli.html")
    assert "computed missing" not in run.output  # the library call saved them
    assert "RANDOM-INIT" in run.output
    lib, via_cli = _page_data(result.path), _page_data(tmp / "cli.html")
    assert lib.keys() == via_cli.keys() and len(lib) > 3
    assert lib == via_cli  # every number the charts draw, bitwise on one machine and store

    one = write_report(Store.open(db), [SONAR], tmp / "one.html", compute=False)
    cli("report", "--db", db, "--model", SONAR, "--out", tmp / "one_cli.html", "--no-compute")
    assert one.computed == {} and _page_data(one.path) == _page_data(tmp / "one_cli.html")


def test_bad_input_raises_one_sentence_and_writes_nothing(tmp_path):
    store = Store.open(tmp_path / "empty.lance", create=True)
    with pytest.raises(StoreError, match="no-such-model"):
        write_report(store, ["no-such-model"], tmp_path / "bad.html")
    with pytest.raises(ReportError, match="at least one stored model"):
        write_report(store, [], tmp_path / "bad.html")
    assert not (tmp_path / "bad.html").exists()
