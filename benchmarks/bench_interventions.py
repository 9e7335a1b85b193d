"""Cost of an intervention run: clamped neurons while Whisper decodes, against the same forward
without clamps (issue 16: target <= x1.10).

The work timed is the library call `whisper.intervene.target_loglik` (features, encoder,
teacher-forced decoder over the transcription, log-likelihood of the target), once plain and once
with clamps (`common.clamps.Clamp`, applied by `clamped`'s hooks):
- `1 site`: the top-k units of the middle decoder layer's FFN site (`decoder.L{m}.ffn`), held at
  their median;
- `every decoder FFN`: the top-k units of every decoder layer's FFN site at once.
Which units are "top" does not change the cost, so the top-k here are the k units with the
largest mean pooled activation over the batch (a real run reads them from `analyze
neuron-sites`' table through `interventions.top_units`), held at their median over the batch's
pooled vectors (a real run reads it from the store through `interventions.reference_values`).

Models: the tiny random-init Whisper (1 s window), the real Whisper base (if installed), and a
full-size RANDOM-INIT Whisper with large-v2's sizes (1.55 B parameters; `--no-full-size` skips it,
`--only-full-size` runs it alone; it needs ~7 GB of disk and ~8 GB of memory). A call of that
model takes minutes on a CPU, so it gets `bench_lean`: k random units held at zero, one timed
call per arm. Data: espeak-ng English FLORES devtest sentences,
teacher-forced on their text. Baseline: the same call without clamps. Times: the fastest of
interleaved repeats (`_whisper_bench.fastest`).

Measured (2-core AMD EPYC, shared, load ~14; CPU time, 1 thread): tiny x1.001; real Whisper
base x0.998 (5.76 s plain, batch 4), every decoder FFN site at once x0.992; large-v2-size
random-init x1.040 (31.0 s plain, batch 1, one call per arm). Target <= x1.10: met.

Run: `python benchmarks/bench_interventions.py [--k 20] [--repeats 5] [--batch 4] [--quick]`
(`--quick`: the tiny model only; seconds). Prints; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from _whisper_bench import (parser, espeak_items, fastest, free_gib, full_size_random_whisper,  # noqa: E402
                            ratio_line, real_whisper_base, tiny_whisper)
from actstore.ingest.adapters.common.clamps import Clamp  # noqa: E402
from actstore.ingest.adapters.whisper.intervene import target_loglik  # noqa: E402


def top_clamps(adapter, items, sites: list[str], k: int) -> list[Clamp]:
    """Per site: the k units with the largest mean pooled activation, held at their median over
    the items' pooled vectors (what the store holds and `reference_values` reads), from ONE
    `encode` of every site."""
    pooled = adapter.encode(items, sites)
    out = []
    for site in sites:
        x = pooled[site].vectors
        units = np.sort(np.argsort(-x.mean(0), kind="stable")[: min(k, x.shape[1])])
        out.append(Clamp(site, tuple(int(u) for u in units), torch.from_numpy(np.median(x[:, units], 0))))
    return out


def bench(label: str, adapter, items, k: int, repeats: int) -> dict[str, float]:
    """Ratios (clamped / plain) for one site and for every decoder FFN site."""
    n_dec = adapter.config.decoder_layers
    mid = (n_dec + 1) // 2
    every = top_clamps(adapter, items, [f"decoder.L{i}.ffn" for i in range(1, n_dec + 1)], k)
    one = [every[mid - 1]]
    plain = target_loglik(adapter, items)
    moved = target_loglik(adapter, items, one)
    print(f"{label}: clamping {len(one[0].units)} units of decoder.L{mid}.ffn moves the target "
          f"log-likelihood by {np.abs(moved[0] - plain[0]).max():.3g} nats at most (the hooks act)")
    arms = fastest({"plain": lambda: target_loglik(adapter, items),
                    "1 site": lambda: target_loglik(adapter, items, one),
                    f"every decoder FFN ({n_dec})": lambda: target_loglik(adapter, items, every)},
                   repeats)
    print(ratio_line(f"{label}, batch {len(items)}, k={k}", arms, "plain", target=1.10))
    return {name: t / arms["plain"] for name, t in arms.items() if name != "plain"}


def bench_lean(label: str, adapter, items, k: int) -> dict[str, float]:
    """For a model whose every call takes minutes: k random units of the middle decoder FFN
    (`interventions.random_units`) held at zero (`reference_values(..., "zero")`): no extra
    forward to choose them, the same hooks; one warm-up and one timed call per arm."""
    from actstore.ingest.interventions import random_units, reference_values

    n_dec = adapter.config.decoder_layers
    site = f"decoder.L{(n_dec + 1) // 2}.ffn"
    units = random_units(adapter.config.decoder_ffn_dim, k, 0, site)
    one = [Clamp(site, units, torch.from_numpy(reference_values(None, adapter.model_name, site, units, "zero")))]
    arms = fastest({"plain": lambda: target_loglik(adapter, items),
                    "1 site": lambda: target_loglik(adapter, items, one)}, 1)
    print(ratio_line(f"{label}, batch {len(items)}, k={k} ({site}, random units at zero)", arms, "plain",
                     target=1.10))
    return {"1 site": arms["1 site"] / arms["plain"]}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--no-full-size", action="store_true", help="skip the full-size random-init model")
    ap.add_argument("--only-full-size", action="store_true", help="only the full-size random-init model")
    add_run_options(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine(f'torch {torch.__version__} ({args.threads} threads)')}; data: espeak-ng English FLORES sentences, "
          "teacher-forced on their text; baseline: the same target_loglik call without clamps")
    rows = []
    if not args.only_full_size:
        tiny = bench("tiny Whisper (RANDOM-INIT)", tiny_whisper(), espeak_items(args.batch, 12), args.k,
                     args.repeats * 4)
        rows.append(f"tiny random-init x{tiny['1 site']:.2f}")
    real = None if args.quick else real_whisper_base()
    if real is not None and not args.only_full_size:
        got = bench("Whisper base (real)", real, espeak_items(args.batch, 200), args.k, args.repeats)
        rows.append(f"real base x{got['1 site']:.2f}")
    if real is not None and not args.quick and not args.no_full_size:
        if free_gib() < 8:
            print(f"full-size random-init Whisper skipped: {free_gib():.1f} GiB free in /tmp, needs ~8")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                big = full_size_random_whisper(Path(real.path), Path(tmp))
                got = bench_lean("Whisper large-v2 sizes (RANDOM-INIT)", big, espeak_items(1, 200), args.k)
                rows.append(f"large-v2-size random-init x{got['1 site']:.2f}")
    write_summary(args.summary, __file__, f"Whisper, top-{args.k} of one decoder FFN clamped vs plain",
                  ", ".join(rows) + " (target <= x1.10)")


if __name__ == "__main__":
    main()
