"""The ingest pipeline's pieces: named phases, faults at a phase, plan + filter before encoding,
the store read and the payloads loaded once per job, one check of the arguments."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from actstore.cli import main
from actstore.errors import ActstoreError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.pipeline import (PHASES, IngestRequest, ingest, open_inputs, pending_work, prepare_plan,
                                      study_layers)
from actstore.ingest.adapters.common.study import STUDY_LAYERS
from actstore.ingest.requests import ENGINES, parse_layers
from actstore.ingest.sources.base import Source
from actstore.ingest.steps.inputs import check_request
from actstore.schema import VECTOR_DTYPES
from actstore.store import Store

pytestmark = pytest.mark.filterwarnings("ignore:Truncated")


def request(model_dir, **kw) -> IngestRequest:
    args = dict(model=str(model_dir), modalities=["text"], langs=["eng", "fra", "deu"], limit=4,
                batch_size=3)
    args.update(kw)
    return IngestRequest(**args)


def test_phases_are_named_and_ordered(tmp_path, tiny_bert_dir):
    store = Store.open(tmp_path / "db")
    seen = []
    ingest(store, request(tiny_bert_dir), progress=False,
           on_phase=lambda name, job: seen.append((name, job.label if job else None)))
    assert {name for name, _ in seen} == set(PHASES)
    n_tables = store.points()["table_name"].n_unique()
    assert seen[:2] == [("plan", None), ("run", None)]
    assert seen[-(2 + 2 * n_tables):] == [("finish", None)] + [("indexed", None), ("compacted", None)] * n_tables \
        + [("finalized", None)]
    per_job = [s for s in seen if s[1] is not None]
    assert per_job == [(p, f"{lang}/text") for lang in ("eng", "fra", "deu")
                       for p in ("filter", "encode", "write", "texts", "rows", "job")]
    assert [name for name, _ in seen if name in PHASES] == [n for n, _ in seen]


def test_fault_at_write_keeps_whole_jobs_and_resume_completes(tmp_path, tiny_bert_dir):
    store = Store.open(tmp_path / "db")
    writes = []

    def fail_on_second_write(name, job):
        if name == "write":
            writes.append(job.label)
            if len(writes) == 2:
                raise RuntimeError("injected fault before the fra/text commit")

    with pytest.raises(RuntimeError, match="injected"):
        ingest(store, request(tiny_bert_dir), progress=False, on_phase=fail_on_second_write)
    n_points = store.points().height
    per_lang = store.scan_activations(with_vectors=False).group_by("lang").len().collect()
    assert per_lang.rows() == [("eng", 4 * n_points)]  # the first job, whole; nothing of the second
    assert store.runs()["status"].to_list() == ["failed"]

    summary = ingest(store, request(tiny_bert_dir), progress=False)
    assert (summary.items, summary.skipped_items, summary.jobs) == (8, 4, 2)
    keys = store.scan_activations(with_vectors=False).select("point", "lang", "sample_id").collect()
    assert keys.height == 3 * 4 * n_points and keys.is_unique().all()
    assert not hasattr(summary, "seconds")


def test_plan_and_filter_run_before_any_model_forward(tmp_path, tiny_bert_dir):
    """What a distributed engine needs: the jobs and their pending items, decided on the driver."""
    store = Store.open(tmp_path / "db")
    req = request(tiny_bert_dir, limit=3)
    catalogue, source, langs = open_inputs(req)
    adapter = load_adapter(req.model)
    plan = prepare_plan(store, req, adapter, catalogue, source, langs)
    assert [job.label for job in plan.jobs] == ["eng/text", "fra/text", "deu/text"]
    assert all(len(job.ids) == 3 for job in plan.jobs)
    before = [pending_work(store, plan.model, source, job, overwrite=False) for job in plan.jobs]
    assert [w.n_items for w in before] == [3, 3, 3] and not any(w.replace for w in before)

    ingest(store, request(tiny_bert_dir, langs=["eng"], limit=2), progress=False)
    after = pending_work(store, plan.model, source, plan.jobs[0], overwrite=False)
    assert (after.n_items, after.n_skipped, after.replace) == (1, 2, False)  # only the new id
    forced = pending_work(store, plan.model, source, plan.jobs[0], overwrite=True)
    assert (forced.n_items, forced.replace) == (3, True)


def test_partial_points_are_replaced_not_duplicated(tmp_path, tiny_bert_dir):
    store = Store.open(tmp_path / "db")
    ingest(store, request(tiny_bert_dir, langs=["eng"], layers=[1]), progress=False)
    ingest(store, request(tiny_bert_dir, langs=["eng"], layers=[1, 2]), progress=False)
    keys = store.scan_activations(with_vectors=False).select("point", "sample_id").collect()
    assert keys.group_by("point").len().sort("point").rows() == [("text.L1", 4), ("text.L2", 4)]
    assert keys.is_unique().all()


def test_study_layers_come_from_the_adapter(tiny_bert_dir):
    assert parse_layers("study") == "study"
    assert parse_layers("1,3-4") == [1, 3, 4]
    with pytest.raises(ActstoreError, match="Layer 'x' in --layers '1,x-2' is not an integer"):
        parse_layers("1,x-2")
    adapter = load_adapter(str(tiny_bert_dir))
    assert study_layers(adapter) == list(STUDY_LAYERS)  # the adapter sets none: the study's
    adapter.study_layers = (2,)  # as a family that declares its own study layers
    assert study_layers(adapter) == [2]


def test_each_job_reads_the_store_once_and_loads_its_items_once(tmp_path, tiny_bert_dir, monkeypatch):
    """Resume reads which keys are stored once per job (not again at the job's turn), and the
    memory check's loaded items are the ones encoded (not read a second time)."""
    store = Store.open(tmp_path / "db")
    ingest(store, request(tiny_bert_dir, limit=2), progress=False)
    calls = {"stored_keys": 0, "loaded": 0}
    stored_keys, load = Store.stored_keys, Source.load

    def counted_keys(self, *args, **kw):
        calls["stored_keys"] += 1
        return stored_keys(self, *args, **kw)

    def counted_load(self, *args, **kw):
        for item in load(self, *args, **kw):
            calls["loaded"] += 1
            yield item

    monkeypatch.setattr(Store, "stored_keys", counted_keys)
    monkeypatch.setattr(Source, "load", counted_load)
    summary = ingest(store, request(tiny_bert_dir, limit=3), progress=False)
    assert (summary.jobs, summary.items, summary.skipped_items) == (3, 3, 6)
    assert calls == {"stored_keys": 3, "loaded": 3}  # was 6 and 6: once in the check, once per job


def test_work_kept_from_the_memory_check_encodes_to_the_same_rows(tmp_path, tiny_bert_dir, monkeypatch):
    import actstore.ingest.pipeline as pipeline

    def vectors(db, keep: int) -> dict:
        monkeypatch.setattr(pipeline, "KEEP_LOADED_BYTES", keep)
        store = Store.open(db)
        ingest(store, request(tiny_bert_dir), progress=False)
        rows = store.scan_activations(with_vectors=True).collect()
        return {(r["point"], r["sample_id"]): np.asarray(r["vector"]) for r in rows.iter_rows(named=True)}

    kept, reread = vectors(tmp_path / "kept", 1 << 30), vectors(tmp_path / "reread", 0)
    assert kept.keys() == reread.keys() and len(kept) > 0
    assert all(np.array_equal(kept[k], reread[k]) for k in kept)


@pytest.mark.parametrize("option, value, field, bad", [
    ("--limit", "0", "limit", 0),
    ("--batch-size", "0", "batch_size", 0),
    ("--max-seconds", "0", "max_seconds", 0.0),
    ("--ray-actors", "0", "ray_actors", 0),
    ("--engine", "spark", "engine", "spark"),
    ("--vector-dtype", "int8", "vector_dtype", "int8"),
])
def test_click_refuses_what_the_library_check_refuses(tmp_path, option, value, field, bad):
    """The CLI declares each rule as a click type; `check_request` is the one library check (for
    Python callers) and refuses the same value."""
    db = tmp_path / "fresh.lance"
    result = CliRunner().invoke(main, ["ingest", "--db", str(db), "--model", "m", "--quiet", option, value])
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, result.output
    assert not db.exists()
    with pytest.raises(ActstoreError, match=option):
        check_request(IngestRequest(model="m", **{field: bad}))


def test_cli_choices_are_the_librarys():
    params = {p.name: p for p in main.commands["ingest"].params}
    assert tuple(params["engine"].type.choices) == ENGINES
    assert set(params["vector_dtype"].type.choices) == set(VECTOR_DTYPES)


@pytest.mark.parametrize("names, shown", [(["text.L44"], "point 'text.L44'"),
                                          (["speech.L1", "text.L1"], "point 'speech.L1'")])
def test_unknown_points_are_named_as_written(tmp_path, tiny_bert_dir, names, shown):
    with pytest.raises(ActstoreError, match=f"Unknown {shown} in --points; this model has text.embed, text.L1"):
        ingest(Store.open(tmp_path / "db"), request(tiny_bert_dir, points=names), progress=False)
