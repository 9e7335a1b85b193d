"""Stored size per 1,000 items of every neuron site of full-width SeamlessM4T v2, float16 vs float32.

What is stored: for each site kind of each stack (speech conformer encoder `ffn1`, `ffn2`,
`self_attn.q|k|v`; text encoder `ffn`, `self_attn.q|k|v`; shared text decoder `ffn`,
`self_attn.q|k|v`, `cross_attn.q|k|v`), at every layer, one pooled vector per item. Site names
and widths come from the adapter's own declaration (`seamless_m4t_v2.decoding.declare`) applied
to transformers' `SeamlessM4Tv2Config()` defaults, which are facebook/seamless-m4t-v2-large's
sizes (hidden 1024; FFN 8192 in the text encoder and decoder, 4096 in the conformer; 24 layers
in each stack). No model runs: the widths are what decide the size, so a full-size random-init
model is not needed.

How: N items (10 languages x N/10 sentences) per site are written through the real store writer
(`Store.register_points` + `Store.write_activations`, one commit per layer and width as an ingest
does), then `Store.finalize_model` (indices, compaction, old versions dropped), and the bytes of
the activation tables on disk are counted: one store per (stack, site kind), so each kind is
measured on its own. Values are synthetic normal draws: Lance stores fixed-size float vectors
uncompressed, so the content does not change the size (the "raw" column, width x items x bytes
per value, is printed beside it to show that). Baseline: the same rows in float32.

A speech item stores the speech encoder's sites plus the decoder's (speech-conditioned); a text
item the text encoder's plus the decoder's.

Measured (2 cores, AMD EPYC, shared; lancedb 0.40.0; 1,000 items written per site, 254 s): per
1,000 items, float16: speech encoder sites 0.542 GB (ffn1, ffn2 0.197 GB each; q, k, v 0.049 GB
each), text encoder sites 0.542 GB (ffn 0.394 GB), decoder sites 0.690 GB (ffn 0.394 GB, six
projections 0.049 GB each); a speech item (speech encoder + decoder) 1.23 GB per 1,000, a text
item the same; every site of every stack 1.77 GB. float32 doubles each: 2.46 GB per 1,000 speech
items. On disk = raw vector bytes + under 0.5% (metadata columns, indices).

Run: `python benchmarks/bench_site_storage.py [--items 1000] [--quick]` (`--quick`: 20 items,
scaled to 1,000 linearly; about 20 s). Full run: several GB of temporary disk, a few minutes.
Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from actstore.ingest.adapters.common.sites import parse_name  # noqa: E402
from actstore.ingest.adapters.seamless_m4t_v2.decoding import declare  # noqa: E402
from actstore.schema import ACTIVATION_PREFIX  # noqa: E402
from actstore.store import Store  # noqa: E402

MODEL = "seamless-m4t-v2-large-sites"
LANGS = 10


def site_groups() -> tuple[dict[tuple[str, str], list[tuple[str, int, int]]], object]:
    """{(stack, kind): [(site, layer, width), ...]} for every site of the full-size config."""
    from transformers import SeamlessM4Tv2Config

    cfg = SeamlessM4Tv2Config()
    optional, widths = declare(cfg)
    groups: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
    for name in dict.fromkeys(optional["speech"] + optional["text"]):
        parsed = parse_name(name)
        if parsed is None or parsed[2] is None:  # decoder hidden states are points, not sites
            continue
        groups[(parsed[0], parsed[2])].append((name, parsed[1], widths[name]))
    return groups, cfg


def table_bytes(root: Path) -> int:
    """Bytes on disk of the store's activation tables (every file of every `act_*` table)."""
    return sum(f.stat().st_size for d in root.glob(f"{ACTIVATION_PREFIX}*") for f in d.rglob("*") if f.is_file())


def write_group(root: Path, sites: list[tuple[str, int, int]], n: int, vector_dtype: str, rng) -> int:
    """Write n items of every site in `sites` into a fresh store at `root`; return table bytes."""
    from _store_data import activation_rows

    import pyarrow as pa

    store = Store.open(root)
    modality = "speech" if sites[0][0].startswith("speech.") else "text"
    per = n // LANGS
    store.register_points(MODEL, [{"point": s, "modality": modality, "layer": layer, "width": w,
                                   "vector_dtype": vector_dtype} for s, layer, w in sites], random_init=True)
    for site, layer, width in sites:
        tables = [activation_rows(MODEL, site, modality, f"l{li:02d}", np.arange(per),
                                  rng.standard_normal((per, width), dtype=np.float32), layer=layer)
                  for li in range(LANGS)]
        store.write_activations(MODEL, width, pa.concat_tables(tables), vector_dtype=vector_dtype, replace=False)
    store.finalize_model(MODEL, keep_versions=0)
    return table_bytes(root)


def measure(n: int, vector_dtype: str) -> dict[tuple[str, str], dict]:
    groups, _ = site_groups()
    rng = np.random.default_rng(0)
    out = {}
    for key, sites in groups.items():
        with tempfile.TemporaryDirectory() as tmp:
            got = write_group(Path(tmp) / "db", sites, n, vector_dtype, rng)
        raw = sum(w for _, _, w in sites) * n * (2 if vector_dtype == "float16" else 4)
        out[key] = {"bytes": got, "raw": raw, "sites": len(sites), "width": sites[0][2]}
    return out


def gb(x: float) -> str:
    return f"{x / 1e9:7.3f} GB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000, help="items written per site (a multiple of 10)")
    ap.add_argument("--quick", action="store_true", help="20 items, scaled to 1,000 (seconds)")
    add_run_options(ap)
    args = ap.parse_args()
    n = 20 if args.quick else max(LANGS, args.items // LANGS * LANGS)
    scale = 1000 / n
    import lancedb

    _, cfg = site_groups()
    print(f"machine: {machine('lancedb ' + lancedb.__version__)}")
    print(f"data: synthetic normal vectors, {n} items per site ({LANGS} languages), scaled x{scale:g} to "
          f"1,000 items; widths from transformers' SeamlessM4Tv2Config() (= seamless-m4t-v2-large: hidden "
          f"{cfg.hidden_size}, text FFN {cfg.encoder_ffn_dim}/{cfg.decoder_ffn_dim}, conformer FFN "
          f"{cfg.speech_encoder_intermediate_size}, layers {cfg.speech_encoder_layers}/{cfg.encoder_layers}/"
          f"{cfg.decoder_layers}); baseline: float32")
    t0 = time.perf_counter()
    res = {dt: measure(n, dt) for dt in ("float16", "float32")}
    secs = time.perf_counter() - t0
    print(f"{'stack':8} {'site kind':13} {'sites':>5} {'width':>5} {'float16 /1k items':>18} "
          f"{'(raw vectors)':>14} {'float32 /1k items':>18}")
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, r16 in res["float16"].items():
        r32 = res["float32"][key]
        print(f"{key[0]:8} {key[1]:13} {r16['sites']:5d} {r16['width']:5d} {gb(r16['bytes'] * scale):>18} "
              f"{gb(r16['raw'] * scale):>14} {gb(r32['bytes'] * scale):>18}")
        for dt, r in (("float16", r16), ("float32", r32)):
            totals[key[0]][dt] += r["bytes"] * scale
    for stack, t in totals.items():
        print(f"{stack:8} {'all sites':13} {'':5} {'':5} {gb(t['float16']):>18} {'':14} {gb(t['float32']):>18}")
    every = {dt: sum(t[dt] for t in totals.values()) for dt in ("float16", "float32")}
    speech = {dt: totals["speech"][dt] + totals["decoder"][dt] for dt in every}
    text = {dt: totals["text"][dt] + totals["decoder"][dt] for dt in every}
    print(f"per 1,000 speech items (speech encoder + decoder sites): float16 {gb(speech['float16'])}, "
          f"float32 {gb(speech['float32'])}")
    print(f"per 1,000 text items (text encoder + decoder sites):     float16 {gb(text['float16'])}, "
          f"float32 {gb(text['float32'])}")
    print(f"every site of every stack, 1,000 rows each: float16 {gb(every['float16'])}, "
          f"float32 {gb(every['float32'])} ({secs:.0f} s to write and measure)")
    write_summary(args.summary, __file__, f"SeamlessM4T v2 large, every site, {n} items written",
                  f"per 1,000 speech items {speech['float16'] / 1e9:.2f} GB float16 "
                  f"({speech['float32'] / 1e9:.2f} GB float32); text items {text['float16'] / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
