"""The pieces every report section is built from: sections, figures, the build context, notes.

A section never fails for lack of data: a missing or empty frame becomes a sentence naming the
command that fills it (`missing`). Figures name the datasets they draw; `Context.datasets`
collects each dataset once for the whole page.
"""

from __future__ import annotations

import html
import shlex
from dataclasses import dataclass, field

import altair as alt
import polars as pl

from actstore.reports.inputs import ReportInputs
from actstore.reports.summaries import rounded

#: The command that produces each analysis frame (shown when a section has nothing to draw).
FILL_COMMANDS = {
    "cross-modal": "actstore analyze similarity --model {model} --kind cross-modal --measure {measure}",
    "cross-lingual": "actstore analyze similarity --model {model} --kind cross-lingual --measure {measure}",
    "retrieval": "actstore analyze retrieval --model {model}",
    "tsne": "actstore analyze tsne --model {model}",
    "neurons": "actstore analyze neurons --model {model}",
    "runs": "actstore ingest --model {model}",
}

#: Opens the provenance and every neuron-study section of a random-init model.
RANDOM_INIT_BANNER = '<div class="banner">RANDOM-INIT model: numbers are a pipeline check, not findings.</div>'


@dataclass(frozen=True)
class Limits:
    """Size limits that keep the HTML small (a few MB at most); beyond them the report subsamples
    and says so in a note."""

    tsne_points_per_depth: int = 5000
    grid_rows: int = 40_000
    neuron_ranks: int = 10


@dataclass
class Figure:
    """One chart: its div id, a one-line caption and the named datasets its spec reads."""

    id: str
    title: str
    caption: str
    chart: alt.TopLevelMixin
    datasets: tuple[str, ...]


@dataclass
class Section:
    """A titled part of the page: a list of HTML fragments (already escaped) and figures."""

    id: str
    title: str
    parts: list[str | Figure] = field(default_factory=list)


@dataclass
class Context:
    """Shared state while building: the model, the language colour order, limits, datasets."""

    inputs: ReportInputs
    limits: Limits
    langs: list[str]
    datasets: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.inputs.model

    def add(self, name: str, frame: pl.DataFrame) -> str:
        self.datasets[name] = rounded(frame)
        return name


def paragraph(text: str, cls: str | None = None) -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{text}</p>"


def missing(ctx: Context, what: str, command: str) -> str:
    """The sentence a section shows instead of charts: what is missing and the command to run."""
    cmd = FILL_COMMANDS[command].format(model=shlex.quote(ctx.model), measure=shlex.quote(ctx.inputs.measure))
    return paragraph(f"No {html.escape(what)} for model {html.escape(ctx.model)}: run "
              f"<code>{html.escape(cmd)}</code>.", "missing")


def note_html(text: str) -> str:
    return paragraph(html.escape(text), "note")


def single_language(ctx: Context) -> str | None:
    """The one stored language when the model has only one (comparisons across languages are then
    empty by definition, not missing), else None."""
    languages = ctx.inputs.provenance.get("languages")
    if languages is None or languages.height != 1:
        return None
    return str(languages["lang"][0])


def by_language(ctx: Context, frame: pl.DataFrame, column: str = "lang") -> pl.DataFrame:
    """Rows in the page's language order (resource level, then code)."""
    order = {lang: i for i, lang in enumerate(ctx.langs)}
    return frame.sort(pl.col(column).replace_strict(order, default=len(order), return_dtype=pl.Int64))


def modalities(frame: pl.DataFrame) -> list[str]:
    present = set(frame["modality"].unique().to_list())
    return [m for m in ("speech", "text", "all") if m in present] + sorted(present - {"speech", "text", "all"})
