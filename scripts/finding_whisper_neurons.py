"""The neuron study's first real finding on Whisper base: per language, its top language-selective
decoder units held at their median while Whisper decodes held-out speech of that language, against
random and displacement-matched controls of the same size at the same site. Called by
`scripts/finding_whisper_neurons.sh` (stage `sweep`), which documents the whole procedure.

Why a driver beside `actstore intervene`: the CLI re-runs Whisper's encoder (a padded 30 s window,
~80% of the compute) for every neuron set and every measure, so a sweep of 2 sizes x (1 chosen +
5 random + 2 matched) sets costs 36 encoder passes per sentence: hours on 2 shared CPU cores.
Every clamp here sits on a DECODER site, which cannot change the encoder's output, so this driver
memoises the encoder's forward by its input features and then calls the adapter's own public
protocol (`target_loglik`, `first_step_language_probs`) unchanged: one encoder pass per sentence.
`--check-cli` proves the memo changes nothing: it recomputes the rows `actstore intervene` stored
(same site, units, sentences) and prints the largest difference.

Measures, per held-out sentence, without and with the clamp:
- target log-likelihood per token (teacher-forced transcription, the language token given);
- the first decoder step's probability of the sentence's language token, renormalised over the
  language tokens (Whisper's own language identification).
Per (language, k, set): delta log-lik per token = sum(after - before) / sum(tokens); delta p_lang
= mean(after - before); 95% percentile bootstrap intervals over sentences (paired: the same
resample for every set, so "chosen minus controls" has its own interval).

Controls are `intervene`'s own (`actstore.ingest.interventions`): `random_units` and the
displacement-matched `matched_units` (a unit's displacement: mean |median - pooled activation|
over the stored rows of the site; per chosen unit, one of the 3 free units nearest to it), with the
same seeds, so the CLI's rows and the sweep's name the same units.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import time

import numpy as np
import polars as pl
import torch

from actstore.ingest import interventions as iv
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.common.clamps import Clamp, check_site, site_width
from actstore.ingest.intervention_run import held_out_items
from actstore.schema import NEURON_SITES_SPREAD_TABLE, NEURON_SITES_TOP_TABLE
from actstore.store import Store


def memoise_encoder(adapter) -> dict:
    """Cache the encoder's output by its input features (valid: clamps are decoder-side only)."""
    enc, memo = adapter.encoder, {}
    plain = enc.forward

    def forward(input_features=None, **kw):
        key = hashlib.sha1(input_features.detach().cpu().numpy().tobytes()).hexdigest()
        if key not in memo:
            memo[key] = plain(input_features=input_features, **kw)
        return memo[key]

    enc.forward = forward
    return memo


def best_site(store: Store, model: str, lang: str) -> str:
    """The decoder site holding most of `lang`'s global top units (positive direction)."""
    t = store.read_results(NEURON_SITES_SPREAD_TABLE)
    t = t.filter((t["model"] == model) & (t["target"] == lang) & (t["direction"] == "positive")
                 & t["depth"].str.starts_with("decoder."))
    return str(t.sort(["n_top", "depth"], descending=[True, False])["depth"][0])


def top_positive(store: Store, model: str, site: str, lang: str, k: int) -> tuple[int, ...]:
    """The k units of `site` most selective FOR `lang` (AP of lang vs rest, positive direction)."""
    t = store.read_results(NEURON_SITES_TOP_TABLE)
    t = t.filter((t["model"] == model) & (t["depth"] == site) & (t["target"] == lang)
                 & (t["direction"] == "positive")).sort("rank")
    if t.height < k:
        raise SystemExit(f"only {t.height} top units stored for {lang} at {site}; rerun `analyze neurons` with --k >= {k}")
    return tuple(int(u) for u in t["neuron"][:k])


def site_values(store: Store, model: str, site: str) -> tuple[np.ndarray, np.ndarray]:
    """Per unit of `site`: its clamp value (median over every stored row, as `intervene`) and its
    displacement (mean |median - activation|), both with `intervene`'s own functions."""
    rows = iv.reference_rows(store, model, site, "median")
    med = iv.unit_values(rows, "median")
    return med, iv.displacements(rows, med)


def measure(adapter, items, clamps, batch: int, check: bool = False) -> np.ndarray:
    """[n, 3]: summed target log-prob, token count, first-step probability of the own language.

    One decoder pass per batch: `target_loglik`'s teacher-forced pass starts at
    <|startoftranscript|> and the decoder is causal, so its position-0 output IS the first step
    (clamps act at every position alike); a hook on the decoder reads it there. `check` also calls
    `first_step_language_probs` and insists on the same numbers.
    """
    from actstore.ingest.adapters.whisper import decoding
    from actstore.ingest.adapters.whisper.intervene import language_ids

    dec, tok = adapter._load_decoder(), adapter.tokenizer
    rows = []
    for i in range(0, len(items), batch):
        part = items[i:i + batch]
        got = {}
        hook = dec.register_forward_hook(lambda m, a, out: got.update(h0=out[0][:, 0].detach()))  # returns None
        try:
            ll, n = adapter.target_loglik(part, clamps)
        finally:
            hook.remove()
        langs = torch.tensor(language_ids(tok, part))
        with torch.no_grad():
            first = (got["h0"] @ dec.embed_tokens.weight.T).float()[:, langs]
        col = {int(t): j for j, t in enumerate(langs.tolist())}
        own = [col[decoding.language_token(tok, it.lang)] for it in part]
        p = torch.softmax(first, -1)[torch.arange(len(part)), own].numpy().astype(np.float64)
        if check and i == 0:
            ref = adapter.first_step_language_probs(part, clamps)
            assert np.allclose(p, ref, atol=1e-4), (p, ref)
        rows.append(np.stack([ll, n, p], 1))
    return np.concatenate(rows)


def effects(base: np.ndarray, after: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Delta log-lik per token and delta p_lang for each resample `idx` [B, n] (row 0 = all)."""
    d_ll = (after[:, 0] - base[:, 0])[idx].sum(1) / base[:, 1][idx].sum(1)
    d_p = (after[:, 2] - base[:, 2])[idx].mean(1)
    return d_ll, d_p


def sweep(args) -> pl.DataFrame:
    store = Store.open(args.db)
    adapter = load_adapter(args.model, name=args.name)
    memoise_encoder(adapter)
    sites = adapter.intervention_sites()
    rows = []
    for lang in args.langs.split(","):
        site = args.site or best_site(store, args.name, lang)
        assert site.startswith("decoder."), "the encoder memo is valid for decoder sites only"
        width = site_width(check_site(sites, site))
        items, _ = held_out_items("flores", args.flores, [lang], "dev", args.limit)
        t0 = time.time()
        base = measure(adapter, items, [], args.batch, check=lang == args.langs.split(',')[0])
        med, disp = site_values(store, args.name, site)
        n = len(items)
        rng = np.random.default_rng(args.boot_seed)
        idx = np.vstack([np.arange(n), rng.integers(0, n, (args.boot, n))])
        for k in args.ks:
            chosen = top_positive(store, args.name, site, lang, k)
            sets = [("chosen", -1, chosen)]
            sets += [("random", s, iv.random_units(width, k, s, site)) for s in range(args.random)]
            sets += [("matched", s, iv.matched_units(disp, chosen, s, site)) for s in range(args.matched)]
            for kind, seed, units in sets:
                clamp = Clamp(site, units, torch.from_numpy(med[list(units)].astype(np.float32)))
                after = measure(adapter, items, [clamp], args.batch)
                d_ll, d_p = effects(base, after, idx)
                rows.append({"lang": lang, "site": site, "k": k, "set": kind, "seed": seed,
                             "units": ",".join(map(str, units)), "n_sentences": n,
                             "n_tokens": int(base[:, 1].sum()),
                             "loglik_per_token": float(base[:, 0].sum() / base[:, 1].sum()),
                             "p_lang": float(base[:, 2].mean()),
                             "mean_displacement": float(disp[list(units)].mean()),
                             "d_ll": d_ll, "d_p": d_p})
        print(f"{lang}: {n} sentences at {site}, {time.time() - t0:.0f} s", flush=True)
        pl.DataFrame(rows).write_parquet(f"{args.out}.parquet")  # each language kept as it ends
    return pl.DataFrame(rows)


def ci(x: np.ndarray) -> str:
    """Point estimate (resample 0) with the 95% percentile interval of the resamples."""
    lo, hi = np.percentile(x[1:], [2.5, 97.5])
    return f"{x[0]:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def summary(frame: pl.DataFrame) -> str:
    """Markdown: per language and k, chosen vs the mean of each control kind, and the differences."""
    out = ["| lang | site | k | n sent. | base ll/tok | base p_lang | measure | chosen | random (mean of "
           "seeds) | matched (mean of seeds) | chosen - random | chosen - matched | random seeds min..max |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (lang, k), g in frame.group_by(["lang", "k"], maintain_order=True):
        head = g.row(0, named=True)
        for m, label in (("d_ll", "delta ll/token"), ("d_p", "delta p_lang")):
            get = {kind: np.stack(g.filter(g["set"] == kind)[m].to_list()) for kind in ("chosen", "random", "matched")
                   if g.filter(g["set"] == kind).height}
            ch = get["chosen"][0]
            cells = [ci(ch)]
            for kind in ("random", "matched"):
                cells.append(ci(get[kind].mean(0)) if kind in get else "-")
            for kind in ("random", "matched"):
                cells.append(ci(ch - get[kind].mean(0)) if kind in get else "-")
            seeds = get["random"][:, 0] if "random" in get else np.array([np.nan])
            out.append(f"| {lang} | {head['site']} | {k} | {head['n_sentences']} | {head['loglik_per_token']:.3f} | "
                       f"{head['p_lang']:.3f} | {label} | " + " | ".join(cells)
                       + f" | {seeds.min():+.4f}..{seeds.max():+.4f} |")
    return "\n".join(out)


def check_cli(args) -> None:
    """Recompute every stored `actstore intervene` row (no memo) with this driver's path and print
    the largest difference of delta log-lik per token: the memo must change nothing."""
    store = Store.open(args.db)
    stored = store.read_results("interventions")
    stored = stored.filter(stored["model"] == args.name)
    adapter = load_adapter(args.model, name=args.name)
    memoise_encoder(adapter)
    worst = 0.0
    for r in stored.iter_rows(named=True):
        items, _ = held_out_items("flores", args.flores, [r["lang"]], "dev", r["n_sentences"])
        units = tuple(int(u) for u in r["units"].split(","))
        med, _ = site_values(store, args.name, r["site"])
        clamp = Clamp(r["site"], units, torch.from_numpy(med[list(units)].astype(np.float32)))
        base, after = measure(adapter, items, [], args.batch), measure(adapter, items, [clamp], args.batch)
        mine = float((after[:, 0] - base[:, 0]).sum() / base[:, 1].sum())
        mine_p = float((after[:, 2] - base[:, 2]).mean())
        worst = max(worst, abs(mine - r["delta_per_token"]), abs(mine_p - (r.get("lang_prob_delta") or 0.0)))
        print(f"cli check {r['lang']} {r['site']} {r['neuron_set']} seed {r['seed']}: intervene "
              f"dll/tok {r['delta_per_token']:+.6f} dp {r.get('lang_prob_delta')}, sweep path "
              f"{mine:+.6f} {mine_p:+.6f}")
    print(f"cli check: {stored.height} rows, largest |difference| {worst:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True, help="the converted Whisper base directory")
    ap.add_argument("--name", default="whisper-base")
    ap.add_argument("--flores", required=True, help="FLORES-200 directory with dev/")
    ap.add_argument("--langs", required=True)
    ap.add_argument("--site", default=None, help="one decoder site for every language (default: each language's best)")
    ap.add_argument("--ks", type=lambda s: [int(k) for k in s.split()], default=[10, 50])
    ap.add_argument("--limit", type=int, default=24, help="held-out dev sentences per language")
    ap.add_argument("--random", type=int, default=10, help="random controls (seeds 0..N-1)")
    ap.add_argument("--matched", type=int, default=5, help="displacement-matched controls")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--boot-seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", required=True, help="prefix of the outputs (.parquet, .md)")
    ap.add_argument("--check-cli", action="store_true", help="recompute the stored intervene rows")
    ap.add_argument("--summarise", nargs="+", metavar="PARQUET", help="only write the table of these sweeps' rows")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.check_cli:
        check_cli(args)
        return
    if args.summarise:
        text = summary(pl.concat([pl.read_parquet(p) for p in args.summarise]))
        with open(f"{args.out}.md", "w") as fh:
            fh.write(text + "\n")
        print(text)
        return
    t0 = time.time()
    frame = sweep(args)
    frame.write_parquet(f"{args.out}.parquet")
    text = summary(frame)
    info = (f"\nmachine: {platform.processor() or platform.machine()}, torch threads "
            f"{torch.get_num_threads()}; sweep wall time {time.time() - t0:.0f} s; intervals: 95% "
            f"percentile bootstrap over sentences ({args.boot} resamples, seed {args.boot_seed}).")
    with open(f"{args.out}.md", "w") as fh:
        fh.write(text + "\n" + info + "\n")
    print(text + info)


if __name__ == "__main__":
    main()
