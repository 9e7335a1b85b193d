"""`actstore ingest --engine ray` on a real local Ray cluster (2 CPUs): the same rows as the local
engine (also onto S3), a rerun writes nothing, and `kill -9` of the driver mid-ingest leaves
only whole jobs that a rerun completes."""

from __future__ import annotations

import numpy as np
import pytest

from _cli import cli as run_cli
from _cloud import MINILM, kill_group, ray_cluster, s3_env, s3_server, start_cli, wait_for  # noqa: F401
from actstore.errors import ActstoreError
from actstore.ingest.engines.ray_engine import actor_plan
from actstore.ingest.steps.inputs import check_request
from actstore.ingest.pipeline import IngestRequest
from actstore.store import Store

pytestmark = pytest.mark.ray

LANGS = "eng,fra,deu"
COLS = ["point", "lang", "modality", "sample_id", "sentence_id", "split", "n_frames", "layer",
        "resource_level", "script", "family"]


def cli(*args: str) -> str:
    """stdout of `actstore ARGS` (exit 0 asserted by the shared runner)."""
    return run_cli(*args).stdout


def _rows(db: str, model: str = MINILM, points=None):
    sl = Store.open(db, create=False).read(model, points=points, columns=COLS)
    idx = sl.meta.with_row_index("i").sort(COLS[:4])
    return idx.drop("i"), sl.vectors[idx["i"].to_numpy()]


def _versions(db: str) -> dict[str, int]:
    store = Store.open(db, create=False)
    return {t: store.table_version(t) for t in store.table_names() if t.startswith("act")}


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("ray_local") / "local.lance")
    cli("ingest", "--db", db, "--model", MINILM, "--langs", LANGS, "--limit", "10", "--batch-size", "4", "--quiet")
    return db


@pytest.mark.s3
def test_ray_ingest_onto_s3_equals_local_ingest_and_rerun_writes_nothing(ray_cluster, s3_env, local_store):
    db = f"s3://{s3_env}/ray"
    out = cli("ingest", "--engine", "ray", "--db", db, "--model", MINILM, "--langs", LANGS, "--limit", "10",
              "--batch-size", "4", "--quiet")
    assert "30 items in 3 jobs, 210 rows written" in out
    (ma, va), (mb, vb) = _rows(local_store), _rows(db)
    assert ma.height == 210 and ma.equals(mb)
    # same batches, same numbers up to the last bits: an actor runs torch on its CPU share's
    # threads, the local engine on all of them, and the sums' order may differ with the machine
    np.testing.assert_allclose(va, vb, rtol=0, atol=1e-5)
    runs = Store.open(db, create=False).runs(MINILM)
    assert runs["status"].to_list() == ["complete"] and '"engine": "ray"' in runs["params"].item()

    before = _versions(db)
    out = cli("ingest", "--engine", "ray", "--db", db, "--model", MINILM, "--langs", LANGS, "--limit", "10",
              "--quiet")
    assert "0 items in 0 jobs, 0 rows written, 30 already stored" in out
    assert _versions(db) == before
    assert Store.open(db, create=False).runs(MINILM)["n_rows"].to_list() == [210, 0]


def test_kill_9_of_the_driver_leaves_whole_jobs_and_a_rerun_completes_them(ray_cluster, tmp_path):
    """The driver (a subprocess joined to the cluster) is killed right after its first commit."""
    db = str(tmp_path / "killed.lance")
    langs = "eng,fra,deu,cat,ita,est,nld,fin,rus,tur"
    args = ["ingest", "--engine", "ray", "--ray-address", ray_cluster, "--db", db, "--model", MINILM,
            "--langs", langs, "--limit", "6", "--batch-size", "2", "--quiet"]

    def rows_stored() -> int:
        try:  # the driver may be creating the store's tables right now
            store = Store.open(db, create=False)
            return store.count_rows() if store.points().height else 0
        except (ActstoreError, ValueError, OSError, RuntimeError):
            return 0

    proc = start_cli(args)
    try:
        committed = wait_for(lambda: rows_stored() > 0, timeout=150, proc=proc)
    finally:
        kill_group(proc)
    assert committed, proc.stdout.read()
    store = Store.open(db, create=False)
    per_lang = store.read(MINILM, columns=["lang", "point"], vectors=False).meta.group_by("lang").len()
    counts = dict(zip(per_lang["lang"].to_list(), per_lang["len"].to_list()))
    assert set(counts.values()) == {6 * 7}, counts          # whole jobs only
    assert 0 < len(counts) < 10, counts                      # killed mid-ingest
    assert store.runs(MINILM)["status"].to_list() == ["running"]  # the killed run never finished
    print(f"after kill -9: {len(counts)} of 10 jobs stored, rows per job {sorted(set(counts.values()))}")

    out = cli(*args[:3], *args[5:])  # the same ingest on the test's own Ray driver
    assert f"{(10 - len(counts)) * 6} items in {10 - len(counts)} jobs" in out
    keys = Store.open(db, create=False).read(MINILM, columns=["lang", "point", "sample_id"], vectors=False).meta
    assert keys.height == 10 * 6 * 7
    assert keys.group_by("point", "sample_id").len()["len"].max() == 1
    assert keys.group_by("lang").len()["len"].unique().to_list() == [42]
    print(f"after rerun: {keys.height} rows, {keys.group_by('lang').len().height} jobs of 42, no duplicate key")


def test_ray_errors_are_one_sentence(ray_cluster, tmp_path):
    res = run_cli("ingest", "--engine", "ray", "--db", tmp_path / "x.lance", "--model", MINILM, "--langs", "eng",
                  "--limit", "2", "--device", "cuda", "--quiet", code=None, catch_exceptions=True)
    assert res.exit_code != 0
    assert "no CUDA" in res.output or "has none" in res.output


def test_actor_plan_leaves_cpu_for_ray_data_and_takes_one_gpu_per_actor():
    cpu = actor_plan(IngestRequest(model="m"), {"CPU": 2.0})
    assert (cpu.size, cpu.num_cpus, cpu.num_gpus) == (1, 1.0, 0.0)
    two = actor_plan(IngestRequest(model="m", ray_actors=2), {"CPU": 2.0})
    assert two.num_cpus * 2 <= 2.0 - 0.5
    gpu = actor_plan(IngestRequest(model="m", device="cuda"), {"CPU": 16.0, "GPU": 4.0})
    assert (gpu.size, gpu.num_gpus, gpu.device) == (4, 1.0, "cuda")
    with pytest.raises(ActstoreError, match="has none"):
        actor_plan(IngestRequest(model="m", device="cuda:0"), {"CPU": 2.0})
    with pytest.raises(ActstoreError, match="--ray-actors must be at least 1"):  # checked once, with the request
        check_request(IngestRequest(model="m", ray_actors=0))


def test_speech_read_on_actors_equals_local_and_a_bad_file_fails_with_the_same_sentence(ray_cluster, tmp_path):
    """Audio is read on the actors: good files give the local engine's rows and vectors; a corrupt
    file ends the run with the same one-sentence DataSourceError (not a Ray traceback)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i in range(5):
        sf.write(tmp_path / f"s{i}.wav", rng.standard_normal(4000 + 1500 * i).astype(np.float32) * 0.1, 16000)
    (tmp_path / "broken.wav").write_bytes(b"RIFFxxxxWAVEnothing")
    rows = "".join(f"{i},eng,speech,s{i}.wav\n" for i in range(5))
    (tmp_path / "good.csv").write_text("sentence_id,lang,modality,audio\n" + rows)
    (tmp_path / "bad.csv").write_text("sentence_id,lang,modality,audio\n" + rows + "9,eng,speech,broken.wav\n")
    model = tmp_path / "tiny-whisper"
    cli("make-tiny-model", "--kind", "whisper", "--out", str(model))
    stores, errors = {}, {}
    for engine in ("local", "ray"):
        stores[engine] = str(tmp_path / f"{engine}.lance")
        cli("ingest", "--engine", engine, "--db", stores[engine], "--model", str(model), "--source", "manifest",
            "--data-dir", str(tmp_path / "good.csv"), "--batch-size", "2", "--quiet")
        res = run_cli("ingest", "--engine", engine, "--db", tmp_path / f"bad-{engine}.lance", "--model", model,
                      "--source", "manifest", "--data-dir", tmp_path / "bad.csv", "--quiet", code=1,
                      catch_exceptions=True)
        errors[engine] = res.output.strip().splitlines()[-1]
    (ma, va), (mb, vb) = _rows(stores["local"], "tiny-whisper"), _rows(stores["ray"], "tiny-whisper")
    assert ma.height == 5 * Store.open(stores["ray"], create=False).points().height and ma.equals(mb)
    np.testing.assert_allclose(va, vb, rtol=0, atol=1e-5)
    assert errors["ray"] == errors["local"]
    assert errors["ray"].startswith("Error: Cannot decode audio") and "broken.wav" in errors["ray"]
    # every pending item is read before the first forward (the memory check), so undecodable
    # audio is bad input: refused before the run starts, on both engines, with no runs row
    for engine in ("local", "ray"):
        assert Store.open(str(tmp_path / f"bad-{engine}.lance"), create=False).runs().height == 0


def test_paired_adapter_on_ray_equals_local(ray_cluster, tmp_path):
    """A paired adapter (Qwen2-Audio: speech and text of a sentence in one forward) on Ray: a job
    holds both modalities, actors get whole pairs (two groups here), rows and vectors equal the
    local engine's; a rerun skips every stored pair."""
    import soundfile as sf

    rng = np.random.default_rng(1)
    rows = []
    for i in range(5):
        sf.write(tmp_path / f"s{i}.wav", rng.standard_normal(3000 + 1700 * i).astype(np.float32) * 0.1, 16000)
        rows += [f"{i},eng,speech,s{i}.wav,", f"{i},eng,text,,sentence number {i} {'x' * i}"]
    (tmp_path / "pairs.csv").write_text("sentence_id,lang,modality,audio,text\n" + "\n".join(rows) + "\n")
    model = tmp_path / "tiny-qwen2-audio"
    cli("make-tiny-model", "--kind", "qwen2-audio", "--out", str(model))
    stores = {}
    for engine in ("local", "ray"):
        stores[engine] = str(tmp_path / f"{engine}.lance")
        out = cli("ingest", "--engine", engine, "--db", stores[engine], "--model", str(model), "--source", "manifest",
                  "--data-dir", str(tmp_path / "pairs.csv"), "--batch-size", "1", "--quiet")
        assert "10 items in 1 jobs" in out, out
    (name,) = Store.open(stores["ray"], create=False).models()
    widths = Store.open(stores["ray"], create=False).points(name).group_by("width").agg("point")
    assert widths.height == 2  # the audio tower's and the LLM's
    for points in widths["point"].to_list():
        (ma, va), (mb, vb) = _rows(stores["local"], name, points), _rows(stores["ray"], name, points)
        assert ma.height > 0 and ma.equals(mb)
        np.testing.assert_allclose(va, vb, rtol=0, atol=1e-5)
    out = cli("ingest", "--engine", "ray", "--db", stores["ray"], "--model", str(model), "--source", "manifest",
              "--data-dir", str(tmp_path / "pairs.csv"), "--batch-size", "1", "--quiet")
    assert "0 items in 0 jobs, 0 rows written, 10 already stored" in out, out
