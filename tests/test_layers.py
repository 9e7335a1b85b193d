"""The layers of docs/ARCHITECTURE.md, enforced: the import-linter contracts in pyproject.toml hold.

The repository keeps `ingest/`, `analyses/`, `reports/`, `sql/` beside `actstore/` and installs them
as `actstore.ingest`, ... through setuptools' package-dir mapping, which import-linter's graph
builder cannot follow. So the test lays the sources out as the installed package (a copy of the
.py files in a temporary directory) and runs `lint-imports` on that, with the repository's config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: installed package name -> repository folder (pyproject.toml [tool.setuptools.package-dir])
LAYOUT = {"actstore": "actstore", "actstore/ingest": "ingest", "actstore/analyses": "analyses",
          "actstore/reports": "reports", "actstore/sql": "sql"}


def installed_layout(dest: Path) -> Path:
    """Copy the package's Python files into `dest` as they are laid out once installed."""
    for target, folder in LAYOUT.items():
        shutil.copytree(REPO / folder, dest / target, dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if n == "__pycache__"
                                                 or (not n.endswith(".py") and not (Path(d) / n).is_dir())])
    return dest


def lint_imports(root: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return installed_layout(tmp_path_factory.mktemp("layout"))


def test_layer_contracts_hold(layout):
    result = lint_imports(layout, REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken" in result.stdout, result.stdout


def test_contracts_catch_a_report_that_computes(layout, tmp_path):
    """The contracts can fail: a reports module importing an analysis breaks them."""
    broken = installed_layout(tmp_path / "broken")
    (broken / "actstore/reports/sneaky.py").write_text("from actstore.analyses.grids import similarity_grid\n")
    (broken / "actstore/store_extra.py").write_text("import actstore.cli\n")
    result = lint_imports(broken, REPO / "pyproject.toml")
    assert result.returncode != 0
    assert "actstore.reports.sneaky -> actstore.analyses.grids" in result.stdout, result.stdout
    assert "2 broken" in result.stdout, result.stdout
