"""Cost of capturing every neuron site of one layer, against the same forward without them.

For Whisper (the tiny random-init model, and the real Whisper base when its weights are
installed) on espeak-ng English sentences, teacher-forced on their transcription:
- encoder: `speech.L{N}` (the whole encoder runs) vs the same + every site of the middle
  encoder layer (ffn, self_attn.q|k|v);
- decoder: `decoder.L{M}` vs the same + every site of the middle decoder layer (ffn,
  self_attn.q|k|v, cross_attn.q|k|v).
Each arm's time is the FASTEST of interleaved repeats of the whole `adapter.encode` (hooks,
pooling and the copy to numpy included): on a shared machine the other processes only ever add
time, so the minimum is the least noisy estimate of the work itself (medians on a busy 2-core
machine moved by +-20%, the tiny model's by a factor of 10).

Run: `python benchmarks/bench_sites.py [--repeats 7] [--batch 4] [--quick]` (`--quick`: the tiny
model only, fewer repeats; what `make bench` runs). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from actstore.ingest.adapters import load_adapter
from actstore.ingest.items import Item
from actstore.ingest.sources.espeak import EspeakSynthesizer
from actstore.ingest.sources.flores import shipped_flores_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import add_run_options, machine, write_summary  # noqa: E402


def _items(n: int, max_chars: int) -> list[Item]:
    lines = (shipped_flores_dir() / "devtest" / "eng_Latn.devtest").read_text().splitlines()
    syn = EspeakSynthesizer()
    out = []
    for i, text in enumerate(t[:max_chars] for t in lines[:n]):
        out.append(Item(i, "eng", "speech", f"s{i}", "devtest", audio=syn.synthesize(text, "en"),
                        target=text, target_lang="eng"))
    return out


def _time(adapter, items, points) -> float:
    t0 = time.perf_counter()
    adapter.encode(items, points)
    return time.perf_counter() - t0


def _ratio(adapter, items, plain, extra, repeats) -> tuple[float, float, float]:
    adapter.encode(items, plain + extra)  # warm up (and load the decoder)
    a, b = [], []
    for _ in range(repeats):
        a.append(_time(adapter, items, plain))
        b.append(_time(adapter, items, plain + extra))
    ma, mb = min(a), min(b)
    return ma, mb, mb / ma - 1


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
        ma, mb, over = _ratio(adapter, items, plain, extra, repeats)
        overheads[arm] = over
        print(f"{label:>22} {arm:8} plain {ma * 1000:8.1f} ms  +{len(extra)} sites {mb * 1000:8.1f} ms  "
              f"overhead {over * 100:+5.1f}%")
    return overheads


def main() -> None:
    import warnings

    warnings.simplefilter("ignore", UserWarning)  # the tiny model's 1 s window truncates
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="the tiny model only, fewer repeats (make bench)")
    add_run_options(ap)
    args = ap.parse_args()
    print(f"machine: {machine()}; data: espeak-ng English FLORES sentences, teacher-forced; "
          "baseline: the same encode without the sites")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from actstore.ingest.adapters.whisper.tiny import build_tiny_whisper

    tiny = load_adapter(str(build_tiny_whisper(tempfile.mkdtemp())))
    repeats = 3 if args.quick else args.repeats
    over = bench("tiny Whisper (random)", tiny, _items(args.batch, 12), repeats * 4)  # 1 s window
    if args.quick:
        write_summary(args.summary, __file__, "tiny random-init Whisper, every site of one layer",
                      f"encoder {over['encoder'] * 100:+.0f}%, decoder {over['decoder'] * 100:+.0f}%")
        return
    try:
        from actstore.ingest.convert.weights import WeightsNotInstalledError, whisper_base_dir

        real = load_adapter(str(whisper_base_dir()))
    except WeightsNotInstalledError as exc:
        print(f"real Whisper base not installed ({exc}): skipped")
        return
    over = bench("Whisper base (real)", real, _items(args.batch, 200), args.repeats)
    write_summary(args.summary, __file__, "Whisper base (real), every site of one layer",
                  f"encoder {over['encoder'] * 100:+.0f}%, decoder {over['decoder'] * 100:+.0f}%")


if __name__ == "__main__":
    main()
