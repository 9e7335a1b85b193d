"""The neuron study's result rows a report shows, chosen from what the analyses and `intervene` stored.

Kept apart from `report_data` (the FLEURS study's frames) because these tables are keyed
differently: site tables carry a language set (`langs`) per unit and a site selection for the
spread; the probe keeps every option set (folds, seed, C); interventions keep every neuron set,
seed and value. Per chart cell a report shows one computation:
- site top-k and overlap: per site, the unit over the most languages (latest on ties);
- spread (the heatmaps): one unit per model, the widest language set, latest on ties, so the
  heatmap never mixes rankings done over different site selections;
- probe: per point and modality, the unit over the most languages, then the latest computation;
- concentration and interventions: every stored row (their keys hold everything that changes a
  number, and the report groups by those columns).
Reading only: nothing is computed here (`complete.ensure_results` fills what is missing).
"""

from __future__ import annotations

import polars as pl

from actstore.schema import (INTERVENTIONS_TABLE, LANGUAGE_PROBE_TABLE, NEURON_SITES_OVERLAP_TABLE,
                             NEURON_SITES_SPREAD_TABLE, NEURON_SITES_TOP_TABLE, SITE_CONCENTRATION_TABLE)
from actstore.store import Store
from actstore.analyses.results import load_results, widest_units

#: report frame name -> the result table it is read from
STUDY_TABLES = {
    "site_top": NEURON_SITES_TOP_TABLE,
    "site_spread": NEURON_SITES_SPREAD_TABLE,
    "site_overlap": NEURON_SITES_OVERLAP_TABLE,
    "site_concentration": SITE_CONCENTRATION_TABLE,
    "probe": LANGUAGE_PROBE_TABLE,
    "interventions": INTERVENTIONS_TABLE,
}


def _latest(frame: pl.DataFrame | None, per: tuple[str, ...]) -> pl.DataFrame | None:
    """Per `per` group, the rows of the latest computation (`computed_at`)."""
    if frame is None or "computed_at" not in frame.columns:
        return frame
    last = frame.group_by(list(per)).agg(pl.col("computed_at").max())
    return frame.join(last, on=[*per, "computed_at"], how="semi", nulls_equal=True)


def _one_unit(frame: pl.DataFrame | None, unit: tuple[str, ...]) -> pl.DataFrame | None:
    """The rows of one unit: the one over the most languages, latest on ties."""
    if frame is None or any(c not in frame.columns for c in (*unit, "langs", "computed_at")):
        return frame
    best = (frame.group_by(list(unit)).agg(pl.col("computed_at").max().alias("_at"))
            .with_columns(pl.col("langs").str.count_matches(",").fill_null(-1).alias("_width"))
            .sort("_width", "_at", nulls_last=False).tail(1).select(*unit))
    return frame.join(best, on=list(unit), how="semi", nulls_equal=True)


def neuron_study_frames(store: Store, model: str) -> dict[str, pl.DataFrame | None]:
    """Report frame name (`STUDY_TABLES`) -> the rows to draw, None where nothing is stored."""
    raw = {name: load_results(store, table, model) for name, table in STUDY_TABLES.items()}
    return {
        "site_top": widest_units(raw["site_top"]),
        "site_overlap": widest_units(raw["site_overlap"]),
        "site_spread": _one_unit(raw["site_spread"], ("langs", "corpus", "sites")),
        "site_concentration": raw["site_concentration"],
        "probe": _latest(widest_units(raw["probe"], per=("model", "depth", "modality")),
                         ("model", "depth", "modality")),
        "interventions": raw["interventions"],
    }
