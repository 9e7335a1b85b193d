"""The neuron study as a study file (issue 17 with issue 16's decoding and interventions): a tiny
random-init SeamlessM4T v2 ingested with decoder sites (teacher-forced on the English
translation), ranked by `neurons`, and intervened on through `[[analyses.interventions]]`; the
study's intervention rows equal what `actstore intervene` stores for the same request.
"""

from __future__ import annotations

import textwrap

import pytest

from _cli import cli
from _models import write_manifest
from actstore.schema import INTERVENTIONS_TABLE
from actstore.store import Store

SENTENCES = {"eng": ["The cat sleeps.", "Rain falls.", "We read books."],
             "fra": ["Le chat dort.", "La pluie tombe.", "Nous lisons des livres."]}

STUDY = """\
    [study]
    name = "tiny-neurons"
    out = "{out}"

    [store]
    path = "{db}"

    [data]
    source = "manifest"
    data_dir = "{manifest}"
    languages = ["eng", "fra"]

    [systems.tiny-random-seamless-m4t-v2]
    model = "{seamless}"
    layers = [1]
    sites = ["ffn"]
    target_lang = "eng"
    batch_size = 3

    [analyses]
    neurons = {{ sites = ["decoder.*"], k = 5, global_k = 20, boot = 20 }}

    [[analyses.interventions]]
    site = "decoder.L1.ffn"
    top = 3
    target = "eng"
    seeds = [0]
    conditioning = "both"
    target_lang = "eng"
    generate = true
    max_new_tokens = 3
    boot = 50
    source = "manifest"
    data_dir = "{manifest}"
    languages = ["eng", "fra"]
    limit = 2

    [report]
    path = "report.html"
    """

ORDER = ("modality", "neuron_set", "seed", "lang")
NUMBERS = ("delta_per_token", "ci_low", "ci_high", "loglik_per_token", "clamped_loglik_per_token",
           "lang_share", "clamped_lang_share")


@pytest.mark.slow
def test_a_study_file_runs_the_neuron_study_and_its_interventions_equal_the_command(tmp_path, tiny_seamless_dir):
    (tmp_path / "data").mkdir()
    manifest = write_manifest(tmp_path / "data", SENTENCES)
    db = tmp_path / "tiny.lance"
    study = tmp_path / "tiny.toml"
    study.write_text(textwrap.dedent(STUDY).format(out=tmp_path / "out", db=db, manifest=manifest,
                                                  seamless=tiny_seamless_dir))
    cli("study", study, "--quiet")
    rows = Store.open(str(db)).read_results(INTERVENTIONS_TABLE).sort(*ORDER)
    # both conditionings x 2 languages x (the chosen set, 1 random, 1 matched control)
    assert rows.height == 2 * 2 * 3 and set(rows["modality"]) == {"speech", "text"}
    assert set(rows["neuron_set"]) == {"top:eng", "random", "matched"} and rows["random_init"].all()
    assert rows["lang_share"].is_not_null().all() and (rows["max_new_tokens"] == 3).all()
    assert "intervene decoder.L1.ffn" in cli("study", study, "--status").output

    cli("intervene", "--db", db, "--model", tiny_seamless_dir, "--source", "manifest", "--data-dir", manifest,
        "--langs", "eng,fra", "--site", "decoder.L1.ffn", "--top", "3", "--target", "eng", "--seeds", "0",
        "--conditioning", "both", "--target-lang", "eng", "--generate", "--max-new-tokens", "3",
        "--boot", "50", "--limit", "2")
    again = Store.open(str(db)).read_results(INTERVENTIONS_TABLE).sort(*ORDER)
    assert again.height == rows.height  # the same key: the command replaced the study's rows
    for column in NUMBERS:
        assert again[column].to_list() == pytest.approx(rows[column].to_list(), abs=1e-6), column
