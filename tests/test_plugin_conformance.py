"""A third-party package plugs an adapter and a measure into actstore through entry points only.

`tests/plugin_pkg` is such a package (its own pyproject.toml). It is installed into a temporary
directory — a `.dist-info` with its declared entry points plus its code, exactly what an
installer leaves — never into the shared environment, and the CLI runs in a subprocess with
that directory on PYTHONPATH, as a user's environment would have it. Then, through the CLI only:
`actstore ingest --adapter toy-chars` on the shipped FLORES text, `actstore analyze svcca
--measure rsa_pearson`, and a paired adapter's speech+text ingest with resume.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from actstore.analyses.similarity import measure_names
from actstore.analyses.similarity.batched import PairRequest, score_pairs
from actstore.query import run_query
from actstore.store import Store

PLUGIN_SRC = Path(__file__).parent / "plugin_pkg"


def install_into(src: Path, target: Path) -> Path:
    """Install a pure-Python pyproject package into `target` (no build backend, no network).

    Copies the packages listed in [tool.setuptools] and writes the `.dist-info` (METADATA,
    entry_points.txt, RECORD) that importlib.metadata reads; returns the dist-info path.
    """
    meta = tomllib.loads((src / "pyproject.toml").read_text())
    project = meta["project"]
    name, version = project["name"], project["version"]
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for package in meta["tool"]["setuptools"]["packages"]:
        rel = Path(*package.split("."))
        shutil.copytree(src / rel, target / rel, ignore=shutil.ignore_patterns("__pycache__"))
        files += [p.relative_to(target) for p in (target / rel).rglob("*.py")]
    dist = target / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = project.get("entry-points", {})
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()))
    (dist / "INSTALLER").write_text("actstore-tests\n")
    files += [dist.relative_to(target) / n for n in ("METADATA", "entry_points.txt", "INSTALLER", "RECORD")]
    (dist / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    return dist


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_into(PLUGIN_SRC, site)
    return site


def actstore_cli(site: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-m", "actstore.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_plugin_is_not_installed_in_this_environment():
    """The shared environment never sees the plug-in: it lives only in the temporary site."""
    assert "rsa_pearson" not in measure_names()
    assert "cka" in measure_names()


def test_plugin_adapter_and_measure_through_the_cli(plugin_site, tmp_path):
    db = tmp_path / "store.lance"
    listing = json.loads(ok(actstore_cli(plugin_site, tmp_path, "measures", "--format", "json")))
    mine = {row["measure"]: row for row in listing}
    assert mine["rsa_pearson"]["provider"] == "actstore_toy_plugin"
    assert {"svcca", "pwcca", "cka", "cka_debiased", "knn"} <= set(mine)

    # --layers study takes the adapter's own study layers (1 and 3), not SeamlessM4T's
    out = ok(actstore_cli(plugin_site, tmp_path, "ingest", "--db", db, "--adapter", "toy-chars",
                          "--model", "toy-chars", "--modalities", "text", "--langs", "eng,fra,deu",
                          "--limit", 12, "--layers", "study", "--quiet"))
    assert "36 items in 3 jobs, 72 rows written" in out
    store = Store.open(db, create=False)
    assert sorted(store.points("toy-chars")["point"].to_list()) == ["text.L1", "text.L3"]
    assert store.runs()["adapter"].to_list() == ["toy-chars"]

    ok(actstore_cli(plugin_site, tmp_path, "analyze", "svcca", "--db", db, "--model", "toy-chars",
                    "--kind", "cross-lingual", "--measure", "rsa_pearson", "--quiet"))
    rows = run_query(Store.open(db, create=False),
                     'SELECT measure, kind, depth, n, score, "null" AS null_score, kx FROM similarity').to_dicts()
    assert {r["measure"] for r in rows} == {"rsa_pearson"}
    assert {r["depth"] for r in rows} == {"L1", "L3"}
    assert len(rows) == 2 * 3  # 2 depths x 3 text-text language pairs
    for r in rows:
        assert r["n"] == 12 and r["kx"] == -1
        # a correlation, and the null really is another number (trigram hashes share little
        # across languages, so no claim that the toy's scores beat the null)
        assert -1.0 <= r["score"] <= 1.0 and -1.0 <= r["null_score"] <= 1.0
        assert r["null_score"] != r["score"]

    # an unknown measure is refused by the CLI's choice list, which reads the registry
    bad = actstore_cli(plugin_site, tmp_path, "analyze", "svcca", "--db", db, "--model", "toy-chars",
                       "--kind", "cross-lingual", "--measure", "nope")
    assert bad.returncode != 0 and "rsa_pearson" in bad.stderr


def test_paired_adapter_encodes_speech_and_text_together(plugin_site, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (speech of the FLORES source)")
    db = tmp_path / "store.lance"
    args = ["ingest", "--db", db, "--adapter", "toy-paired", "--model", "toy-paired",
            "--langs", "eng,fra", "--limit", 3, "--quiet", "--cache-dir", tmp_path / "speech"]
    out = ok(actstore_cli(plugin_site, tmp_path, *args))
    assert "12 items in 2 jobs, 24 rows written" in out  # one job per language: speech + text
    store = Store.open(db, create=False)
    speech = store.read("toy-paired", points="speech.L1", langs=["eng"])
    text = store.read("toy-paired", points="text.L1", langs=["eng"])
    assert speech.vectors.shape == text.vectors.shape == (3, 48)
    assert sorted(speech.meta["sentence_id"].to_list()) == sorted(text.meta["sentence_id"].to_list())
    again = ok(actstore_cli(plugin_site, tmp_path, *args))
    assert "0 items" in again and "12 already stored" in again  # resume skips whole pairs
    # a paired adapter asked for one modality says what to do
    one = actstore_cli(plugin_site, tmp_path, *args[:-2], "--modalities", "text", "--overwrite")
    assert one.returncode != 0 and "--modalities speech,text" in one.stderr


def test_plugin_measure_follows_the_protocol_in_process(plugin_site, monkeypatch):
    """The plug-in's class runs in the batched engine as an instance: nulls, subsets, invariance."""
    monkeypatch.syspath_prepend(str(plugin_site))
    from actstore_toy_plugin.rsa import PearsonRSA

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 12))
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    sets = {"x": x, "rot": 3.0 * x @ q, "noise": rng.standard_normal((40, 9))}
    rows = np.arange(5, 35)
    out = score_pairs(sets, [PairRequest("x", rows, "rot", rows), PairRequest("x", rows, "noise", rows)],
                      measure=PearsonRSA(), seed=1)
    assert out["score"][0] == pytest.approx(1.0, abs=1e-12)  # rotation + scale: same geometry
    assert abs(out["score"][1]) < 0.3 and out["null"][0] < 0.5
    # the null is the score of y's rows shuffled by the engine's seeded permutation
    perm = np.random.default_rng([1, 0]).permutation(rows.size)
    direct = PearsonRSA()
    sx = direct.restrict(direct.prepare(x), rows)
    sy = direct.restrict(direct.prepare(sets["rot"]), rows[perm])
    assert out["null"][0] == pytest.approx(direct.score(sx, sy), abs=1e-12)
