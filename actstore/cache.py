"""Where actstore keeps caches (synthesised speech, CPU probe results): never in the repository.

`$ACTSTORE_CACHE_DIR`, else `$XDG_CACHE_HOME/actstore`, else `~/.cache/actstore`. One variable
moves every cache, e.g. to a scratch disk, or to a temporary directory in the test suite.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache root joined with `parts` (not created: writers create what they write)."""
    explicit = os.environ.get("ACTSTORE_CACHE_DIR")
    if explicit:
        root = Path(explicit).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "actstore"
    return root.joinpath(*parts)
