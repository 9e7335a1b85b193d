"""The project's size rule (README "Contributing" / STYLE): no library module over 400 lines and no
function over 80 lines in actstore/, ingest/, analyses/ and reports/. `actstore/cli.py` may stay one
file of thin commands (its module length is exempt, its functions are not).

Read with `ast`, so a failure lists every offender with its line count. ALLOWED may hold a named
offender with its reason while it is being fixed; an entry that no longer offends fails the test,
so the list cannot outlive its reason. It is empty: none is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("actstore", "ingest", "analyses", "reports")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MODULE_EXEMPT = {"actstore/cli.py": "one file of thin click commands (issue 13, 'Must show')"}

# offender ("path" for a module, "path::function" for a function) -> why it is allowed, who fixes it
ALLOWED: dict[str, str] = {}  # every offender of the day it was written is fixed (issue 13)


def offenders() -> dict[str, int]:
    """Every module over MAX_MODULE_LINES and function over MAX_FUNCTION_LINES -> its line count."""
    found: dict[str, int] = {}
    for folder in LIBRARY:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            source = path.read_text(encoding="utf-8")
            n_lines = len(source.splitlines())
            if n_lines > MAX_MODULE_LINES and rel not in MODULE_EXEMPT:
                found[rel] = n_lines
            for node in ast.walk(ast.parse(source, filename=rel)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1  # from `def` (decorators excluded)
                    if length > MAX_FUNCTION_LINES:
                        found[f"{rel}::{node.name}"] = length
    return found


def test_no_new_module_or_function_over_the_size_limits():
    found = offenders()
    new = {k: n for k, n in found.items() if k not in ALLOWED}
    assert not new, (f"over {MAX_MODULE_LINES} lines (module) or {MAX_FUNCTION_LINES} lines (function); split them:\n"
                     + "\n".join(f"  {k}: {n} lines" for k, n in sorted(new.items())))


def test_the_allow_list_names_only_current_offenders():
    stale = sorted(set(ALLOWED) - set(offenders()))
    assert not stale, f"no longer over the limits, remove from ALLOWED: {stale}"


def test_the_scan_sees_what_it_must(tmp_path, monkeypatch):
    """The scan counts a long function and a long module (so an empty result means something)."""
    pkg = tmp_path / "actstore"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (pkg / "big.py").write_text(f"def long_one():\n{body}\n" + "\n" * MAX_MODULE_LINES)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)  # offenders() reads the module global
    found = offenders()
    assert found == {"actstore/big.py": MAX_FUNCTION_LINES + 1 + MAX_MODULE_LINES,
                     "actstore/big.py::long_one": MAX_FUNCTION_LINES + 1}
