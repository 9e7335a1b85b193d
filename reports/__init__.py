"""HTML reports: Altair charts of the analyses in one self-contained, offline HTML file.

`render_report(ReportInputs(provenance=..., similarity=..., ...), "report.html")` draws six
sections (provenance, cross-modal, cross-lingual, retrieval, t-SNE, neurons) from Polars frames;
a missing frame shows the command that fills it. The neuron study's sections (sites, interventions,
concentration, probe) are drawn only where their frames are given. Depends on `actstore` only, never on the CLI.
"""

from actstore.reports.inputs import COLUMNS, ReportError, ReportInputs
from actstore.reports.render import check_out_path, render_html, render_report
from actstore.reports.sections import FILL_COMMANDS, Limits

__all__ = ["COLUMNS", "check_out_path", "FILL_COMMANDS", "Limits", "ReportError", "ReportInputs", "render_html", "render_report"]
