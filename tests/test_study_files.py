"""Study files (issue 17, items 1-2): the shipped studies validate and plan, `--dry-run` of the
FLEURS study works without its weights, and a malformed file gets one sentence per problem
naming the key and its line, before anything runs (no store is created)."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from actstore.cli import main
from actstore.workflows.study import StudyError, load_study, prepare, shipped_studies
from actstore.workflows.study.spec import KeyLines
from actstore.workflows.study.validate import validate

SHIPPED = ("demo", "naacl2025", "neurons2026")


def test_the_three_studies_ship_and_are_listed():
    assert set(SHIPPED) <= set(shipped_studies())
    out = CliRunner().invoke(main, ["study", "--list"])
    assert out.exit_code == 0
    assert all(line.split(":")[0] in shipped_studies() for line in out.output.splitlines())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_study_validates_and_plans(name):
    study = load_study(name)
    checked = validate(study)
    assert checked.problems == []
    plan, _ = prepare(study, weights=False)
    assert plan.steps and plan.steps[-1].kind == "report"


def test_naacl2025_is_the_fleurs_study():
    """Its 30 languages per system with their resource levels, the three real systems at their
    study layers, the FLEURS test split."""
    plan, _ = prepare(load_study("naacl2025"), weights=False)
    assert set(plan.systems) == {"seamless-m4t-v2-large", "sonar", "salmonn-7b"}
    assert plan.systems["seamless-m4t-v2-large"].spec["model"] == "facebook/seamless-m4t-v2-large"
    for sp in plan.systems.values():
        assert len(sp.langs) == 30 and sp.modalities == ["speech", "text"] and sp.limit is None
    ingest = {s.system: s.args for s in plan.steps if s.kind == "ingest"}
    assert all(a["layers"] == "study" and a["source"] == "fleurs" and a["split"] == "test" for a in ingest.values())
    assert "asm" in plan.systems["sonar"].langs and "asm" not in plan.systems["salmonn-7b"].langs


def test_naacl2025_dry_run_without_weights_names_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = CliRunner().invoke(main, ["study", "naacl2025", "--dry-run"])
    assert out.exit_code == 0, out.output
    text = out.output
    assert "missing weights (the run needs them):" in text and "nothing was run (dry run)." in text
    for name in ("seamless-m4t-v2-large", "sonar", "salmonn-7b"):
        assert f"  {name}: " in text.split("missing weights")[1]
    assert "huggingface-cli download facebook/seamless-m4t-v2-large" in text
    assert "items," in text and "forwards" in text and "peak activation memory" in text and "on disk" in text
    assert "19. report of seamless-m4t-v2-large, sonar, salmonn-7b" in text
    assert not (tmp_path / "naacl2025.lance").exists()
    # a run (not a dry run) refuses before anything: one sentence per missing system
    run = CliRunner().invoke(main, ["study", "naacl2025"])
    assert run.exit_code == 1 and "systems.seamless-m4t-v2-large.model" in run.output
    assert not (tmp_path / "naacl2025.lance").exists()


MALFORMED = textwrap.dedent("""\
    [study]
    name = "broken"

    [store]
    path = "broken.lance"

    [data]
    languages = ["eng", "frx"]
    limt = 5

    [systems.m]
    model = "./no-such-model"
    layers = "2-1"
    target_lang = "eng"

    [analyses]
    similarity = ["cross-modal", "sideways"]

    [report]
    published = { m = "seamless" }
    """)


def test_a_malformed_study_gets_one_sentence_per_problem_with_key_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "broken.toml"
    path.write_text(MALFORMED)
    out = CliRunner().invoke(main, ["study", str(path)])
    assert out.exit_code == 1
    lines = [line for line in out.output.removeprefix("Error: ").splitlines() if line.strip()]
    expect = {
        "line 8, key data.languages: unknown language 'frx'.": "Did you mean",
        "line 9, key data.limt: unknown key; did you mean 'limit'?": "keys there",
        "line 13, key systems.m.layers:": "runs backwards",
        "line 14, key systems.m.target_lang: a decoder target needs decoder sites": "sites",
        "line 17, key analyses.similarity: 'sideways' is not a similarity kind": "cross-modal",
        "line 12, key systems.m.model:": "No model file or directory",
        "line 20, key report.published.m: 'seamless' is not a system of the published study": "seamless-m4t-v2",
    }
    assert len(lines) == len(expect), lines
    for start, also in expect.items():
        hit = [line for line in lines if start in line]
        assert len(hit) == 1 and also in hit[0] and hit[0].startswith(str(path)), (start, lines)
    assert not (tmp_path / "broken.lance").exists()


def test_resource_levels_are_checked_against_the_catalogue(tmp_path):
    text = MALFORMED.replace('languages = ["eng", "frx"]\nlimt = 5',
                             '[data.levels]\nhigh = ["eng", "mar"]\nlow = ["bul"]')
    path = tmp_path / "levels.toml"
    path.write_text(text)
    problems = validate(load_study(path)).problems
    level = [p for p in problems if "data.levels.high" in p]
    assert len(level) == 1 and "mar is a low-resource language" in level[0] and "line 9" in level[0]


def test_key_lines_in_tables_inline_tables_and_arrays():
    lines = KeyLines('[a]\nx = 1\n[a.b]\ny = { z = 2 }\n[[c]]\nk = 3\n[[c]]\nk = 4\n')
    assert lines.line(("a", "x")) == 2 and lines.line(("a", "b", "y", "z")) == 4
    assert lines.line(("c", 0, "k")) == 6 and lines.line(("a", "missing")) == 1


def test_set_overrides_a_key_and_an_unknown_study_is_named(tmp_path):
    study = load_study("demo", overrides=["systems.all-MiniLM-L6-v2.limit=7", "store.path=x.lance"])
    assert study.systems["all-MiniLM-L6-v2"]["limit"] == 7 and study.table("store")["path"] == "x.lance"
    with pytest.raises(StudyError, match="did you mean|Did you mean") as err:
        load_study("naacl2052")
    assert "naacl2025" in str(err.value)


def test_dry_run_costs_a_present_model_from_its_adapter_and_status_says_all_is_left(tmp_path, tiny_bert_dir):
    """Weights here: the estimate reads the adapter's points, widths and cost model (not the rough
    default); the items and forwards follow from languages x limit x modalities and the batch size."""
    path = tmp_path / "bert.toml"
    path.write_text(textwrap.dedent(f"""\
        [store]
        path = "{tmp_path / 'bert.lance'}"
        [data]
        languages = ["eng", "fra", "deu"]
        limit = 10
        [systems.bert]
        model = "{tiny_bert_dir}"
        modalities = ["text"]
        batch_size = 4
        [analyses]
        similarity = ["cross-lingual"]
        """))
    from actstore.workflows.study.estimate import estimate

    plan, _ = prepare(load_study(path))
    cost = estimate(plan)[0]
    assert (cost.items, cost.forwards, cost.exact) == (30, 9, True)
    from actstore.ingest.adapters import load_adapter

    adapter = load_adapter(str(tiny_bert_dir))
    widths = [adapter.width(p) for p in adapter.points("text")]
    assert cost.points == len(widths) and cost.disk_bytes == 30 * (4 * sum(widths) + 120 * len(widths))
    status = CliRunner().invoke(main, ["study", str(path), "--status"])
    assert status.exit_code == 0 and "not created yet" in status.output and "2 of 3 steps left" in status.output
    assert not (tmp_path / "bert.lance").exists()


def test_a_speech_text_comparison_of_a_one_modality_system_is_impossible(tmp_path):
    path = tmp_path / "text-only.toml"
    path.write_text('[systems.minilm]\nmodel = "all-MiniLM-L6-v2"\nmodalities = ["text"]\n\n'
                    '[analyses]\nsimilarity = ["cross-modal"]\n')
    problems = validate(load_study(path)).problems
    assert len(problems) == 1 and "line 6, key analyses.similarity: cross-modal compares speech with text" in problems[0]


def test_a_failing_step_is_one_sentence_and_what_needs_it_is_skipped(tmp_path, tiny_bert_dir):
    """A problem only the run can see (here: no FLEURS data at data_dir) fails its step with the
    library's sentence; the system's analyses and the report are skipped, the exit status is 1,
    and the refused ingest created no store."""
    path = tmp_path / "fails.toml"
    path.write_text(textwrap.dedent(f"""\
        [store]
        path = "{tmp_path / 'fails.lance'}"
        [data]
        source = "fleurs"
        data_dir = "{tmp_path / 'no-fleurs'}"
        languages = ["eng", "fra"]
        [systems.bert]
        model = "{tiny_bert_dir}"
        modalities = ["text"]
        [analyses]
        similarity = ["cross-lingual"]
        """))
    out = CliRunner().invoke(main, ["study", str(path), "--quiet"])
    assert out.exit_code == 1
    lines = out.output.splitlines()
    failed = [line for line in lines if line.startswith("failed")]
    assert len(failed) == 1 and "ingest bert" in failed[0]
    assert sum(line.startswith("skipped") for line in lines) == 2  # the similarity step and the report
    assert lines[-1] == "study fails: 2 skipped, 1 failed of 3 steps."
    assert not (tmp_path / "fails.lance").exists()


def test_demo_sh_sets_only_keys_the_demo_study_has():
    """`make demo` runs scripts/demo.sh, which passes the Makefile's sizes to `actstore study demo`
    with --set: every key it sets must name a table of demo.toml and a key that table takes."""
    import re
    from pathlib import Path

    from actstore.workflows.study.spec import SCHEMA

    script = (Path(__file__).resolve().parents[1] / "scripts" / "demo.sh").read_text()
    assert '"$A" study demo' in script
    keys = re.findall(r"--set ([\w.\-]+)=", script)
    assert len(keys) >= 10
    study = load_study("demo")
    for key in keys:
        *tables, last = key.split(".")
        if tables[0] == "systems":
            assert tables[1] in study.systems, key
            assert last in SCHEMA["system"], key
        else:
            assert last in SCHEMA[tables[0]], key
    checked = validate(load_study("demo", overrides=[f"{k}=3" if k.endswith("limit") else
                                                      f"{k}=eng,fra" if k.endswith("languages") else f"{k}=x"
                                                      for k in keys]))
    assert checked.problems == []


def test_a_dry_run_without_weights_counts_the_neuron_sites_on_disk():
    """neurons2026 without its weights: 30 languages x 200 sentences x speech and text, 4 layers of
    width 1024, sites ffn (4 x 1024), self_attn.k/v in each encoder plus the decoder's ffn,
    self_attn.k/v and cross_attn.k/v (target_lang eng), float16 vectors and 120 bytes per row."""
    from actstore.workflows.study.estimate import estimate

    plan, _ = prepare(load_study("neurons2026"), weights=False)
    (cost,) = estimate(plan)
    per_layer = [4096, 1024, 1024] + [4096, 1024, 1024, 1024, 1024]  # encoder, then decoder sites
    widths = [1024] * 4 + per_layer * 4
    assert cost.points == 2 * len(widths) and not cost.exact
    assert cost.disk_bytes == 30 * 200 * 2 * (sum(widths) * 2 + 120 * len(widths)) == 1_526_400_000
