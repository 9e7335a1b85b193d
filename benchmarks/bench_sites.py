"""Cost of capturing every neuron site of one layer, against the same forward without them.

For Whisper (the tiny random-init model, and the real Whisper base when its weights are
installed) on espeak-ng English sentences, teacher-forced on their transcription:
- encoder: `speech.L{N}` (the whole encoder runs) vs the same + every site of the middle
  encoder layer (ffn, self_attn.q|k|v);
- decoder: `decoder.L{M}` vs the same + every site of the middle decoder layer (ffn,
  self_attn.q|k|v, cross_attn.q|k|v).
Each arm's time is the FASTEST of interleaved repeats of the whole `adapter.encode` (hooks,
pooling and the copy to numpy included; the rule is `_whisper_bench.fastest`'s). Printed: the
ratio with sites / plain against issue 16's target (<= x1.10).

Measured (2-core AMD EPYC, shared, load ~14; CPU time, 1 thread, fastest of 3): real Whisper
base encoder x1.036 (5.22 s), decoder x0.989 (5.98 s). Target <= x1.10: met.

Run: `python benchmarks/bench_sites.py [--repeats 7] [--batch 4] [--quick]` (`--quick`: the tiny
model only, fewer repeats; what `make bench` runs). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from _whisper_bench import espeak_items, fastest, real_whisper_base, tiny_whisper  # noqa: E402

#: issue 16's bound: capturing every site of a layer costs at most 10% over the plain forward
TARGET = 1.10


def _ratio(adapter, items, plain, extra, repeats) -> tuple[float, float, float]:
    """(plain s, with sites s, ratio): fastest of interleaved repeats of the whole `encode`."""
    got = fastest({"plain": lambda: adapter.encode(items, plain),
                   "sites": lambda: adapter.encode(items, plain + extra)}, repeats)
    return got["plain"], got["sites"], got["sites"] / got["plain"]


def bench(label: str, adapter, items, repeats: int) -> dict[str, float]:
    cfg = adapter.config
    n_enc, n_dec = cfg.encoder_layers, cfg.decoder_layers
    overheads: dict[str, float] = {}
    mid_e, mid_d = (n_enc + 1) // 2, (n_dec + 1) // 2
    opt = adapter.optional_points("speech")
    enc_sites = [p for p in opt if p.startswith(f"speech.L{mid_e}.")]
    dec_sites = [p for p in opt if p.startswith(f"decoder.L{mid_d}.")]
    for arm, plain, extra in (("encoder", [f"speech.L{n_enc}"], enc_sites),
                              ("decoder", [f"decoder.L{n_dec}"], dec_sites)):
        ma, mb, ratio = _ratio(adapter, items, plain, extra, repeats)
        overheads[arm] = ratio
        print(f"{label:>22} {arm:8} CPU time plain {ma * 1000:8.1f} ms  +{len(extra)} sites {mb * 1000:8.1f} ms  "
              f"ratio x{ratio:.3f} (target <= x{TARGET:.2f})")
    return overheads


def main() -> None:
    import warnings

    warnings.simplefilter("ignore", UserWarning)  # the tiny model's 1 s window truncates
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps ratios steady on a shared machine)")
    ap.add_argument("--quick", action="store_true", help="the tiny model only, fewer repeats (make bench)")
    add_run_options(ap)
    args = ap.parse_args()
    print(f"machine: {machine(f'torch {torch.__version__} ({args.threads} threads)')}; data: espeak-ng English FLORES sentences, teacher-forced; "
          "baseline: the same encode without the sites")
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else args.repeats
    over = bench("tiny Whisper (RANDOM-INIT)", tiny_whisper(), espeak_items(args.batch, 12), repeats * 4)  # 1 s window
    if args.quick:
        write_summary(args.summary, __file__, "tiny random-init Whisper, every site of one layer",
                      f"encoder x{over['encoder']:.2f}, decoder x{over['decoder']:.2f} (target <= x{TARGET:.2f})")
        return
    real = real_whisper_base()
    if real is None:
        return
    over = bench("Whisper base (real)", real, espeak_items(args.batch, 200), args.repeats)
    write_summary(args.summary, __file__, "Whisper base (real), every site of one layer",
                  f"encoder x{over['encoder']:.2f}, decoder x{over['decoder']:.2f} (target <= x{TARGET:.2f})")


if __name__ == "__main__":
    main()
