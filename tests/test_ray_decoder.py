"""Decoder points on `--engine ray` (a real local Ray cluster, 2 CPUs): a translation run of the
tiny random-init SeamlessM4T v2 (decoder sites, speech- and text-conditioned, target French)
stores the same rows as the local engine, and a rerun writes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _cli import cli
from _cloud import ray_cluster  # noqa: F401
from test_sites_ingest import manifest  # noqa: F401
from actstore.store import Store

pytestmark = pytest.mark.ray  # slow too (conftest)

ARGS = ("--layers", "1", "--sites", "ffn,cross_attn.k", "--points", "decoder.L1", "--target-lang", "fra",
        "--langs", "eng", "--batch-size", "2", "--quiet")
COLS = ["point", "lang", "modality", "sample_id", "sentence_id", "n_frames", "layer"]


def _ingest(db, model, manifest, *extra):
    return cli("ingest", "--db", db, "--model", str(model), "--source", "manifest", "--data-dir", str(manifest),
               *ARGS, *extra).output


def _rows(db):
    """{point: (metadata sorted by key, vectors in that order)}: one read per point (widths differ)."""
    store = Store.open(db, create=False)
    model = store.models()[0]
    out = {}
    for point in sorted(store.points(model)["point"].to_list()):
        sl = store.read(model, points=point, columns=COLS)
        idx = sl.meta.with_row_index("i").sort(COLS[:4])
        out[point] = (idx.drop("i"), sl.vectors[idx["i"].to_numpy()])
    return out


def test_ray_decoder_points_equal_the_local_engine(tmp_path, ray_cluster, tiny_seamless_dir, manifest):  # noqa: F811
    local, ray = str(tmp_path / "local"), str(tmp_path / "ray")
    _ingest(local, tiny_seamless_dir, manifest)
    out = _ingest(ray, tiny_seamless_dir, manifest, "--engine", "ray", "--ray-address", ray_cluster)
    assert "0 already stored" in out
    a, b = _rows(local), _rows(ray)
    assert set(a) == set(b) and {"decoder.L1", "decoder.L1.ffn", "decoder.L1.cross_attn.k"} <= set(b)
    for point, (mb, vb) in b.items():
        ma, va = a[point]
        assert ma.height > 0 and ma.equals(mb), point
        np.testing.assert_allclose(va, vb, rtol=0, atol=1e-5, err_msg=point)
    decoder = b["decoder.L1.ffn"][0]
    assert sorted(set(decoder["modality"].to_list())) == ["speech", "text"]  # both conditionings decoded
    store = Store.open(ray, create=False)
    params = store.runs(store.models()[0]).row(0, named=True)["params"]
    params = json.loads(params) if isinstance(params, str) else params
    assert params["engine"] == "ray" and params["target_lang"] == "fra"
    n = store.count_rows()
    again = _ingest(ray, tiny_seamless_dir, manifest, "--engine", "ray", "--ray-address", ray_cluster)
    assert "0 rows written" in again and store.count_rows() == n
