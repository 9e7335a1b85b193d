"""The study's report step: the multi-model report library call (`workflows.report.write_report`)
with the study's models, measure and system mapping (`[report] published`: which of the
published study's systems each model is, so the page shows the published numbers beside ours)."""

from __future__ import annotations

from typing import Any, Callable

from actstore.store import Store


def write_study_report(store: Store, args: dict[str, Any], say: Callable[[str], None]) -> str:
    """Write the report the study's [report] table asks for; returns what was written."""
    from pathlib import Path

    from actstore.workflows.report import write_report

    Path(args["path"]).parent.mkdir(parents=True, exist_ok=True)  # the study's out folder
    result = write_report(store, args["models"], args["path"], measure=args.get("measure", "svcca"),
                          bootstrap=args.get("bootstrap", 0), progress=say,
                          systems=args.get("published") or None)
    random = [m for m, r in result.random_init.items() if r]
    note = f" ({', '.join(random)}: RANDOM-INIT, a pipeline check, not findings)" if random else ""
    beside = "" if result.published is None or not result.published.height else \
        f"; published numbers beside ours for {result.published['system'].n_unique()} systems"
    return f"{result.path}{note}{beside}"
