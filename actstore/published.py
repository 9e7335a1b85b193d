"""The study's published numbers (package data) and which stored model is which of its systems.

A reproduction is only convincing beside the numbers it reproduces, so the paper's final-layer
values ship with the package (`actstore/data/published/<key>.toml`, with the full citation and
where each block comes from) instead of living in a README a report cannot read. Which stored model
is which system is decided here, once, for the report and the study runner: an explicit mapping
first (a study file knows), else the model's name or recorded model id matching the study's
checkpoint (`model_ids`), else its adapter family (`adapters`: the same architecture, e.g. a tiny
random-init SeamlessM4T v2). Only a real model that is the study's checkpoint (mapped explicitly
or by id) gets a difference; random-init weights and other checkpoints show the published values
alone, since a difference against them would read as a finding it is not.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import polars as pl

from actstore.errors import ReportError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from actstore.store import Store

#: the study actstore reproduces (../shared/DESIGN.md section 5)
DEFAULT_STUDY = "naacl2025"
#: the published blocks: metric name in the data file -> what a table calls it
METRICS = {"cross_modal": "cross-modal", "cross_lingual": "cross-lingual"}
#: how a model was matched to a system; the first two mean "this is the study's checkpoint"
EXPLICIT, BY_ID, BY_FAMILY = "mapping", "model id", "adapter family"

_FRAME_SCHEMA = {"system": pl.String, "label": pl.String, "metric": pl.String, "group": pl.String,
                 "published": pl.Float64, "where": pl.String}


@dataclass(frozen=True)
class Published:
    """One paper's numbers: citation, measure and a long frame (`_FRAME_SCHEMA` columns)."""

    key: str
    citation: str
    short: str
    url: str
    measure: str
    data: str
    systems: dict[str, dict]
    frame: pl.DataFrame

    def system_label(self, system: str) -> str:
        return str(self.systems[system].get("label", system))


def available() -> list[str]:
    """Keys of the shipped published studies (data file names)."""
    folder = resources.files("actstore.data") / "published"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_published(key: str = DEFAULT_STUDY) -> Published:
    """The shipped numbers of study `key` (see `available()`)."""
    if key not in available():
        raise ReportError(f"No published numbers for study {key!r}; shipped: {', '.join(available())}.")
    raw = tomllib.loads((resources.files("actstore.data") / "published" / f"{key}.toml").read_text("utf-8"))
    rows = []
    for system, spec in raw["systems"].items():
        for metric, name in METRICS.items():
            block = dict(spec.get(metric, {}))
            where = str(block.pop("where", ""))
            rows += [{"system": system, "label": spec.get("label", system), "metric": name, "group": group,
                      "published": float(value), "where": where} for group, value in block.items()]
    cite = raw["citation"]
    return Published(key=raw.get("key", key), citation=cite["text"], short=cite.get("short", key),
                     url=cite.get("url", ""), measure=raw.get("measure", "svcca"), data=raw.get("data", ""),
                     systems=raw["systems"], frame=pl.DataFrame(rows, schema=_FRAME_SCHEMA))


@dataclass(frozen=True)
class PublishedTable:
    """What a report draws: `beside_ours`' rows and the study they come from."""

    rows: pl.DataFrame
    source: Published
    measure: str


@dataclass(frozen=True)
class SystemMatch:
    """Which system `model` is, how that was decided, and whether its weights are random-init."""

    model: str
    system: str
    how: str
    random_init: bool

    @property
    def compared(self) -> bool:
        """A difference is drawn only for the study's own checkpoint with trained weights."""
        return not self.random_init and self.how in (EXPLICIT, BY_ID)


def _matches(patterns: Sequence[str], names: Sequence[str]) -> bool:
    """Whether any name (or a path's last part) matches any pattern, ignoring case."""
    cands = {n.lower() for n in names if n} | {n.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
                                               for n in names if n}
    return any(fnmatch.fnmatchcase(c, p.lower()) for c in cands for p in patterns)


def match_systems(store: Store, models: Sequence[str], published: Published,
                  systems: Mapping[str, str] | None = None) -> dict[str, SystemMatch]:
    """The models of `models` that are one of the study's systems (others are left out).

    `systems` maps a stored model name to a system key of the data file where the name does not
    tell (a study file passes its mapping); a key that is no system raises one sentence naming it.
    """
    systems = dict(systems or {})
    for model, system in systems.items():
        if model not in models:
            raise ReportError(f"The system mapping names {model!r}, which is not among the report's models "
                              f"({', '.join(models)}); map only the models you report.")
        if system not in published.systems:
            raise ReportError(f"Model {model!r} is mapped to {system!r}, which is not a system of the "
                              f"{published.key} study; use one of: {', '.join(published.systems)}.")
    out: dict[str, SystemMatch] = {}
    for model in models:
        runs = store.runs(model)
        ids = [model, *[i for i in runs["model_id"].drop_nulls().unique().to_list()]]
        adapters = [a for a in runs["adapter"].drop_nulls().unique().to_list()]
        found = None
        if model in systems:
            found = (systems[model], EXPLICIT)
        if found is None:
            found = next(((s, BY_ID) for s, spec in published.systems.items()
                          if _matches(spec.get("model_ids", []), ids)), None)
        if found is None:
            found = next(((s, BY_FAMILY) for s, spec in published.systems.items()
                          if set(a.lower() for a in adapters) & {a.lower() for a in spec.get("adapters", [])}), None)
        if found is not None:
            out[model] = SystemMatch(model, found[0], found[1], store.is_random_init(model))
    return out


def beside_ours(published: Published, matches: Mapping[str, SystemMatch], final_cross_modal: pl.DataFrame,
                final_cross_lingual: pl.DataFrame, measure: str) -> pl.DataFrame:
    """One row per (matched model, published number): published, ours and ours - published.

    `final_cross_modal` / `final_cross_lingual` are the comparison's final-depth frames
    (`analyses.comparison.comparison_frames`: model, group or kind, depth, score). `ours` and
    `difference` are filled only for a compared match (`SystemMatch.compared`) and when `measure`
    is the paper's; elsewhere they are null and the table shows the published value alone.
    """
    ours = pl.concat([
        final_cross_modal.select("model", pl.lit("cross-modal").alias("metric"), "group", "depth", "score"),
        final_cross_lingual.select("model", pl.lit("cross-lingual").alias("metric"),
                                   pl.col("kind").alias("group"), "depth", "score"),
    ], how="vertical_relaxed")
    rows = pl.DataFrame([{"model": m.model, "system": m.system, "random_init": m.random_init, "how": m.how,
                          "compared": m.compared and measure == published.measure, "_m": i}
                         for i, m in enumerate(matches.values())],
                        schema={"model": pl.String, "system": pl.String, "random_init": pl.Boolean,
                                "how": pl.String, "compared": pl.Boolean, "_m": pl.Int64})
    table = (rows.join(published.frame.with_row_index("_p"), on="system")
             .join(ours, on=["model", "metric", "group"], how="left").sort("_m", "_p"))
    return (table.with_columns(pl.when(pl.col("compared")).then(pl.col("score")).alias("ours"),
                               pl.when(pl.col("compared")).then(pl.col("depth")).alias("depth"))
            .with_columns((pl.col("ours") - pl.col("published")).alias("difference"))
            .select("model", "system", "label", "random_init", "how", "compared", "metric", "group", "depth",
                    "published", "ours", "difference", "where"))
