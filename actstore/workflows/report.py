"""The report of one or several stored models as one library call (`write_report`).

Drawing a report needs all three layers beside core: analyses fill in the missing results
(`complete.ensure_results`) and gather the multi-model frames (`report_data`), reports render them
(`reports.from_store`). `actstore report`, Python users and the study runner (`actstore study`)
make the same call here, so a page written from Python is the page the CLI writes.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from actstore.errors import ReportError, StoreError
from actstore.published import (DEFAULT_STUDY, Published, PublishedTable, SystemMatch, beside_ours, load_published,
                                match_systems)

if TYPE_CHECKING:
    from actstore.store import Store


@dataclass(frozen=True)
class ReportResult:
    """What `write_report` wrote: the page, its models in page order and what it computed.

    `random_init` maps each model to whether its weights are random-init (its numbers check the
    pipeline; callers print that beside the path); `computed` maps each model to the result names
    computed and saved for it (empty when the store already held everything); `published` holds the
    published numbers beside ours that the page shows (`actstore.published.beside_ours`), or None.
    """

    path: Path
    models: list[str]
    random_init: dict[str, bool]
    computed: dict[str, list[str]] = field(default_factory=dict)
    published: pl.DataFrame | None = None


def write_report(store: Store, models: Sequence[str], out: str | Path, *, measure: str = "svcca",
                 compute: bool = True, bootstrap: int = 0,
                 progress: Callable[[str], None] | None = None, systems: Mapping[str, str] | None = None,
                 published: str | None = DEFAULT_STUDY) -> ReportResult:
    """Write one self-contained HTML report of `models` (one model or several side by side).

    With `compute`, results the report shows but the store lacks are computed and saved first
    (a read-only store draws what it holds and says so through `progress`; missing sections name
    the command that fills them). With several models, real (trained) models come first and open
    the page with their findings; the random-init ones follow as the study's pipeline check
    (`analyses.report_data.multi_model_frames`). `bootstrap` > 0 recomputes the cross-modal grid
    with intervals of that many half-sample rounds. `progress` receives one sentence per step
    worth telling a user (default: silent). Unknown models, a bad `systems` mapping and an
    unwritable `out` raise before any computing.

    Where a model is one of the `published` study's systems (its name or model id tells, or `systems` maps stored model name -> system, e.g. {"my-seamless":
    "seamless-m4t-v2"}), the page shows the study's published numbers beside ours, with the
    difference only for trained weights of the study's checkpoint (`actstore.published`).
    `published=None` leaves that section out.
    """
    from actstore.analyses.complete import ensure_results
    from actstore.analyses.report_data import report_frames
    from actstore.reports import check_out_path
    from actstore.reports.from_store import build_report

    say = progress or (lambda _message: None)
    models = list(dict.fromkeys(models))  # a model named twice is drawn once
    if not models:
        raise ReportError("A report needs at least one stored model name: pass models=[\"<name>\"].")
    for model in models:
        store.require_model(model)
    source = load_published(published) if published else None
    matches = match_systems(store, models, source, systems) if source is not None else {}
    check_out_path(out)  # before minutes of computing
    computed: dict[str, list[str]] = {}
    if compute and _writable(store, say):
        for model in models:
            computed[model] = ensure_results(store, model, measure=measure, bootstrap=bootstrap)
            for name in computed[model]:
                say(f"computed missing {name} results"
                    f"{f' for {model}' if len(models) > 1 else ''} (saved to the store).")
    frames = {model: report_frames(store, model, measure=measure) for model in models}
    table = _beside_ours(store, source, matches, frames, measure) if matches and source is not None else None
    if len(models) == 1:
        path = build_report(store, models[0], out, measure=measure, frames=frames[models[0]], published=table)
    else:
        from actstore.analyses.report_data import multi_model_frames
        from actstore.reports.from_store import build_comparison_report

        models, comparison, findings = multi_model_frames(store, models, frames, measure=measure)
        path = build_comparison_report(store, models, out, comparison=comparison, measure=measure,
                                       frames=frames, findings=findings, published=table)
    return ReportResult(path=Path(path), models=list(models),
                        random_init={m: store.is_random_init(m) for m in models}, computed=computed,
                        published=table.rows if table is not None else None)


def _beside_ours(store: Store, source: Published, matches: Mapping[str, SystemMatch], frames: dict,
                 measure: str) -> PublishedTable:
    """Our final-depth numbers of the matched models (the comparison's definition of "final", over
    every matched model: the page's comparison may cover only the random-init ones) beside the
    published ones."""
    from actstore.analyses.comparison import comparison_frames

    ours = comparison_frames(store, list(matches), measure=measure,
                             grids={m: frames[m]["similarity"] for m in matches})
    rows = beside_ours(source, matches, ours["final_cross_modal"], ours["final_cross_lingual"], measure)
    return PublishedTable(rows=rows, source=source, measure=measure)


def _writable(store: Store, say: Callable[[str], None]) -> bool:
    """Whether missing results can be saved; if not, say so once and draw what is stored."""
    from actstore.disk_faults import require_writable

    try:
        require_writable(store, "report cannot save missing results")
    except StoreError as exc:
        say(f"note: {exc} Drawing only the stored results.")
        return False
    return True
