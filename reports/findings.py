"""The section a multi-model report opens with: findings on the real (trained) models.

It draws the frames `actstore.analyses.findings.findings_frames` prepares, in the order a reader
asks the study's questions: which weights were measured (provenance: package, version, hash,
format, quantisation), how speech of different languages relates inside a real speech encoder,
how text of 36 languages relates inside a real text encoder (per layer, as a language x language
heatmap, and by resource level and script), how the speech encoder's geometry relates to the text
encoder's on the same sentences (cross-model, per depth pair), and whether translations find each
other (retrieval). The random-init pipeline checks follow it under their banner
(`actstore.reports.comparison`).
"""

from __future__ import annotations

import html

import altair as alt
import polars as pl

from actstore.reports import comparison_charts as ccharts
from actstore.reports.section_parts import Figure, Section
from actstore.reports.summaries import rounded
from actstore.reports.tables import html_table

SYNTHETIC = ("The speech is synthetic (espeak-ng reading the FLORES sentences), so speech findings are "
             "about synthetic voices, not recorded speakers.")


def _p(text: str, cls: str | None = None) -> str:
    return f'<p class="{cls}">{text}</p>' if cls else f"<p>{text}</p>"


def _depths(frame: pl.DataFrame, column: str = "depth", order: str = "point_order") -> list[str]:
    return frame.sort(order).unique(column, maintain_order=True)[column].to_list()


def _domain(frame: pl.DataFrame) -> tuple[float, float]:
    lo, hi = float(frame["score"].min()), float(frame["score"].max())
    return (lo, hi) if hi > lo else (lo - 0.01, hi + 0.01)


def _provenance(frames: dict, section: Section) -> None:
    prov = frames["provenance"]
    section.parts.append(_p("Trained weights, measured as released: each model's package, the sha256 "
                            "actstore checked before converting, the format it came in and how its "
                            "weights were quantised. " + SYNTHETIC))
    section.parts.append(html_table(prov, headers={
        "sha256": "sha256 (first 16)", "text_prefix": "text prefix", "languages": "languages stored"}))


def _speech(frames: dict, models: list[str], measure: str, datasets: dict, section: Section) -> None:
    section.parts.append("<h3>Speech-speech across languages, per layer</h3>")
    rows = frames["speech_layers"]
    if rows is None:
        section.parts.append(_p("No real speech model has cross-lingual results; ingest Whisper base speech "
                                "and run <code>actstore analyze similarity --kind cross-lingual</code>.", "missing"))
        return
    datasets["fnd_speech_layers"] = rounded(rows.drop("point_order"))
    section.parts.append(Figure(
        "fig-fnd-speech", "Speech of different languages inside a real speech encoder",
        f"Mean {measure} between the speech of two languages (the same sentences, every language pair) per "
        "encoder layer; dashed: random sets of the same shapes (baseline) and the same speech with its rows "
        "shuffled (null). A score above both says the layer puts the same sentence in different languages "
        "in a similar geometry.", ccharts.layer_lines("fnd_speech_layers", models, _depths(rows), measure),
        ("fnd_speech_layers",)))


def _text(frames: dict, models: list[str], measure: str, datasets: dict, section: Section) -> None:
    section.parts.append("<h3>Text-text across languages</h3>")
    rows, matrix, groups = frames["text_layers"], frames["text_matrix"], frames["text_groups"]
    if rows is None:
        section.parts.append(_p("No real text model has cross-lingual results; run <code>actstore analyze "
                                "similarity --kind cross-lingual</code> on multilingual-e5-small.", "missing"))
        return
    datasets["fnd_text_layers"] = rounded(rows.drop("point_order"))
    section.parts.append(Figure(
        "fig-fnd-text-layers", "Text of different languages per layer",
        f"Mean {measure} over language pairs per layer, one colour per real text model; dashed: baseline "
        "and null, as above. With few sentences per language, SVCCA of random sets is already high (the "
        "baseline), so read each score against it; retrieval (below) is the plainer test of whether "
        "translations land together.", ccharts.layer_lines("fnd_text_layers", models, _depths(rows), measure),
        ("fnd_text_layers",)))
    model, depth = matrix["model"][0], matrix["depth"][0]
    langs = sorted(set(matrix["lang_a"]))
    datasets["fnd_text_matrix"] = rounded(matrix)
    section.parts.append(Figure(
        "fig-fnd-text-heatmap", f"{model}: every language pair at {depth}",
        f"{measure} between the text of two languages at {html.escape(depth)}, {model}'s final layer "
        f"({len(langs)} languages); hover a cell for its baseline and null.",
        ccharts.score_heatmap("fnd_text_matrix", "lang_b", "lang_a", langs, langs, _domain(matrix), measure,
                              "", labels=False), ("fnd_text_matrix",)))
    datasets["fnd_text_groups"] = rounded(groups)
    level_order = [g for g in ("high", "medium", "low") if g in set(groups["group"])]
    scripts = groups.filter(pl.col("by") == "script").sort("score", descending=True)["group"].to_list()
    section.parts.append(Figure(
        "fig-fnd-text-groups", "By resource level and by script",
        f"Each language's mean {measure} with every other language at {html.escape(depth)}, averaged over "
        "the languages of a resource level (left) and of a script (right); ticks: baseline and null.",
        alt.hconcat(ccharts.group_bars("resource level", level_order, measure),
                ccharts.group_bars("script", scripts, measure)), ("fnd_text_groups",)))
    section.parts.append(html_table(groups.drop("model")))


def _cross_model(frames: dict, measure: str, datasets: dict, section: Section) -> None:
    section.parts.append("<h3>A real speech encoder vs a real text encoder, same sentences</h3>")
    rows = frames["cross_model"]
    if rows is None:
        section.parts.append(_p("No cross-model results; run <code>actstore analyze cross-model --model "
                                "whisper-base --model-b multilingual-e5-small-q4_0 --modality-a speech "
                                "--modality-b text</code>.", "missing"))
        return
    pair = rows.filter((pl.col("model") == rows["model"][0]) & (pl.col("model_b") == rows["model_b"][0]))
    a, b = pair["model"][0], pair["model_b"][0]
    datasets["fnd_cross_model"] = rounded(pair.drop("point_order", "point_order_b"))
    depths_a = _depths(pair)
    depths_b = _depths(pair, "depth_b", "point_order_b")
    section.parts.append(Figure(
        "fig-fnd-cross-model", f"{a} (speech) vs {b} (text), per layer pair",
        f"{measure} between {a}'s speech and {b}'s text of the same sentences, per (layer of {a}, layer of "
        f"{b}), averaged over the {int(pair['languages'].max())} languages both store; hover a cell for "
        "the baseline and null. Where the cells clear those, the two models order the sentences alike.",
        ccharts.score_heatmap("fnd_cross_model", "depth_b", "depth", depths_b, depths_a, _domain(pair), measure,
                              "", labels=True, extra_tooltip=("languages:Q", "n:Q")), ("fnd_cross_model",)))
    best = pair.sort("score", descending=True).head(1)
    num = {c: ("n/a" if best[c][0] is None else f"{best[c][0]:.3f}") for c in ("score", "baseline", "null")}
    section.parts.append(_p(f"Highest: {a} {html.escape(best['depth'][0])} vs {b} {html.escape(best['depth_b'][0])}, "
                            f"{num['score']} (baseline {num['baseline']}, null {num['null']})."))


def _retrieval(frames: dict, models: list[str], datasets: dict, section: Section) -> None:
    section.parts.append("<h3>Cross-lingual retrieval of translations</h3>")
    rows = frames["retrieval"]
    if rows is None:
        section.parts.append(_p("No real text model has retrieval results; run <code>actstore analyze "
                                "retrieval</code>.", "missing"))
        return
    datasets["fnd_retrieval"] = rounded(rows.drop("point_order"))
    section.parts.append(Figure(
        "fig-fnd-retrieval", "Does a sentence find its translation?",
        "P@1: how often a sentence's nearest neighbour (cosine) among the other language's sentences is "
        "its translation, averaged over language pairs and both directions; chance is 1 / sentences per "
        "language. xsim error: the same with the LASER ratio margin, as an error rate (lower is better).",
        ccharts.retrieval_lines(models, _depths(rows)), ("fnd_retrieval",)))
    final = rows.filter(pl.col("point_order") == pl.col("point_order").max().over("model"))
    section.parts.append(html_table(final.select("model", "depth", "p_at_1", "xsim_error", "pairs", "n"),
                                    headers={"depth": "final depth", "p_at_1": "P@1", "xsim_error": "xsim error",
                                             "pairs": "language pairs", "n": "sentences per language"}))


def findings_section(frames: dict[str, pl.DataFrame | None], measure: str,
                     datasets: dict[str, pl.DataFrame]) -> Section:
    """The opening section: real models' provenance, then their findings (datasets added in place)."""
    section = Section("findings", "Findings on real (trained) models")
    models = frames["provenance"]["model"].to_list()
    _provenance(frames, section)
    _speech(frames, models, measure, datasets, section)
    _text(frames, models, measure, datasets, section)
    _cross_model(frames, measure, datasets, section)
    _retrieval(frames, models, datasets, section)
    return section
