"""What the Whisper benchmarks share (sites, interventions, nnsight): espeak-ng English items with
their transcription as the decoder target, the models (tiny random-init, real base, a full-size
random-init config), and the timing rule.

Timing rule: each arm's time is the process's CPU time (`time.process_time`, every thread of the
process; torch runs one thread by default here, `--threads`), the FASTEST of interleaved
repeats. On a shared machine other processes only ever add time; CPU time leaves out the time
spent waiting for a core, which wall time cannot (with a load average of 10-15 on 2 cores, the
real Whisper base's wall times moved by +-20% between repeats and the minimum of 5 still read a
+16% "overhead" for clamps that cost a copy of one [4, T, 2048] tensor). The fastest wall times
are printed beside it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from actstore.ingest.adapters import load_adapter
from actstore.ingest.items import Item


def espeak_items(n: int, max_chars: int) -> list[Item]:
    """n English FLORES devtest sentences (cut to `max_chars`), spoken by espeak-ng, each with its
    text as the decoder target (transcription)."""
    from actstore.ingest.sources.espeak import EspeakSynthesizer
    from actstore.ingest.sources.flores import shipped_flores_dir

    lines = (shipped_flores_dir() / "devtest" / "eng_Latn.devtest").read_text().splitlines()
    syn = EspeakSynthesizer()
    return [Item(i, "eng", "speech", f"s{i}", "devtest", audio=syn.synthesize(text, "en"),
                 target=text, target_lang="eng")
            for i, text in enumerate(t[:max_chars] for t in lines[:n])]


def fastest(arms: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """CPU seconds per arm: the minimum over `repeats` interleaved calls (after one warm-up call
    each); prints the fastest wall times too."""
    for fn in arms.values():
        fn()
    cpu: dict[str, list[float]] = {name: [] for name in arms}
    wall: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - t0)
    print("  wall time, fastest: " + ", ".join(f"{n} {min(ts) * 1000:.1f} ms" for n, ts in wall.items()))
    return {name: min(ts) for name, ts in cpu.items()}


def tiny_whisper():
    """The tiny random-init Whisper (1 s window, width 32) as an adapter."""
    from actstore.ingest.adapters.whisper.tiny import build_tiny_whisper

    return load_adapter(str(build_tiny_whisper(tempfile.mkdtemp())))


def real_whisper_base():
    """The real Whisper base adapter, or None (with a line saying why) when its weights are absent."""
    from actstore.ingest.convert.weights import WeightsNotInstalledError, whisper_base_dir

    try:
        return load_adapter(str(whisper_base_dir()))
    except WeightsNotInstalledError as exc:
        print(f"real Whisper base not installed ({exc}): skipped")
        return None


#: openai/whisper-large-v2's sizes (80 mel bins and the multilingual vocabulary of Whisper base, so
#: base's tokenizer and feature extractor fit it unchanged)
LARGE_V2 = dict(d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
                decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120,
                num_mel_bins=80, vocab_size=51865)


def full_size_random_whisper(base_dir: Path, out_dir: Path):
    """A random-init Whisper with large-v2's sizes (1.55 B parameters, ~6.2 GB in float32), written
    to `out_dir` with base's tokenizer and feature extractor, loaded as an adapter."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    base = WhisperConfig.from_pretrained(base_dir)
    cfg = WhisperConfig(**{**base.to_dict(), **LARGE_V2})
    cfg.actstore_random_init = True
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg).eval()
    model.save_pretrained(out_dir)
    del model
    for name in ("preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json"):
        if (base_dir / name).exists():
            shutil.copy(base_dir / name, out_dir / name)
    return load_adapter(str(out_dir))


def parser(doc: str):
    """The options every Whisper intervention benchmark takes (the UserWarning of the tiny model's
    1 s window truncating the clips is silenced)."""
    import argparse
    import warnings

    warnings.simplefilter("ignore", UserWarning)
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--k", type=int, default=20, help="units held per site")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="the tiny model only (make bench)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared machine one thread per run keeps "
                         "the ratios steady; the ratio is the number reported, not the time)")
    return ap


def free_gib(path: str = "/tmp") -> float:
    return shutil.disk_usage(path).free / 2**30


def ratio_line(label: str, arms: dict[str, float], base: str, target: float | None = None) -> str:
    """`label: CPU time base 12.3 ms, other 13.0 ms (x1.06)` for every arm against `base`."""
    parts = [f"CPU time {base} {arms[base] * 1000:.1f} ms"]
    for name, t in arms.items():
        if name != base:
            parts.append(f"{name} {t * 1000:.1f} ms (x{t / arms[base]:.3f}"
                         + (f", target <= x{target:.2f}" if target else "") + ")")
    return f"{label}: " + ", ".join(parts)


__all__: Sequence[str] = ("espeak_items", "fastest", "tiny_whisper", "real_whisper_base",
                          "full_size_random_whisper", "ratio_line", "free_gib", "parser")
