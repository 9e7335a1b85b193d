"""Disk faults as one sentence: a full disk and a read-only store (where a store lives and how its
URI is checked is actstore/store_uri.py; this module only translates write failures).

Lance commits are atomic, so a write that fails for lack of space leaves the table at its
previous version: what must not happen is a traceback, or an analysis that computes for minutes
and only then finds it cannot save. So:

- `require_writable(store, why)` checks, BEFORE any work, that every directory of a local store
  is writable (os.access, which also sees `chattr +i` and read-only mounts); object-store URIs
  are not probed (their permissions show only on the first write, which `disk_errors` reports);
- `disk_errors` turns OSError ENOSPC/EDQUOT (full disk, quota) and EROFS/EACCES/EPERM (read-only)
  raised anywhere inside the wrapped call, including Lance's "(os error 28)" IO errors, into a
  `StoreError` naming the problem and the fix.
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from actstore.errors import StoreError

F = TypeVar("F", bound=Callable)

_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_OS_ERROR = re.compile(r"os error (\d+)")


def _errno_of(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    m = _OS_ERROR.search(str(exc))  # Lance (Rust) IO errors: "... (os error 28)"
    if m:
        return int(m.group(1))
    text = str(exc)
    if "No space left on device" in text:
        return errno.ENOSPC
    if "Read-only file system" in text:
        return errno.EROFS
    return None


def disk_error_message(exc: BaseException, uri: str | None = None) -> str | None:
    """The one-sentence message for a disk fault, or None if `exc` is not one."""
    code = _errno_of(exc)
    where = f" at {uri}" if uri else ""
    if code in _FULL:
        return (f"The disk holding the store{where} is full (no space left on device); the last "
                "commit was not written and earlier ones are intact, so free space (or pass --db on "
                "another disk) and rerun, which resumes where it stopped.")
    if code in _READ_ONLY:
        path = getattr(exc, "filename", None)
        return (f"The store{where} is not writable ({os.strerror(code).lower()}"
                f"{': ' + str(path) if path else ''}); make it writable or copy it and pass --db to the copy.")
    return None


def disk_errors(func: F) -> F:
    """Decorator: disk faults inside `func` become one-sentence `StoreError`s.

    The store URI is taken from a first argument that has `.uri` (a Store), if any.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            uri = getattr(args[0], "uri", None) if args else None
            message = disk_error_message(exc, uri)
            if message is None:
                raise
            raise StoreError(message) from exc

    return wrapper  # type: ignore[return-value]


def unwritable_directory(root: str | Path) -> Path | None:
    """The first directory under a local store (itself included) that cannot be written, or None."""
    root = Path(root)
    if not root.exists():
        parent = root.resolve().parent
        return None if os.access(parent, os.W_OK) else parent
    for current, dirs, _files in os.walk(root):
        if not os.access(current, os.W_OK | os.X_OK):
            return Path(current)
    return None


def require_writable(store, why: str) -> None:
    """Raise StoreError before any work when a local store cannot be written.

    `why` says what would be written, e.g. "analyze saves its results there".
    """
    uri = str(store.uri)
    if "://" in uri and not uri.startswith("file://"):
        return  # object storage: permissions show on the first write (see disk_errors)
    local = uri.removeprefix("file://")
    bad = unwritable_directory(local)
    if bad is not None:
        raise StoreError(f"The store at {uri} is read-only ({bad} is not writable) and {why}; make it "
                         f"writable, or copy it (cp -r) and pass --db to the copy.")
