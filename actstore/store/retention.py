"""Which old table versions a cleanup may delete without breaking a live reader.

A reader (an analysis, `actstore query`, a notebook) opens a table at its latest version and reads
that version's data files, possibly minutes later (a planned scan, a lazy frame). Another
process's finalize compacts the table into new files and then drops old versions; dropping the
version the reader holds deletes files it still needs (`Not found: .../data/....lance`, issue 14).

So a cleanup keeps every version that was the LATEST at some moment within the retention window
(`ACTSTORE_KEEP_VERSIONS`, default one hour): a reader that opened the table less than that long
ago holds one of the kept versions. A version's age is measured from when it was superseded
(the timestamp of the next version), not from when it was written: on a store left idle for a
day, the version a reader opened a minute ago was written a day ago, and Lance's own
`older_than` (which counts from the write) would delete it. The versions to drop are passed to
`LanceDataset.cleanup_old_versions(versions=[...])` explicitly (pylance >= 0.30 has the argument).

Readers that hold one version longer than the window should reopen the store (or raise the
window); writers are protected separately: finalize skips the cleanup while another ingest runs.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from typing import Sequence

from actstore.errors import StoreError

#: environment variable naming the retention window (e.g. "1h", "30m", "90s", "0")
KEEP_VERSIONS_ENV = "ACTSTORE_KEEP_VERSIONS"
#: how long a superseded version stays readable when nothing else is said
DEFAULT_KEEP = timedelta(hours=1)

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*$", re.IGNORECASE)


def parse_duration(text: str, what: str = KEEP_VERSIONS_ENV) -> timedelta:
    """'90s', '30m', '1h', '2d' or plain seconds ('0') -> timedelta; one sentence otherwise."""
    m = _DURATION.match(str(text))
    if m is None:
        raise StoreError(
            f"{what}={text!r} is not a duration; write a number with an optional unit s, m, h or d "
            "(e.g. 1h, 30m, 0)."
        )
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])


def keep_window(value: timedelta | str | float | None = None) -> timedelta:
    """The retention window: `value` if given, else $ACTSTORE_KEEP_VERSIONS, else one hour."""
    if value is None:
        value = os.environ.get(KEEP_VERSIONS_ENV) or DEFAULT_KEEP
    if isinstance(value, timedelta):
        keep = value
    elif isinstance(value, (int, float)):
        keep = timedelta(seconds=value)
    else:
        keep = parse_duration(value)
    if keep < timedelta(0):
        raise StoreError(f"The version retention window {keep} is negative; pass 0 or more.")
    return keep


def expired_versions(versions: Sequence[dict], keep: timedelta, now: float | None = None) -> list[int]:
    """The versions superseded more than `keep` ago (never the latest): safe to delete.

    `versions` are `LanceDataset.versions()` rows (`version`, naive local `timestamp`).
    """
    rows = sorted(versions, key=lambda v: v["version"])
    cutoff = (time.time() if now is None else now) - keep.total_seconds()
    return [old["version"] for old, new in zip(rows, rows[1:]) if new["timestamp"].timestamp() <= cutoff]
