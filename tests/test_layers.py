"""The layers of docs/ARCHITECTURE.md, enforced: the import-linter contracts in pyproject.toml hold.

The repository keeps `ingest/`, `analyses/`, `reports/`, `sql/` beside `actstore/` and installs them
as `actstore.ingest`, ... through setuptools' package-dir mapping, which import-linter's graph
builder cannot follow. So the test lays the sources out as the installed package (a copy of the
.py files in a temporary directory) and runs `lint-imports` on that, with the repository's config.

Import cycles are refused twice over: the `acyclic_siblings` contract (no cycle between the
modules or subpackages of any package) and `module_cycles` (grimp, the graph import-linter
builds), which also sees a cycle through a package's own `__init__`, which siblings do not.
"""

from __future__ import annotations

import json
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


#: Every import cycle as [importer, imported, ..., importer], found with grimp (function-level
#: imports count: they hide a cycle from Python, not from a reader; `if TYPE_CHECKING:` imports
#: do not: they only name types for annotations and never run).
_CYCLES = """
import json, grimp
graph = grimp.build_graph("actstore", cache_dir=None, exclude_type_checking_imports=True)
found = []
for importer in sorted(graph.modules):
    for imported in sorted(graph.find_modules_directly_imported_by(importer)):
        back = graph.find_shortest_chain(importer=imported, imported=importer)
        if back:
            found.append([importer, *back])
print(json.dumps(found))
"""

#: Packages whose internal cycles are tolerated: none (actstore.store's went with issue 13, section 5).
KNOWN_CYCLE_PACKAGES: tuple[str, ...] = ()


def module_cycles(root: Path) -> list[list[str]]:
    """Every module-level import cycle in the package laid out at `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", _CYCLES], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout)


def _known(cycle: list[str]) -> bool:
    return any(all(m == pkg or m.startswith(pkg + ".") for m in cycle) for pkg in KNOWN_CYCLE_PACKAGES)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return installed_layout(tmp_path_factory.mktemp("layout"))


def test_layer_contracts_hold(layout):
    result = lint_imports(layout, REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken" in result.stdout, result.stdout


def test_contracts_catch_a_report_that_computes(layout, tmp_path):
    """The contracts can fail: a reports module importing an analysis breaks them."""
    broken = installed_layout(tmp_path / "broken")
    (broken / "actstore/reports/sneaky.py").write_text("from actstore.analyses.grids import similarity_grid\n")
    (broken / "actstore/store_extra.py").write_text("import actstore.cli\n")
    result = lint_imports(broken, REPO / "pyproject.toml")
    assert result.returncode != 0
    assert "actstore.reports.sneaky -> actstore.analyses.grids" in result.stdout, result.stdout
    assert "2 broken" in result.stdout, result.stdout


def test_no_import_cycle_outside_the_known_one(layout):
    cycles = [c for c in module_cycles(layout) if not _known(c)]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_cycle_checks_catch_a_cycle(tmp_path):
    """Both checks can fail: two sibling modules importing each other break the contract and
    show in the scan; a cycle through a package's `__init__` shows in the scan."""
    broken = installed_layout(tmp_path / "cyclic")
    (broken / "actstore/ingest/loop_a.py").write_text("import actstore.ingest.loop_b\n")
    (broken / "actstore/ingest/loop_b.py").write_text("def f():\n    from actstore.ingest import loop_a\n")
    init = broken / "actstore/ingest/steps/__init__.py"
    init.write_text(init.read_text() + "from actstore.ingest.steps import jobs\n")
    (broken / "actstore/ingest/steps/jobs.py").write_text("import actstore.ingest.steps\n")
    result = lint_imports(broken, REPO / "pyproject.toml")
    assert result.returncode != 0
    assert "No cycles are allowed in actstore.ingest" in result.stdout, result.stdout
    assert ".loop_a -> .loop_b" in result.stdout or ".loop_b -> .loop_a" in result.stdout, result.stdout
    found = {frozenset(c) for c in module_cycles(broken) if not _known(c)}
    assert frozenset({"actstore.ingest.loop_a", "actstore.ingest.loop_b"}) in found
    assert frozenset({"actstore.ingest.steps", "actstore.ingest.steps.jobs"}) in found
