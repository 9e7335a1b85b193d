"""The built wheel installs ONE import package, `actstore`, that a user's own files cannot shadow.

Builds the wheel from a copy of the sources (nothing is written into the repository), installs it
into a scratch venv (third-party dependencies come from the running interpreter's site
directories through a .pth file, so nothing is downloaded but the build backend), and then, from a
directory holding a user's `ingest.py`, `reports.py` and `sql/` package, runs the `actstore`
console script and the Python API. Slow-ish (~30 s, mostly the wheel build) but in the default run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("actstore", "ingest", "analyses", "reports", "sql", "pyproject.toml", "README.md")
MARK = "USER-FILE-IMPORTED"


def _copy_sources(dest: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", "*.lance")
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=skip)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _private_env(home: Path) -> dict[str, str]:
    """The environment with HOME (and XDG dirs) inside the test's tmp dir: pip and the tools a build
    runs write their settings and caches there, not into the user's home."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
               PIP_NO_CACHE_DIR="1")
    return env


def _build_wheel(src: Path, out: Path) -> Path:
    """pip wheel with build isolation (fetches setuptools); without it when that fails (offline)."""
    errors = []
    for extra in ([], ["--no-build-isolation"]):
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q", "-w", str(out), *extra, str(src)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_private_env(out.parent / "home"))
        wheels = list(out.glob("actstore-*.whl"))
        if done.returncode == 0 and wheels:
            return wheels[0]
        errors.append(done.stdout[-2000:] + done.stderr[-2000:])
    pytest.fail("could not build the wheel:\n" + "\n---\n".join(errors))


def _site_dirs() -> list[str]:
    """The running interpreter's site directories, minus the repository (where deps live)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += [p for p in sys.path if p.endswith("site-packages")]
    out = []
    for d in dirs:
        if d and Path(d).is_dir() and d not in out and not Path(d).resolve().is_relative_to(REPO / "actstore"):
            out.append(d)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(scratch venv bin dir, wheel path): the wheel installed into a fresh venv."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(_copy_sources(root / "src"), root / "dist")
    env_dir = root / "scratch"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # Appended after the venv's own site-packages: the installed actstore wins over any other.
    Path(purelib, "zz_host_deps.pth").write_text("\n".join(_site_dirs()) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-cache-dir", "-q",
                           str(wheel)], capture_output=True, text=True, timeout=300,
                          env=_private_env(root / "home"))
    assert done.returncode == 0, done.stdout + done.stderr
    return env_dir / "bin", wheel


@pytest.fixture
def user_dir(tmp_path):
    """A working directory with the names the old layout collided with, each loudly marked."""
    (tmp_path / "ingest.py").write_text(f"import sys\nprint({MARK!r}, 'ingest.py', file=sys.stderr)\nWHO = 'user'\n")
    (tmp_path / "reports.py").write_text(f"import sys\nprint({MARK!r}, 'reports.py', file=sys.stderr)\n")
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "__init__.py").write_text(f"import sys\nprint({MARK!r}, 'sql', file=sys.stderr)\n")
    (tmp_path / "sql" / "hijack.sql").write_text("-- a user's query that must not be listed\nSELECT 1\n")
    return tmp_path


def _run(args, cwd, timeout=120):
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_private_env(Path(cwd) / ".home"),
                          capture_output=True, text=True, timeout=timeout)


def test_wheel_holds_only_the_actstore_package(installed):
    _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"actstore", "actstore-0.1.0.dist-info"}
    for sub in ("ingest", "analyses", "reports", "sql", "data"):
        assert f"actstore/{sub}/__init__.py" in names
    assert "actstore/sql/coverage.sql" in names and "actstore/data/languages.csv" in names


def test_cli_lists_shipped_queries_beside_user_files(installed, user_dir):
    bin_dir, _ = installed
    done = _run([bin_dir / "actstore", "query", "--list"], user_dir)
    assert done.returncode == 0, done.stderr
    listed = {line.split(":")[0] for line in done.stdout.splitlines()}
    assert {"coverage", "shared_ids", "cross_modal_ids", "runs", "points"} <= listed
    assert "hijack" not in listed
    assert MARK not in done.stdout + done.stderr
    helped = _run([bin_dir / "actstore", "ingest", "--help"], user_dir)
    assert helped.returncode == 0 and "--model" in helped.stdout and MARK not in helped.stderr


def test_python_api_works_beside_user_files(installed, user_dir):
    bin_dir, _ = installed
    code = (
        "import numpy as np, actstore\n"
        "from actstore.analyses.similarity import svcca\n"
        "from actstore.catalogue import Catalogue\n"
        "from actstore.query import named_queries\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((200, 12))\n"
        "q, _ = np.linalg.qr(rng.standard_normal((12, 12)))\n"
        "r = svcca(x, x @ q)  # a rotation keeps the same subspace: SVCCA is 1\n"
        "assert abs(r.score - 1.0) < 1e-6, r.score\n"
        "assert Catalogue.load().get('fra').name == 'French'\n"
        "assert 'coverage' in named_queries()\n"
        "print(actstore.__file__)\n"
    )
    done = _run([bin_dir / "python", "-c", code], user_dir)
    assert done.returncode == 0, done.stderr
    assert "scratch" in done.stdout and str(REPO) not in done.stdout  # the installed copy, not the repo
    assert MARK not in done.stderr


def test_import_ingest_is_the_users_file(installed, user_dir, tmp_path_factory):
    bin_dir, _ = installed
    here = _run([bin_dir / "python", "-c", "import ingest; print(ingest.WHO, ingest.__file__)"], user_dir)
    assert here.returncode == 0 and here.stdout.startswith("user ") and str(user_dir) in here.stdout
    empty = tmp_path_factory.mktemp("empty")
    for name in ("ingest", "analyses", "reports", "sql"):
        gone = _run([bin_dir / "python", "-c", f"import {name}"], empty)
        assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr, (name, gone.stderr)
