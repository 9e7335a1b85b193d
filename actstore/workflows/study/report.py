"""The study's report step: the multi-model report library call with the study's models, measure
and system mapping (which of the study's systems each model is, for the published numbers)."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from actstore.store import Store


def write_study_report(store: Store, args: dict[str, Any], say: Callable[[str], None]) -> str:
    """Write the report the study's [report] table asks for; returns what was written."""
    from actstore.workflows.report import write_report

    extra = {}
    mapping = args.get("published") or {}
    params = inspect.signature(write_report).parameters
    if mapping and "systems" in params:
        extra["systems"] = mapping
    result = write_report(store, args["models"], args["path"], measure=args.get("measure", "svcca"),
                          bootstrap=args.get("bootstrap", 0), progress=say, **extra)
    random = [m for m, r in result.random_init.items() if r]
    note = f" ({', '.join(random)}: RANDOM-INIT, a pipeline check, not findings)" if random else ""
    return f"{result.path}{note}"
