"""Where the golden fixture sets live: one rule for every fixture test.

ACTSTORE_FIXTURES when set; else the nearest `shared/fixtures` above the repository (CI clones
the repo beside `shared/`; a git worktree sits one level deeper than the main checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fixtures_root() -> Path:
    """The fixture directory to read (it may not exist: callers skip or fail)."""
    if os.environ.get("ACTSTORE_FIXTURES"):
        return Path(os.environ["ACTSTORE_FIXTURES"])
    for base in REPO.parents:
        if (base / "shared" / "fixtures").is_dir():
            return base / "shared" / "fixtures"
    return REPO.parent / "shared" / "fixtures"
