"""The measure protocol and registry, the analyses' input checks, and one device rule everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _store_data import put
from actstore.analyses.devices import resolve_device
from actstore.analyses.retrieval import retrieval_scores
from actstore.analyses.similarity import Measure, MeasureOptions, Score, get_measure, measure_names, svcca
from actstore.analyses.similarity.batched import PairRequest, bootstrap_ci, random_baseline, score_pairs
from actstore.analyses.similarity.registry import measure_class, registered_measures
from actstore.analyses.validation import check_count, check_keep, check_matrix
from actstore.cli import main
from actstore.errors import ActstoreError, AnalysisInputError
from actstore.store import Store

BUILTINS = ("svcca", "pwcca", "cka", "cka_debiased", "knn")


class MeanCosine(Measure):
    """A measure written in a test: cosine of the two sides' column means after a shared map.

    Not a good measure, which is the point: the engine must run whatever follows the protocol.
    Widths must match (dx == dy).
    """

    description = "cosine of per-row centred means (test only)"
    calls = {"prepare": 0, "restrict": 0}

    def prepare(self, x):
        MeanCosine.calls["prepare"] += 1
        return x - x.mean(axis=1, keepdims=True)

    def restrict(self, prepared, rows):
        MeanCosine.calls["restrict"] += 1
        return prepared[rows]

    def score(self, sx, sy, perm=None):
        if perm is not None:
            sy = sy[perm]
        a, b = sx.ravel(), sy.ravel()
        return Score(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), kx=sx.shape[1], ky=sy.shape[1])


def test_builtins_are_registered_by_entry_points():
    assert set(BUILTINS) <= set(measure_names())
    classes = registered_measures()
    for name in BUILTINS:
        cls = classes[name]
        assert issubclass(cls, Measure) and cls.name == name and cls.description
    assert classes["svcca"].uses_keep and classes["pwcca"].uses_keep and not classes["cka"].uses_keep
    assert classes["knn"].uses_k and classes["svcca"].supports_torch
    measure = get_measure("knn", k=4)
    assert measure.options == MeasureOptions(keep=0.9, k=4) and measure.min_rows() == 5
    assert get_measure("cka_debiased").min_rows() == 4


def test_unknown_measure_names_the_choices():
    with pytest.raises(AnalysisInputError, match="^[^\n]*$") as err:
        measure_class("rsa")
    assert "unknown" in str(err.value) and "svcca" in str(err.value)


def test_engine_baseline_and_bootstrap_run_any_measure_instance():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((60, 5))
    sets = {k: z @ rng.standard_normal((5, 20)) + 0.1 * rng.standard_normal((60, 20)) for k in "abc"}
    rows = np.arange(50)
    requests = [PairRequest("a", rows, "b", rows), PairRequest("a", rows, "c", rows),
                PairRequest("b", rows, "c", rows)]
    MeanCosine.calls.update(prepare=0, restrict=0)
    out = score_pairs(sets, requests, measure=MeanCosine(), seed=2, n_jobs=1)
    assert MeanCosine.calls == {"prepare": 3, "restrict": 3}  # once per set and per subset
    for i, req in enumerate(requests):
        x, y = sets[req.x_key][rows], sets[req.y_key][rows]
        x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
        assert out["score"][i] == pytest.approx(x.ravel() @ y.ravel() / np.linalg.norm(x) / np.linalg.norm(y))
        perm = np.random.default_rng([2, i]).permutation(rows.size)
        assert out["null"][i] == pytest.approx(x.ravel() @ y[perm].ravel() / np.linalg.norm(x) / np.linalg.norm(y))
    assert out["kx"].tolist() == [20, 20, 20]
    base = random_baseline(40, 20, 20, measure=MeanCosine())
    assert abs(base) < 0.2 and base == random_baseline(40, 20, 20, measure=MeanCosine)  # class: same
    low, high = bootstrap_ci(sets, requests[0], measure=MeanCosine(), n_boot=20)
    assert low <= out["score"][0] <= high


def test_torch_backend_falls_back_to_numpy_for_measures_without_torch():
    rng = np.random.default_rng(1)
    sets = {"a": rng.standard_normal((30, 8)), "b": rng.standard_normal((30, 6))}
    req = [PairRequest("a", np.arange(30), "b", np.arange(30))]
    a = score_pairs(sets, req, measure="cka", backend="numpy")
    b = score_pairs(sets, req, measure="cka", backend="torch", device="cpu")
    assert a["score"][0] == b["score"][0]


def test_input_errors_are_value_errors_with_one_sentence():
    assert issubclass(AnalysisInputError, ValueError) and issubclass(AnalysisInputError, ActstoreError)
    with pytest.raises(ValueError, match="outside \\(0, 1\\]"):
        svcca(np.eye(5), np.eye(5), keep=0.0)
    for bad, fragment in ((np.ones((4, 2, 1)), "must be 2-D"), (np.array([["a", "b"]]), "dtype"),
                          (np.ones((4, 0)), "no feature columns"), (np.full((3, 2), np.inf), "NaN or infinite")):
        with pytest.raises(AnalysisInputError, match=fragment):
            check_matrix(bad, "x")
    with pytest.raises(AnalysisInputError, match="at least 5"):
        check_matrix(np.ones((3, 2)), "x", min_rows=5)
    assert check_matrix(np.ones((3, 2), np.float32), "x").dtype == np.float64
    same = np.ones((3, 2))
    assert check_matrix(same, "x") is same  # no copy on the hot path
    assert check_keep(np.float32(0.5)) == 0.5
    with pytest.raises(AnalysisInputError, match="not a number"):
        check_keep("0.9")
    with pytest.raises(AnalysisInputError, match="n_boot=True must be an integer >= 2"):
        check_count(True, "n_boot", min_val=2)


def test_one_device_rule():
    assert resolve_device(None) == resolve_device("cpu") == "cpu"
    assert resolve_device("cpu", backend="torch") == "cpu"
    with pytest.raises(AnalysisInputError, match="needs backend='torch'"):
        resolve_device("cuda")
    with pytest.raises(AnalysisInputError, match="t-SNE runs on the CPU only; pass --device cpu"):
        resolve_device("cuda", what="t-SNE", torch_backend=False)
    with pytest.raises(AnalysisInputError, match="not a torch device"):
        resolve_device("gpu-please", backend="torch")
    if not torch.cuda.is_available():
        with pytest.raises(AnalysisInputError, match="no CUDA GPU is visible; pass --device cpu"):
            resolve_device("cuda:0", backend="torch")
    # --device cpu means the same for the numpy backend of every analysis
    rng = np.random.default_rng(2)
    a = rng.standard_normal((12, 4))
    assert retrieval_scores(a, a + 0.01, device="cpu").to_rows()[0]["p_at_1"] == 1.0
    sets = {"a": a, "b": a + 0.01}
    req = [PairRequest("a", np.arange(12), "b", np.arange(12))]
    assert score_pairs(sets, req, device="cpu")["score"][0] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    db = tmp_path_factory.mktemp("dev") / "db"
    store = Store.open(db)
    rng = np.random.default_rng(3)
    for lang in ("eng", "fra"):
        for modality in ("speech", "text"):
            put(store, "m", f"{modality}.L1", modality, lang, np.arange(1, 21),
                rng.standard_normal((20, 8)).astype(np.float32))
    return db


@pytest.mark.parametrize("command", [
    ["svcca", "--kind", "cross-modal"], ["retrieval"], ["neurons", "--k", "3"],
    ["tsne", "--per-language", "10", "--max-iter", "250", "--perplexity", "5"],
])
def test_cli_device_cpu_everywhere_and_cuda_refused_alike(small_store, command):
    runner = CliRunner()
    base = ["analyze", *command[:1], "--db", str(small_store), "--model", "m", "--quiet", *command[1:]]
    ok = runner.invoke(main, base + ["--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(main, base + ["--device", "cuda"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "--device cpu" in bad.output and len(bad.output.strip().splitlines()) == 1
