"""Plain sentences for a newcomer, placed where the thing they explain is drawn.

A reader who meets "svcca 0.61, baseline 0.72, null 0.70" cannot tell whether the baseline above
every score is a bug or expected. These sentences say what each measure, the random baseline,
the shuffled null, `forced`, kx/ky and k are, and `baseline_note` says, from the rows themselves,
when a high baseline is expected (few sentences for the directions kept). They are kept short and
in one place so every section explains things in the same words.
"""

from __future__ import annotations

import html

import polars as pl

#: What a score of each registered measure means (unknown plug-in measures get a generic line).
MEASURES = {
    "svcca": "SVCCA keeps the top directions of each set (99% of the variance: kx and ky of them), "
             "then averages the canonical correlations between the two; 1 = the same geometry up to a "
             "linear map, 0 = unrelated.",
    "pwcca": "PWCCA is SVCCA with each canonical correlation weighted by how much of the first set it "
             "explains, so directions that carry little variance count less.",
    "cka": "CKA (linear) compares the two sets' sentence-by-sentence similarity matrices; 1 = the same "
           "geometry up to rotation and scale, 0 = unrelated.",
    "cka_debiased": "Debiased CKA is linear CKA corrected for the upward bias it has when sentences "
                    "are few; it can go slightly below 0.",
    "knn": "Mutual kNN: for each sentence, the share of its k nearest neighbours (cosine) that are "
           "the same in both sets, averaged; 1 = identical neighbourhoods, about k/n by chance.",
}
BASELINE = ("Random baseline: the same measure on two sets of random Gaussian vectors of the same "
            "shapes (n sentences, same widths). It is the score of no relation at all at this size.")
NULL = ("Shuffled null: the same measure after shuffling one side's sentences, so sentence i no longer "
        "meets its own translation or recording; a score above it means the pairing matters.")
FORCED = ("forced: canonical correlations that are 1 by construction (more kept directions than the "
          "sentences can span), counted per score; they push SVCCA up whatever the data.")
KEPT = "kx, ky: directions kept on each side; n: sentences compared."
OVERLAP_K = ("k: how many top dimensions per modality are compared; by chance about k/width of "
             "them are shared.")
CHANCE = ("Chance level: a random guess ranks the true item first with probability 1/n (n target "
          "sentences), and within the top k with probability k/n.")


def measure_sentence(measure: str) -> str:
    return MEASURES.get(measure, f"{measure}: a similarity measure registered by a plug-in; higher = "
                                 "more similar.")


def baseline_note(rows: pl.DataFrame) -> str | None:
    """Say so when the random baseline is at or above most scores, and when that is expected.

    SVCCA-type measures of random sets approach 1 as the kept directions approach the number of
    sentences (kx + ky near or above n): the baseline is then high by construction and the signal
    is the gap to the null, not the score's size. Returns None when scores clear the baseline.
    """
    rows = rows.filter(pl.col("baseline").is_not_null() & pl.col("score").is_not_null())
    if rows.height == 0:
        return None
    above = rows.filter(pl.col("baseline") >= pl.col("score")).height
    if above * 2 < rows.height:
        return None
    n, kept = int(rows["n"].median()), int((rows["kx"] + rows["ky"]).median())
    text = (f"The random baseline is at or above {above} of {rows.height} scores here. ")
    if kept > 0 and kept >= 0.5 * n:
        text += (f"That is expected at this size: n = {n} sentences against kx + ky = {kept} kept "
                 "directions, so even random vectors correlate strongly (small n relative to the kept "
                 "directions inflates SVCCA). Read the gap between a score and the shuffled null, or "
                 "compare more sentences.")
    elif kept <= 0:
        text += (f"With n = {n} sentences random sets already score this high on this measure; read "
                 "the gap between a score and the shuffled null, or compare more sentences.")
    else:
        text += ("With this many sentences that is not expected from the size alone: the two sets "
                 "share little beyond what random vectors of the same shapes would.")
    return text


def explain_html(*sentences: str) -> str:
    """A small block of plain explanations under a figure (escaped)."""
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences if s)
    return f'<ul class="explain">{items}</ul>' if items else ""


def blank_cells_note(rows: pl.DataFrame, group: str, groups: list[str], langs: list[str],
                     lang_columns: tuple[str, ...], depths: list[str], what: str = "cells") -> str | None:
    """Why some heatmap cells, lines or bars are blank: which group lacks which languages or depths.

    A blank is never a score of 0: it is a pair the analysis did not (or could not) compute, such
    as a language without speech, a depth one modality does not have, or a measure undefined there.
    """
    parts = []
    for g in groups:
        sub = rows.filter(pl.col(group) == g)
        used = set().union(*(set(sub[c].drop_nulls().to_list()) for c in lang_columns))
        absent = [l for l in langs if l not in used]
        if absent:
            shown = ", ".join(absent[:8]) + (f" and {len(absent) - 8} more" if len(absent) > 8 else "")
            parts.append(f"{g} has no rows for {shown} (nothing of that modality stored for them)")
        gone = [d for d in depths if d not in set(sub["depth"].to_list())]
        if gone:
            parts.append(f"{g} has no rows at depth {', '.join(gone)} (that depth exists for one modality only)")
    undefined = rows.filter(pl.col("score").is_null()).height if "score" in rows.columns else 0
    if undefined:
        parts.append(f"{undefined} scores are undefined for the measure (stored as empty)")
    if not parts:
        return None
    return (f"Blank {what} mean no score was computed there, never a score of 0: "
            + "; ".join(parts) + ".")


# The neuron study over sites (reports/neuron_study_sections.py): how to read each chart.
SITE_SPREAD = ("How to read this: for each comparison, every neuron of every site is ranked by "
               "average precision (AP, scale-free, so sites of different widths rank on one scale) and "
               "the best ones over all sites are counted where they sit. A cell is that count over the "
               "count the site's width alone predicts: 1 = as many as expected, above 1 = selective "
               "neurons crowd there, 0 = none. 'language vs rest | speech' ranks one language against "
               "the others within speech rows; 'speech vs text' ranks the same neurons under speech- and "
               "text-conditioned decoding (only sites whose rows hold both, i.e. the decoder).")
SITE_BARS = ("How to read this: the same top neurons as the heatmap, as a share per layer (bar "
             "height) split by site type (colour); the bars of one panel sum to 100%.")
SITE_OVERLAP = ("How to read this: for each decoder site and language, the share of the top-k neurons "
                "ranked on speech-conditioned rows that are also in the top-k ranked on text-conditioned "
                "rows (averaged over languages); the dashed tick is the share two random sets of k "
                "would have (k/width). Far above it: the decoder marks the language with the same "
                "neurons whichever encoder fed it.")
SITE_CONCENTRATION = ("How to read this: the Gini coefficient of mean |activation| over a site's neurons "
                      "(0 = every neuron carries the same mass, near 1 = a few carry all of it) and the "
                      "share of the mass in the top 1% of neurons, per script with its languages pooled, "
                      "solid/dashed by modality (for decoder sites: the conditioning). Bars: 95% basic "
                      "bootstrap intervals over items. Few items inflate both numbers (gini_noise_floor in "
                      "the CSV is what noise alone gives): compare groups only where the gap is large "
                      "beside it.")
PROBE = ("How to read this: a cross-validated logistic-regression probe predicts the source language "
         "from one layer's pooled states, separately for speech- and text-conditioned rows. Bars: 95% "
         "Wilson interval over items; dashed tick: chance (always answering the commonest language). "
         "Above chance: the layer still carries which language it is decoding. Where the decoder's "
         "prompt names the source language (Whisper's <|xx|> token; SeamlessM4T transcribing, whose "
         "target token is the source's), the probe can read it off the prompt: decode a translation "
         "into one language (--target-lang eng) to ask what the encoder hands over.")
INTERVENTION = ("How to read this: each panel is one experiment (a site, k neurons, the value they are "
                "held at) under one conditioning. Per language, the chosen set's change of the "
                "teacher-forced target log-likelihood per token (negative = the model finds the target "
                "less likely) beside random controls of the same size and site (one point per seed) and, "
                "where stored, controls matched on how far the clamp moves the units. Bars: bootstrap "
                "intervals over sentences, where stored. The chosen set matters when its point sits "
                "clearly outside the controls' spread, not merely below 0.")
OUTPUT_LANGUAGE = ("How to read this: with --generate, the model decodes greedily and a language "
                   "identifier (py3langid) judges each output; each point is the change, with the clamp "
                   "minus without, of the share of outputs in the expected language (the sentence's own "
                   "for transcription, the target's for translation).")
INTERVENTION_PROB = ("How to read this: Whisper chooses the language at its first decoder step; each "
                     "point is the change, with the clamp minus without, of the mean probability it "
                     "gives the sentence's language there. Negative: the clamp pushes it off the language.")
