"""Write the report: validate inputs, build the page, replace the output file atomically.

The page is written to a temporary file in the output's own directory and renamed over the target
(`os.replace` is atomic on one filesystem), so a reader never sees half a report and a failure at
any step leaves no file behind (and an older report at that path untouched).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from actstore.reports.counts import counts_html
from actstore.reports.inputs import ReportError, ReportInputs, validated
from actstore.reports.page import build_page
from actstore.reports.sections import Limits, Section, build_sections


def render_html(inputs: ReportInputs, limits: Limits | None = None,
                generated_at: datetime | None = None, extra: Sequence[Section] = ()) -> str:
    """The report as one HTML string (no file written); `extra` sections (without charts, e.g.
    `reports.published`) follow the model's own."""
    inputs = validated(inputs)
    sections, datasets = build_sections(inputs, limits or Limits())
    sections = [*sections, *extra]
    return build_page(inputs.model, sections, datasets, generated_at, header=counts_html(inputs))


def check_out_path(out_path: str | os.PathLike) -> Path:
    """The resolved report path, or a ReportError naming why it cannot be written.

    Cheap: callers check it before minutes of computing results (`actstore report`).
    """
    out = Path(out_path).expanduser().resolve()
    _writable_dir(out)
    return out


def _writable_dir(out_path: Path) -> Path:
    parent = out_path.parent
    if out_path.is_dir():
        raise ReportError(f"Report path {out_path} is a directory; give a file name such as {out_path / 'report.html'}.")
    if not parent.is_dir():
        raise ReportError(f"Report directory {parent} does not exist; create it or choose another --out path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReportError(f"Report directory {parent} is not writable; choose another --out path.")
    return parent


def render_report(sections: ReportInputs, out_path: str | os.PathLike, *, limits: Limits | None = None,
                  generated_at: datetime | None = None, extra: Sequence[Section] = ()) -> Path:
    """Render `sections` to one self-contained HTML file at `out_path`; returns the resolved path.

    Raises ReportError for inputs that lack columns or a path that cannot be written; on any
    error no file (not even a temporary one) is left behind.
    """
    out = check_out_path(out_path)
    return write_atomically(render_html(sections, limits, generated_at, extra), out)


def write_atomically(page: str, out: Path) -> Path:
    """Write `page` to `out` through a temporary file in its directory and an atomic rename."""
    parent = out.parent
    tmp_name = None
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=parent, prefix=f".{out.name}.",
                                         suffix=".tmp", delete=False) as tmp:
            tmp_name = tmp.name
            tmp.write(page)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, out)
        tmp_name = None
    except OSError as err:
        raise ReportError(f"Could not write the report to {out} ({err.strerror}); choose another --out path.") from err
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return out
