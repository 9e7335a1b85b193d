"""nnsight vs the adapters' own hooks for one intervention on Whisper (issue 16, item 4's choice).

The same intervention both ways on the same modules: the top-k units of the middle decoder
layer's FFN site (fc2's input) held at constants while the encoder runs and the decoder reads
the transcription teacher-forced.
- `hooks`: `common.clamps.clamped` (a forward pre-hook on fc2; what `actstore intervene` uses);
- `nnsight`: `NNsight(model).trace(...)` with `model.decoder.layers[i].fc2.input[..., units] = v`;
- `plain`: the same forward without any intervention (baseline), and `nnsight, no edit`: the
  trace alone (nnsight's own overhead).
The model is one `nn.Module` holding the adapter's encoder and decoder (`EncDec`), so every arm
runs exactly the same forward. Outputs: max |diff| between the two intervened runs of the
decoder's log-probabilities at every valid target position (and of plain vs intervened, to show
the intervention acts). Wall time: the fastest of interleaved repeats (`_whisper_bench.fastest`).
Memory (not in `--quick`): each arm in a fresh child process (`--child`): resident memory after
loading (nnsight imported or not), and the peak growth while it runs the arm 3 times (VmHWM
after a reset).

Models: the tiny random-init Whisper and the real Whisper base (if installed). Data: espeak-ng
English FLORES devtest sentences. Needs `nnsight` (`pip install actstore[bench]`); without it
the benchmark says so and exits 0.

Measured (2-core AMD EPYC, shared; CPU time, 1 thread; nnsight 0.8.1): outputs bitwise equal on
both models; vs plain, hooks / nnsight: tiny x1.056 / x1.105, real base x1.039 / x0.998 (5.72 s
plain): the same cost within this machine's +-4% noise; base memory after load 513 / 518 MiB.

Run: `python benchmarks/bench_nnsight.py [--k 20] [--repeats 5] [--batch 4] [--quick]`
(`--quick`: tiny model only; seconds). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from _whisper_bench import parser, espeak_items, fastest, ratio_line, real_whisper_base, tiny_whisper  # noqa: E402
from actstore.ingest.adapters.common.clamps import Clamp, clamped  # noqa: E402
from actstore.ingest.adapters.whisper import decoding  # noqa: E402
from actstore.ingest.adapters.whisper.intervene import whisper_sites  # noqa: E402
from actstore.ingest.items import SAMPLE_RATE  # noqa: E402


class EncDec(torch.nn.Module):
    """The adapter's encoder and decoder as one module: features + target ids -> the decoder's
    log-probabilities (tied output embedding), as `whisper.intervene.target_loglik` computes them."""

    def __init__(self, encoder, decoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, input_features, input_ids, attention_mask):
        enc = self.encoder(input_features=input_features).last_hidden_state
        h = self.decoder(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=enc,
                         use_cache=False).last_hidden_state
        return torch.log_softmax((h @ self.decoder.embed_tokens.weight.T).float(), -1)


def setup(model: str, batch: int, k: int):
    """(adapter, EncDec, inputs, site name, layer index, units, values) for one model."""
    adapter = tiny_whisper() if model == "tiny" else real_whisper_base()
    items = espeak_items(batch, 12 if model == "tiny" else 200)
    dec = adapter._load_decoder()
    fe = adapter.feature_extractor
    x = torch.cat([fe(np.asarray(it.audio, np.float32), sampling_rate=SAMPLE_RATE,
                      return_tensors="pt")["input_features"] for it in items]).to(adapter.device)
    ids, mask = decoding.target_ids(adapter.tokenizer, items, adapter.device,
                                    adapter.config.max_target_positions)
    layer = (len(dec.layers) + 1) // 2
    width = dec.layers[layer - 1].fc2.in_features
    units = tuple(int(u) for u in np.sort(np.random.default_rng(0).choice(width, min(k, width), replace=False)))
    values = torch.linspace(-1.0, 3.0, len(units))
    return adapter, EncDec(adapter.encoder, dec).eval(), (x, ids, mask.long()), layer, units, values, mask


def arms(adapter, model, inputs, layer, units, values) -> dict:
    """The four ways to run the forward, as zero-argument callables returning log-probabilities."""
    sites = whisper_sites(adapter)
    clamp = [Clamp(f"decoder.L{layer}.ffn", units, values)]
    out: dict = {"plain": lambda: model(*inputs)}

    def hooks():
        with clamped(sites, clamp):
            return model(*inputs)

    out["hooks"] = hooks
    try:
        from nnsight import NNsight
    except ImportError:
        return out
    traced, idx = NNsight(model), list(units)

    def nn_edit():
        with traced.trace(*inputs):
            traced.decoder.layers[layer - 1].fc2.input[..., idx] = values
            got = traced.output.save()
        return got

    def nn_plain():
        with traced.trace(*inputs):
            got = traced.output.save()
        return got

    out["nnsight"], out["nnsight, no edit"] = nn_edit, nn_plain
    return out


def _status_mib(field: str) -> float:
    """A `VmRSS`/`VmHWM` line of /proc/self/status, in MiB."""
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def child(model: str, arm: str, batch: int, k: int) -> None:
    """Print resident memory after setup and the peak growth over 3 runs of `arm` (JSON, MiB).

    The peak is reset to the current size after setup (`/proc/self/clear_refs` 5, Linux), so the
    growth is the arm's own working memory, not the loading's peak."""
    if arm.startswith("nnsight"):
        import nnsight  # noqa: F401
    with torch.no_grad():
        run = arms(*setup(model, batch, k)[:6])[arm]
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_mib("VmRSS")
        for _ in range(3):
            run()
        peak = _status_mib("VmHWM")
    print(json.dumps({"loaded_mib": before, "growth_mib": peak - before}))


def memory(model: str, names, batch: int, k: int) -> dict[str, dict]:
    out = {}
    for arm in names:
        done = subprocess.run([sys.executable, __file__, "--child", model, arm, "--batch", str(batch), "--k", str(k),
                               "--threads", str(torch.get_num_threads())],
                              capture_output=True, text=True)
        out[arm] = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    return out


def bench(model: str, label: str, batch: int, k: int, repeats: int, quick: bool = False) -> dict:
    adapter, mod, inputs, layer, units, values, mask = setup(model, batch, k)
    with torch.no_grad():
        fns = arms(adapter, mod, inputs, layer, units, values)
        if "nnsight" not in fns:
            print("nnsight is not installed (pip install actstore[bench]): only the hooks were run")
            return {}
        plain, hk, nn = fns["plain"](), fns["hooks"](), fns["nnsight"]()
        valid = mask.bool()
        diff = float((hk - nn)[valid].abs().max())
        acts = float((hk - plain)[valid].abs().max())
        times = fastest(fns, repeats)
    print(f"{label}: {len(units)} units of decoder.L{layer}.ffn held at constants; max |log-prob diff| "
          f"hooks vs nnsight {diff:.3g} (bitwise equal: {bool(torch.equal(hk, nn))}); "
          f"intervened vs plain {acts:.3g}")
    print(ratio_line(f"{label}, batch {batch}", times, "plain"))
    mem = {} if quick else memory(model, list(fns), batch, k)
    for arm, m in mem.items():
        print(f"{label}: {arm:17} memory after load {m['loaded_mib']:7.0f} MiB, peak growth while running "
              f"{m['growth_mib']:6.0f} MiB" if m else f"{label}: {arm}: child failed")
    return {"diff": diff, "hooks": times["hooks"] / times["plain"], "nnsight": times["nnsight"] / times["plain"],
            "nn_vs_hooks": times["nnsight"] / times["hooks"]}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "ARM"), help=argparse.SUPPRESS)
    add_run_options(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        return child(*args.child, args.batch, args.k)
    try:
        import nnsight

        version = f"nnsight {nnsight.__version__}"
    except ImportError:
        version = "nnsight not installed"
    print(f"machine: {machine(f'torch {torch.__version__} ({args.threads} threads)', version)}; data: espeak-ng English FLORES "
          "sentences, teacher-forced; baseline: the same forward without intervention")
    rows = []
    got = bench("tiny", "tiny Whisper (RANDOM-INIT)", args.batch, args.k, args.repeats * 4, args.quick)
    if got:
        rows.append(f"tiny: nnsight/hooks x{got['nn_vs_hooks']:.2f}, max diff {got['diff']:.1g}")
    from actstore.ingest.convert.weights import WeightsNotInstalledError, whisper_base_dir

    try:
        have_real = not args.quick and whisper_base_dir() is not None
    except WeightsNotInstalledError as exc:
        print(f"real Whisper base not installed ({exc}): skipped")
        have_real = False
    if have_real and got:
        real = bench("real", "Whisper base (real)", args.batch, args.k, args.repeats)
        rows.append(f"base: nnsight/hooks x{real['nn_vs_hooks']:.2f}, max diff {real['diff']:.1g}")
    write_summary(args.summary, __file__, f"Whisper, {args.k} decoder FFN units held: nnsight vs hooks",
                  "; ".join(rows) or "nnsight not installed")


if __name__ == "__main__":
    main()
