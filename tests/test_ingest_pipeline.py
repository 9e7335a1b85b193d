"""The ingest pipeline's pieces: named phases, faults at a phase, plan + filter before encoding."""

from __future__ import annotations

import pytest

from actstore.errors import ActstoreError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.pipeline import (PHASES, STUDY_LAYERS, IngestRequest, ingest, open_inputs, parse_layers,
                                      pending_work, prepare_plan, study_layers)
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
