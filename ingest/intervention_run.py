"""`actstore intervene`: one neuron set (explicit, or the stored top-k) and its controls (random
and displacement-matched, same size, same site, one of each per seed), each held at a value while
the model decodes held-out sentences; one row per (set, seed, language, conditioning) in the
`interventions` table, with bootstrap intervals over sentences (`intervention_effects`).

It reaches the model only through the `Adapter` intervention protocol (`intervention_sites`,
`conditionings`, `target_loglik`, `generate`, `first_step_language_probs`), so any family that
implements it is supported, with no family check here. Units, values and controls:
`interventions.py`; effects and intervals: `intervention_effects.py`; output language:
`language_id.py`.

Every check (site, units, k, reference rows, conditioning, target language, generation,
sentences) runs before the model decodes anything and before any write, so a refused request
leaves the store unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import polars as pl
import torch

from actstore.errors import ActstoreError
from actstore.ingest import intervention_effects as fx
from actstore.ingest import interventions as iv
from actstore.ingest import language_id
from actstore.ingest.adapters.common.clamps import Clamp, check_site, site_width
from actstore.ingest.items import Item
from actstore.schema import INTERVENTIONS_TABLE

#: everything that changes a row's number (rows of older versions read with these columns null)
KEY = ("model", "site", "neuron_set", "seed", "value", "lang", "modality", "corpus", "units",
       "target_lang", "n_sentences", "boot", "max_new_tokens")
CONTROLS = ("random", "matched")
CONDITIONINGS = ("speech", "text")


def require_decoder(adapter, generate: bool) -> None:
    """Refuse, in one sentence, a family whose decoder cannot be conditioned (encoder-only)."""
    if not type(adapter).conditionings:
        what = "--generate" if generate else "An intervention"
        raise ActstoreError(f"{what} needs a family that decodes; {adapter.adapter_label} is encoder-only.")


def conditionings_for(adapter, choice: str | None, generate: bool = False) -> tuple[str, ...]:
    """`--conditioning` (speech, text, both; None: every one the family supports), each checked."""
    require_decoder(adapter, generate)
    if choice is None:
        chosen = type(adapter).conditionings
    else:
        chosen = CONDITIONINGS if choice == "both" else (choice,)
    for c in chosen:
        adapter.check_conditioning(c)
    return tuple(chosen)


def held_out_items(source: str, data_dir: str | None, langs: Sequence[str], split: str,
                   limit: int | None, conditionings: Sequence[str] = ("speech",),
                   target_lang: str | None = None) -> tuple[list[Item], str]:
    """Items of `langs` in each conditioning's modality (speech: audio; text: the sentence), each
    with its target (the sentence itself, or its parallel sentence in `target_lang`), and the
    source's corpus. At most `limit` sentences per language and conditioning."""
    from actstore.catalogue import Catalogue
    from actstore.ingest.sources import open_source

    src = open_source(source, catalogue=Catalogue.load(), data_dir=data_dir, split=split)
    fixed = None
    if target_lang is not None:
        fixed = src.texts(target_lang) if target_lang in src.languages() else {}
        if not fixed:
            raise ActstoreError(f"The {source} source has no {target_lang} sentences to decode as targets; "
                                "pick a --target-lang it holds texts for.")
    items: list[Item] = []
    for lang in langs:
        texts = fixed if fixed is not None else src.texts(lang)
        for modality in conditionings:
            if modality not in src.modalities(lang):
                raise ActstoreError(f"The {source} source has no {lang} {modality}; drop --conditioning "
                                    f"{modality} or that language.")
            ids = sorted(src.sentence_ids(lang, modality))
            if fixed is not None and ids and not any((fixed.get(i) or "").strip() for i in ids):
                raise ActstoreError(f"No {lang} sentence has a parallel {target_lang} sentence in the "
                                    f"{source} source; pick another --target-lang or language.")
            ids = [i for i in ids if (texts.get(i) or "").strip()][:limit]
            got = src.items(lang, modality, sentence_ids=ids) if ids else []
            items += [dataclasses.replace(it, target=texts[it.sentence_id], target_lang=target_lang or lang)
                      for it in got][:limit]
    if not items:
        raise ActstoreError(f"No {'/'.join(conditionings)} with a target sentence for {', '.join(langs)} in "
                            f"the {source} source; pick languages it holds those and texts for.")
    return items, src.corpus(split)


def neuron_sets(store, model: str, site: str, width: int, *, units: str | None, top: int | None,
                target: str | None, seeds: Sequence[int]) -> list[tuple[str, int, tuple[int, ...]]]:
    """(name, seed, units): the chosen set (seed -1) then one random control per seed."""
    if (units is None) == (top is None):
        raise ActstoreError("Pass exactly one of --units (an explicit list) and --top K (stored top neurons).")
    if units is not None:
        chosen, name = iv.parse_units(units, width, site), "explicit"
    else:
        chosen, name = iv.top_units(store, model, site, int(top), target, width), f"top:{target or 'first'}"
    return [(name, -1, chosen)] + [("random", s, iv.random_units(width, len(chosen), s, site)) for s in seeds]


def _plan(store, adapter, items: Sequence[Item], *, site, units, top, target, value, seeds, controls,
          max_new_tokens) -> list[tuple[str, int, tuple[int, ...], np.ndarray, float | None]]:
    """Every check, then (name, seed, units, values, mean displacement) per set."""
    iv.known_site(site)
    require_decoder(adapter, bool(max_new_tokens))
    for c in dict.fromkeys(it.modality for it in items):
        adapter.check_conditioning(c)
    other = sorted({f"{it.lang}->{it.target_lang}" for it in items if it.target_lang not in (None, it.lang)})
    if other and not type(adapter).translates:
        raise ActstoreError(f"{adapter.adapter_label} decodes transcriptions only, not {other[0]}; drop --target-lang.")
    if max_new_tokens:
        for lang in {it.target_lang or it.lang for it in items}:
            language_id.langid_code(lang)
    bad = sorted(set(controls) - set(CONTROLS))
    if bad:
        raise ActstoreError(f"Unknown control(s) {bad}; use {', '.join(CONTROLS)}.")
    model = adapter.model_name
    width = site_width(check_site(adapter.intervention_sites(), site))
    sets = neuron_sets(store, model, site, width, units=units, top=top, target=target, seeds=seeds)
    if "random" not in controls:
        sets = sets[:1]
    needed = value != "zero" or "matched" in controls
    why = value if value != "zero" else "displacement (the matched control)"
    try:
        rows = iv.reference_rows(store, model, site, why)
    except ActstoreError:
        if needed:
            raise
        rows = None  # zero with no stored rows: no displacement to report, nothing else needs them
    vals = iv.unit_values(rows, value) if rows is not None else np.zeros(width, np.float32)
    disp = iv.displacements(rows, vals) if rows is not None else None
    if "matched" in controls:
        sets += [("matched", s, iv.matched_units(disp, sets[0][2], s, site)) for s in seeds]
    return [(n, s, u, vals[list(u)], None if disp is None else float(disp[list(u)].mean())) for n, s, u in sets]


def run_intervention(store, adapter, items: Sequence[Item], corpus: str, *, site: str, units: str | None,
                     top: int | None, target: str | None, value: str, seeds: Sequence[int],
                     batch_size: int = 8, controls: Sequence[str] = CONTROLS, boot: int = 1000,
                     max_new_tokens: int = 0) -> pl.DataFrame:
    """The rows (not yet written): per set, seed, language and conditioning what changed with the
    clamp (module doc; `max_new_tokens` 0: no generation)."""
    if boot < 0 or max_new_tokens < 0 or batch_size < 1:
        raise ActstoreError("--boot and --max-new-tokens must be >= 0 and --batch-size >= 1.")
    plan = _plan(store, adapter, items, site=site, units=units, top=top, target=target, value=value,
                 seeds=seeds, controls=controls, max_new_tokens=max_new_tokens)
    common = {"model": adapter.model_name, "site": site, "value": value, "corpus": corpus, "boot": int(boot),
              "max_new_tokens": int(max_new_tokens), "random_init": bool(adapter.info.random_init)}
    out = []
    for modality in dict.fromkeys(it.modality for it in items):
        group = [it for it in items if it.modality == modality]
        clamp_sets = [[]] + [[Clamp(site, u, torch.from_numpy(vals))] for _, _, u, vals, _ in plan]
        base, *outcomes = fx.measure(adapter, group, clamp_sets, conditioning=modality,
                                     max_new_tokens=max_new_tokens, batch_size=batch_size)
        langs = np.array([it.lang for it in group])
        for (name, seed, u, vals, disp), got in zip(plan, outcomes):
            for lang in dict.fromkeys(langs.tolist()):
                mask = langs == lang
                tlang = next(it.target_lang or it.lang for it in group if it.lang == lang)
                code = language_id.langid_code(tlang) if max_new_tokens else None
                out.append({**common, "neuron_set": name, "seed": seed, "lang": lang, "modality": modality,
                            "target_lang": tlang, "k": len(u), "units": ",".join(map(str, u)),
                            "displacement": disp,
                            **fx.compare(base, got, mask, code, fx.draws(int(mask.sum()), boot))})
    return _typed(pl.DataFrame(out))


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    """Nullable columns typed (a first write of all-null columns must still store floats/strings)."""
    floats = [c for c in (*fx.NULLABLE_FLOATS, "displacement", "ci_low", "ci_high") if c in frame.columns]
    return frame.with_columns([pl.col(c).cast(pl.Float64) for c in floats]
                              + [pl.col("clamped_top_lang").cast(pl.Utf8)])


def save(store, frame: pl.DataFrame) -> None:
    store.write_results(INTERVENTIONS_TABLE, frame, key=KEY)
