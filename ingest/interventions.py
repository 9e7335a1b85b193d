"""Interventions: hold a set of neurons at fixed values while a model runs, and measure the change
of the teacher-forced target log-likelihood per token (issue 16, item 4; Whisper only for now).

Mechanism: the adapters' own PyTorch hooks, on the same modules that define the neuron sites
(`adapters/common/sites.py`). An `ffn` site is fc2's INPUT, so a clamp there is a forward
pre-hook on fc2 that overwrites the chosen units; a q/k/v site is a projection's OUTPUT, so a
clamp there is a forward hook on the projection. Nothing else in the forward pass changes, which
is what makes "clamp to the current values" bitwise identical to no clamp.

Values (`reference_values`) are read from the store: `median` or `mean` per unit over EVERY stored
row of that site of the model (all languages, both modalities, every corpus) -- the study's
default. The stored vectors are means over positions, so this is the median (mean) of POOLED
activations, not of single positions: a deliberate choice, since the store holds nothing finer.
`zero` needs no store.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from actstore.errors import ActstoreError
from actstore.ingest.adapters.common.sites import Site, parse_name
from actstore.ingest.adapters.whisper import decoding
from actstore.ingest.items import SAMPLE_RATE, Item

VALUE_KINDS = ("median", "mean", "zero")


@dataclass(frozen=True)
class Clamp:
    """Units of one site held at `values`: a vector [k] (one value per unit, every position) or a
    tensor [B, T, k] (per position: the identity test writes captured values back)."""

    site: str
    units: tuple[int, ...]
    values: torch.Tensor


def whisper_sites(adapter) -> dict[str, Site]:
    """Every neuron site of a loaded Whisper adapter, by name (loads its decoder)."""
    dec = adapter._load_decoder()
    out: dict[str, Site] = {}
    for stack, layers in (("speech", decoding.encoder_sites(adapter.encoder)),
                          ("decoder", decoding.decoder_sites(dec))):
        for i, sites in enumerate(layers, 1):
            out.update({f"{stack}.L{i}.{kind}": site for kind, site in sites.items()})
    return out


def check_site(sites: dict[str, Site], name: str) -> Site:
    """The site `name`, or one sentence naming the known ones."""
    if name not in sites:
        stacks = sorted({n.split(".")[0] for n in sites})
        raise ActstoreError(f"Unknown site {name!r}; use a name like {next(iter(sites))} "
                            f"(stacks {', '.join(stacks)}; see `actstore points`).")
    return sites[name]


def site_width(site: Site) -> int:
    m = site.module
    return int(m.in_features if site.read == "input" else m.out_features)


def _overwrite(x: torch.Tensor, units: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y[..., units] = values.to(y.dtype).to(y.device).expand(*y.shape[:-1], units.numel())
    return y


@contextmanager
def clamped(sites: dict[str, Site], clamps: Sequence[Clamp]) -> Iterator[None]:
    """Within the block, every clamp's units are overwritten where its site is read."""
    handles = []
    try:
        for c in clamps:
            site = check_site(sites, c.site)
            units = torch.tensor(c.units, dtype=torch.long)
            if site.read == "input":
                def pre(mod, args, units=units, values=c.values):
                    return (_overwrite(args[0], units, values), *args[1:])
                handles.append(site.module.register_forward_pre_hook(pre))
            else:
                def post(mod, args, out, units=units, values=c.values):
                    return _overwrite(out, units, values)
                handles.append(site.module.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


def capture(sites: dict[str, Site], name: str, run) -> torch.Tensor:
    """The full tensor of site `name` during `run()` (for writing values back)."""
    site, got = check_site(sites, name), {}
    if site.read == "input":
        h = site.module.register_forward_pre_hook(lambda m, a: got.setdefault("x", a[0].detach().clone()))
    else:
        h = site.module.register_forward_hook(lambda m, a, o: got.setdefault("x", o.detach().clone()))
    try:
        run()
    finally:
        h.remove()
    return got["x"]


def target_loglik(adapter, items: Sequence[Item], clamps: Sequence[Clamp] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the summed log-probability of its target tokens (teacher-forced, every token
    after the task prefix, `<|endoftext|>` included) and their count.

    Each clip is padded to the window on its own and the decoder's right padding never reaches a
    valid position, so a padded batch gives each item's numbers alone (up to float round-off).
    """
    dec = adapter._load_decoder()
    sites = whisper_sites(adapter)
    fe, enc = adapter.feature_extractor, adapter.encoder
    feats = [fe(np.asarray(it.audio, dtype=np.float32), sampling_rate=SAMPLE_RATE,
                return_tensors="pt")["input_features"] for it in items]
    x = torch.cat(feats).to(adapter.device, adapter.torch_dtype)
    ids, mask = decoding.target_ids(adapter.tokenizer, items, adapter.device,
                                     adapter.config.max_target_positions)
    end = adapter.tokenizer.convert_tokens_to_ids(decoding.END)
    lengths = mask.sum(1)
    labels = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], end)], 1)
    labels[torch.arange(len(items)), lengths - 1] = end  # each row's last read token predicts the end
    with torch.no_grad(), clamped(sites, clamps):
        h = dec(input_ids=ids, attention_mask=mask.long(), use_cache=False,
                encoder_hidden_states=enc(input_features=x).last_hidden_state).last_hidden_state
        logp = torch.log_softmax((h @ dec.embed_tokens.weight.T).float(), -1)
    tok = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    scored = mask.clone()
    scored[:, : len(decoding.PREFIX) - 1] = False  # the prefix's own predictions are not the target
    return ((tok * scored).sum(1).cpu().numpy().astype(np.float64),
            scored.sum(1).cpu().numpy().astype(np.int64))


def reference_values(store, model: str, site: str, units: Sequence[int], kind: str) -> np.ndarray:
    """Per unit: `median`/`mean` over every stored row of `site` (all languages, both modalities,
    every corpus: pooled vectors, see the module doc), or `zero`."""
    if kind not in VALUE_KINDS:
        raise ActstoreError(f"Unknown value {kind!r}; use one of {', '.join(VALUE_KINDS)}.")
    if kind == "zero":
        return np.zeros(len(units), np.float32)
    sl = store.read(model, points=site)
    if sl.meta.height == 0:
        raise ActstoreError(f"The store holds no rows of site {site!r} for model {model!r}, so its "
                            f"{kind} is undefined; ingest that site first or use --value zero.")
    x = np.asarray(sl.vectors, np.float64)[:, list(units)]
    return (np.median(x, 0) if kind == "median" else x.mean(0)).astype(np.float32)


def top_units(store, model: str, site: str, k: int, target: str | None, width: int) -> tuple[int, ...]:
    """The k best-ranked units of `site` in the stored `neuron_sites_top` table (`target`: one
    language or class; None: the first stored target)."""
    from actstore.schema import NEURON_SITES_TOP_TABLE

    check_k(k, width, site)
    top = store.read_results(NEURON_SITES_TOP_TABLE)
    if top is not None:
        top = top.filter((top["model"] == model) & (top["depth"] == site))
        if target is not None:
            top = top.filter(top["target"] == target)
    if top is None or top.height == 0:
        raise ActstoreError(f"No stored top neurons for site {site!r} of {model!r}"
                            f"{' and target ' + target if target else ''}; run `actstore analyze "
                            "neuron-sites` first or pass --units.")
    first = top.sort("rank").row(0, named=True)
    top = top.filter((top["target"] == first["target"]) & (top["direction"] == first["direction"])
                     & (top["within"] == first["within"])).sort("rank")
    if top.height < k:
        raise ActstoreError(f"Only {top.height} top neurons are stored for {site!r}; ask for k <= {top.height}.")
    return tuple(int(u) for u in top["neuron"][:k])


def check_k(k: int, width: int, site: str) -> None:
    if not 1 <= k <= width:
        raise ActstoreError(f"k={k} is outside site {site!r}'s width (1..{width}); choose a smaller k.")


def random_units(width: int, k: int, seed: int, site: str) -> tuple[int, ...]:
    """A random control: k distinct units of the same site, drawn with `seed`."""
    check_k(k, width, site)
    return tuple(int(u) for u in np.sort(np.random.default_rng(seed).choice(width, k, replace=False)))


def parse_units(text: str, width: int, site: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in text.split(",") if u.strip())
    except ValueError:
        raise ActstoreError(f"--units {text!r} is not a comma-separated list of integers.") from None
    bad = [u for u in units if not 0 <= u < width]
    if not units or bad:
        raise ActstoreError(f"--units {bad or text!r} fall outside site {site!r}'s width (0..{width - 1}).")
    return units


def known_site(name: str) -> None:
    """Refuse a name that is not a site at all (before any model loads)."""
    parsed = parse_name(name)
    if parsed is None or parsed[2] is None:
        raise ActstoreError(f"{name!r} is not a neuron site; use stack.L<i>.<kind>, e.g. decoder.L1.ffn.")
