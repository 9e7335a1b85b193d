"""`actstore intervene`: one neuron set (explicit, or the stored top-k) and its random controls
(same size, same site, several seeds), each held at a value while the model decodes held-out
sentences teacher-forced (through the `Adapter` intervention protocol only); one row per
(neuron set, seed, language) in the `interventions` table.

Every check (site, units, k, reference rows, sentences) runs before the model decodes anything
and before any write, so a refused request leaves the store unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import polars as pl
import torch

from actstore.errors import ActstoreError
from actstore.ingest import interventions as iv
from actstore.ingest.adapters.common.clamps import Clamp, check_site, site_width
from actstore.ingest.items import Item
from actstore.schema import INTERVENTIONS_TABLE

#: everything that changes a row's number
KEY = ("model", "site", "neuron_set", "seed", "value", "lang", "corpus", "units")


def held_out_items(source: str, data_dir: str | None, langs: Sequence[str], split: str,
                   limit: int | None) -> tuple[list[Item], str]:
    """Speech items of `langs` with their transcription as target, and the source's corpus."""
    from actstore.catalogue import Catalogue
    from actstore.ingest.sources import open_source

    src = open_source(source, catalogue=Catalogue.load(), data_dir=data_dir, split=split)
    items: list[Item] = []
    for lang in langs:
        texts = src.texts(lang)
        got = [dataclasses.replace(it, target=texts.get(it.sentence_id)) for it in src.items(lang, "speech")]
        items += [it for it in got if it.target][:limit]
    if not items:
        raise ActstoreError(f"No speech with a transcription for {', '.join(langs)} in the {source} "
                            "source; pick languages it holds speech and texts for.")
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


def run_intervention(store, adapter, items: Sequence[Item], corpus: str, *, site: str, units: str | None,
                     top: int | None, target: str | None, value: str, seeds: Sequence[int],
                     batch_size: int = 8) -> pl.DataFrame:
    """The rows (not yet written): per set, seed and language the target log-likelihood per token
    without and with the clamp, and their difference."""
    iv.known_site(site)
    adapter.check_conditioning("speech")
    sites = adapter.intervention_sites()
    width = site_width(check_site(sites, site))
    model = adapter.model_name
    sets = neuron_sets(store, model, site, width, units=units, top=top, target=target, seeds=seeds)
    values = [iv.reference_values(store, model, site, u, value) for _, _, u in sets]
    base = _loglik(adapter, items, [], batch_size)
    langs = np.array([it.lang for it in items])
    rows, random_init = [], bool(adapter.info.random_init)
    for (name, seed, u), vals in zip(sets, values):
        clamp = Clamp(site, u, torch.from_numpy(vals))
        ll = _loglik(adapter, items, [clamp], batch_size)
        for lang in dict.fromkeys(langs.tolist()):
            m = langs == lang
            n = float(base[1][m].sum())
            before, after = base[0][m].sum() / n, ll[0][m].sum() / n
            rows.append({"model": model, "site": site, "neuron_set": name, "seed": seed, "value": value,
                         "lang": lang, "modality": "speech", "corpus": corpus, "k": len(u),
                         "units": ",".join(map(str, u)), "n_sentences": int(m.sum()), "n_tokens": int(n),
                         "loglik_per_token": float(before), "clamped_loglik_per_token": float(after),
                         "delta_per_token": float(after - before),
                         "random_init": random_init})
    return pl.DataFrame(rows)


def _loglik(adapter, items, clamps, batch_size) -> tuple[np.ndarray, np.ndarray]:
    parts = [adapter.target_loglik(items[i:i + batch_size], clamps) for i in range(0, len(items), batch_size)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def save(store, frame: pl.DataFrame) -> None:
    store.write_results(INTERVENTIONS_TABLE, frame, key=KEY)
