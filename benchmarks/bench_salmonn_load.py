"""Loading SALMONN-7B in bfloat16: peak RSS and load time against the parameter bytes.

Why: a 7B LLM in float32 is 27 GB and does not fit a 24 GB machine; the adapter must read every
part directly in the requested dtype (transformers' meta-device init + memory-mapped shards for
the LLM; `torch.load(mmap=True, weights_only=True)` + `assign` for BEATs and the SALMONN
checkpoint). This benchmark writes a FULL-SIZE, random-initialised SALMONN-7B-shaped model in the
released formats and loads it through the adapter (`load_adapter(dir, dtype="bfloat16")`):

- Vicuna-7B: hidden 4096, 32 layers, 32 heads, FFN 11008, vocab 32000; bfloat16 safetensors
  shards (<= 2 GB) + index, as `save_pretrained` writes them (lm_head included on disk);
- Whisper-large-v2 encoder (d 1280, 32 layers, 20 heads, FFN 5120; only `model.encoder.*` is
  written: the adapter never reads the decoder), bfloat16;
- BEATs base (iter3+ cpt2 cfg: 12 layers, 768 wide, patch embedding 512), original `.pt` format;
- SALMONN checkpoint: 2-layer Q-Former (768 wide, cross-attention to 1280 + 768), LoRA r=8 on
  q_proj/v_proj of all 32 layers, projection 768 -> 4096, in float32 as SALMONN saves it.

Peak RSS is `ru_maxrss` of a fresh process that only imports and loads (the model is written by
another process first). Reported: parameter bytes of the loaded model, peak RSS, peak RSS minus
the process's RSS before loading, their ratio to the parameter bytes, and the load time. A load
that went through a float32 copy of the LLM would show a ratio near 2 or more.

Run: `python benchmarks/bench_salmonn_load.py [--small] [--dir D] [--keep]`
(`--small` or `--quick`: the same pipeline at ~100 MB, for a quick check; the full size needs ~16 GB
of disk and about as much memory.) Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import add_run_options, machine, write_summary  # noqa: E402

FULL = {
    "llm": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                vocab_size=32000),
    "whisper": dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120),
    "beats": dict(embed_dim=512, encoder_layers=12, encoder_embed_dim=768, encoder_ffn_embed_dim=3072,
                  encoder_attention_heads=12),
    "qformer": dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072, layers=2),
}
SMALL = {
    "llm": dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=4, num_attention_heads=8,
                vocab_size=32000),
    "whisper": dict(d_model=256, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=1024),
    "beats": dict(embed_dim=128, encoder_layers=2, encoder_embed_dim=192, encoder_ffn_embed_dim=768,
                  encoder_attention_heads=4),
    "qformer": dict(hidden_size=192, num_attention_heads=4, intermediate_size=768, layers=2),
}
SHARD_BYTES = 2 * 1024**3


def _random(name: str, shape, dtype, gen) -> torch.Tensor:
    """Random weights shaped like a trained model's: norms ~1, biases 0, matrices N(0, 0.02)."""
    if "norm" in name.lower() and name.endswith("weight"):
        return torch.ones(shape, dtype=dtype)
    if name.endswith("bias"):
        return torch.zeros(shape, dtype=dtype)
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * 0.02).to(dtype)


def write_shards(out: Path, params: list[tuple[str, tuple]], dtype: torch.dtype, seed: int,
                 stem: str = "model") -> int:
    """Write random `params` as safetensors shards (+ index when > 1), one shard in memory at a time."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    shards, current, size, total = [], {}, 0, 0
    for name, shape in params:
        t = _random(name, shape, dtype, gen)
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            path = out / f"{stem}-part{len(shards)}.safetensors"
            save_file(current, str(path), metadata={"format": "pt"})
            shards[-1] = (path, list(current))
            current, size = {}, 0
        current[name] = t
        size += nbytes
        total += nbytes
    if not shards:
        save_file(current, str(out / f"{stem}.safetensors"), metadata={"format": "pt"})
        return total
    shards.append(None)
    path = out / f"{stem}-part{len(shards)}.safetensors"
    save_file(current, str(path), metadata={"format": "pt"})
    shards[-1] = (path, list(current))
    n = len(shards)
    weight_map = {}
    for i, (path, names) in enumerate(shards, 1):
        final = out / f"{stem}-{i:05d}-of-{n:05d}.safetensors"
        path.rename(final)
        weight_map.update({k: final.name for k in names})
    (out / f"{stem}.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    return total


def _meta_shapes(module: torch.nn.Module, prefix: str = "") -> list[tuple[str, tuple]]:
    return [(prefix + n, tuple(p.shape)) for n, p in module.named_parameters()]


def build(out: Path, shapes: dict, seed: int = 0) -> dict:
    """Write the SALMONN-shaped model to `out`; returns bytes written per part."""
    import yaml
    from transformers import (BertConfig, LlamaConfig, LlamaForCausalLM, WhisperConfig,
                              WhisperFeatureExtractor)
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from actstore.ingest.adapters.salmonn.beats import Beats, BeatsConfig
    from actstore.ingest.adapters.common.tiny import flores_texts as _flores_texts
    from actstore.ingest.adapters.salmonn.tiny import _write_tokenizer, beats_cfg, decode_config, train_llama_spm

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    bf16 = torch.bfloat16

    # Vicuna-shaped LLaMA, bfloat16 shards
    vic = out / "vicuna"
    vic.mkdir(exist_ok=True)
    texts = [t for t in _flores_texts() if t.isascii()][:2000]
    _write_tokenizer(vic, train_llama_spm(texts, 1000))
    lc = LlamaConfig(**shapes["llm"], rms_norm_eps=1e-5, max_position_embeddings=4096, bos_token_id=1,
                     eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    lc.actstore_random_init = True
    lc.dtype = bf16
    with torch.device("meta"):
        llm = LlamaForCausalLM(lc)
    written["llm"] = write_shards(vic, _meta_shapes(llm), bf16, seed)
    lc.save_pretrained(vic)
    del llm

    # Whisper encoder (HF dir, WhisperForConditionalGeneration names)
    wd = out / "whisper"
    wd.mkdir(exist_ok=True)
    w = shapes["whisper"]
    wc = WhisperConfig(num_mel_bins=80, max_source_positions=1500, decoder_layers=w["encoder_layers"],
                       decoder_attention_heads=w["encoder_attention_heads"], decoder_ffn_dim=w["encoder_ffn_dim"],
                       vocab_size=51865, **w)
    wc.actstore_random_init = True
    wc.dtype = bf16
    with torch.device("meta"):
        enc = WhisperEncoder(wc)
    written["whisper_encoder"] = write_shards(wd, _meta_shapes(enc, "model.encoder."), bf16, seed + 1)
    wc.save_pretrained(wd)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(wd)
    del enc

    # BEATs, original format (weight-norm pos_conv, per-layer bias table aliases, predictor)
    cfg = dict(beats_cfg(), **shapes["beats"])
    with torch.device("meta"):
        beats = Beats(BeatsConfig.from_dict(cfg))
    gen = torch.Generator().manual_seed(seed + 2)
    sd = {}
    for name, shape in _meta_shapes(beats):
        t = _random(name, shape, bf16, gen)
        if name == "encoder.pos_conv.weight":
            sd["encoder.pos_conv.0.weight_v"] = t
            sd["encoder.pos_conv.0.weight_g"] = torch.ones((1, 1, shape[2]), dtype=bf16)
        elif name == "encoder.pos_conv.bias":
            sd["encoder.pos_conv.0.bias"] = t
        else:
            sd[name] = t
    for i in range(1, cfg["encoder_layers"]):
        sd[f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"] = \
            sd["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    sd["predictor.weight"] = _random("predictor.weight", (527, cfg["encoder_embed_dim"]), bf16, gen)
    sd["predictor.bias"] = torch.zeros(527, dtype=bf16)
    (out / "beats").mkdir(exist_ok=True)
    torch.save({"cfg": cfg, "model": sd}, out / "beats" / "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt")
    written["beats"] = sum(t.numel() * t.element_size() for t in sd.values())
    del beats, sd

    # SALMONN checkpoint (float32, SALMONN's names) and the BERT config of the Q-Former
    q = shapes["qformer"]
    H, D, enc_w = shapes["llm"]["hidden_size"], q["hidden_size"], w["d_model"] + cfg["encoder_embed_dim"]
    ck = {"speech_query_tokens": _random("q", (1, 1, D), torch.float32, gen),
          "speech_Qformer.bert.embeddings.LayerNorm.weight": torch.ones(D),
          "speech_Qformer.bert.embeddings.LayerNorm.bias": torch.zeros(D),
          "speech_llama_proj.weight": _random("w", (H, D), torch.float32, gen),
          "speech_llama_proj.bias": torch.zeros(H),
          "ln_speech.weight": torch.ones(w["d_model"]), "ln_speech.bias": torch.zeros(w["d_model"]),
          "ln_audio.weight": torch.ones(cfg["encoder_embed_dim"]), "ln_audio.bias": torch.zeros(cfg["encoder_embed_dim"])}
    for i in range(q["layers"]):
        p = f"speech_Qformer.bert.encoder.layer.{i}."
        for att, kv in (("attention", D), ("crossattention", enc_w)):
            for proj, width in (("query", D), ("key", kv), ("value", kv)):
                ck[f"{p}{att}.self.{proj}.weight"] = _random("w", (D, width), torch.float32, gen)
                ck[f"{p}{att}.self.{proj}.bias"] = torch.zeros(D)
            ck[f"{p}{att}.output.dense.weight"] = _random("w", (D, D), torch.float32, gen)
            ck[f"{p}{att}.output.dense.bias"] = torch.zeros(D)
            ck[f"{p}{att}.output.LayerNorm.weight"], ck[f"{p}{att}.output.LayerNorm.bias"] = torch.ones(D), torch.zeros(D)
        ck[f"{p}intermediate_query.dense.weight"] = _random("w", (q["intermediate_size"], D), torch.float32, gen)
        ck[f"{p}intermediate_query.dense.bias"] = torch.zeros(q["intermediate_size"])
        ck[f"{p}output_query.dense.weight"] = _random("w", (D, q["intermediate_size"]), torch.float32, gen)
        ck[f"{p}output_query.dense.bias"] = torch.zeros(D)
        ck[f"{p}output_query.LayerNorm.weight"], ck[f"{p}output_query.LayerNorm.bias"] = torch.ones(D), torch.zeros(D)
    for i in range(shapes["llm"]["num_hidden_layers"]):
        for proj in ("q_proj", "v_proj"):
            pre = f"llama_model.base_model.model.model.layers.{i}.self_attn.{proj}"
            ck[f"{pre}.lora_A.default.weight"] = _random("w", (8, H), torch.float32, gen)
            ck[f"{pre}.lora_B.default.weight"] = _random("w", (H, 8), torch.float32, gen)
    torch.save({"model": ck}, out / "salmonn_7b_shaped.pth")
    written["salmonn_ckpt"] = sum(t.numel() * t.element_size() for t in ck.values())
    (out / "bert-base-uncased").mkdir(exist_ok=True)
    BertConfig(hidden_size=D, num_attention_heads=q["num_attention_heads"],
               intermediate_size=q["intermediate_size"]).to_json_file(out / "bert-base-uncased" / "config.json")
    dc = decode_config(ckpt="salmonn_7b_shaped.pth", beats="beats/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt")
    dc["actstore"]["note"] = "random-initialised SALMONN-7B-shaped model written by benchmarks/bench_salmonn_load.py"
    (out / "decode_config.yaml").write_text(yaml.safe_dump(dc, sort_keys=False))
    return written


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load_and_measure(model_dir: str, dtype: str) -> dict:
    """In THIS process: import, then load through the adapter; ru_maxrss covers the load."""
    from actstore.ingest.adapters import load_adapter
    import transformers, peft  # noqa: F401,E401 - imports are part of the baseline, not the load

    before = _rss_bytes()
    t0 = time.perf_counter()
    adapter = load_adapter(model_dir, dtype=dtype)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    m = adapter.model
    tensors = list(m.parameters()) + list(m.buffers())
    param_bytes = sum(t.numel() * t.element_size() for t in tensors)
    # Memory-mapped weights are paged in lazily, so the load's peak undercounts what a forward
    # needs; read one element per 4 KiB page of every tensor to page everything in, then measure.
    t1 = time.perf_counter()
    with torch.no_grad():
        for t in tensors:
            flat = t.detach().reshape(-1)
            step = max(1, 4096 // t.element_size())
            float(flat[::step].float().sum())
    touch_seconds = time.perf_counter() - t1
    peak_paged = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    by_dtype: dict[str, int] = {}
    for t in tensors:
        by_dtype[str(t.dtype)] = by_dtype.get(str(t.dtype), 0) + t.numel() * t.element_size()
    return {"dtype": dtype, "load_seconds": round(seconds, 2), "param_bytes": param_bytes,
            "param_bytes_by_dtype": by_dtype, "n_params": sum(t.numel() for t in m.parameters()),
            "rss_before_load": before, "peak_rss": peak, "rss_after_load": _rss_bytes(),
            "peak_minus_before_over_params": round((peak - before) / param_bytes, 3),
            "peak_over_params": round(peak / param_bytes, 3),
            "page_in_seconds": round(touch_seconds, 2), "peak_rss_paged_in": peak_paged,
            "peak_paged_minus_before_over_params": round((peak_paged - before) / param_bytes, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", "--quick", action="store_true", help="~100 MB instead of ~16 GB")
    ap.add_argument("--dir", help="where to write the model (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the written model")
    ap.add_argument("--reuse", action="store_true", help="load the model already written in --dir")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--_load", help=argparse.SUPPRESS)
    add_run_options(ap)
    args = ap.parse_args()
    if args._load:
        print(json.dumps(load_and_measure(args._load, args.dtype)))
        return
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="salmonn_bench_"))
    try:
        t0 = time.perf_counter()
        if args.reuse and args.dir and (root / "decode_config.yaml").is_file():
            written = {"llm": 0}
        else:
            build_out = subprocess.run([sys.executable, "-c", (
            "import json,sys; sys.path.insert(0, %r); import bench_salmonn_load as b; from pathlib import Path;"
            "print(json.dumps(b.build(Path(%r), b.%s)))") % (str(Path(__file__).parent), str(root),
                                                            "SMALL" if args.small else "FULL")],
                check=True, capture_output=True, text=True)
            written = json.loads(build_out.stdout.strip().splitlines()[-1])
        build_s = time.perf_counter() - t0
        res = subprocess.run([sys.executable, __file__, "--_load", str(root), "--dtype", args.dtype],
                             check=True, capture_output=True, text=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    gib = 1024**3
    print(f"machine: {machine(f'torch {torch.__version__}')}")
    print(f"SALMONN-7B-shaped ({'small' if args.small else 'full size'}), random init; built in {build_s:.0f} s "
          f"({sum(written.values()) / gib:.2f} GiB written: " + ", ".join(f"{k} {v / gib:.2f}" for k, v in written.items()) + ")")
    print(f"load through the adapter in {r['dtype']}: {r['load_seconds']:.1f} s, {r['n_params'] / 1e9:.3f} B params, "
          f"{r['param_bytes'] / gib:.2f} GiB in memory (" + ", ".join(f"{k} {v / gib:.2f}" for k, v in r['param_bytes_by_dtype'].items()) + ")")
    print(f"RSS before load {r['rss_before_load'] / gib:.2f} GiB, peak {r['peak_rss'] / gib:.2f} GiB, "
          f"after {r['rss_after_load'] / gib:.2f} GiB; (peak - before) / param bytes = "
          f"{r['peak_minus_before_over_params']:.2f}")
    print(f"after paging every weight in ({r['page_in_seconds']:.1f} s): peak {r['peak_rss_paged_in'] / gib:.2f} GiB; "
          f"(peak - before) / param bytes = {r['peak_paged_minus_before_over_params']:.2f} "
          "(a float32 intermediate copy would show >= 2)")
    print(json.dumps({"written": written, "build_seconds": round(build_s, 1), **r}))
    write_summary(args.summary, __file__,
                  f"SALMONN-7B-shaped random-init ({'small' if args.small else 'full size'}), {r['dtype']}, "
                  f"{r['n_params'] / 1e9:.2f} B params",
                  f"load {r['load_seconds']:.1f} s; peak RSS after paging in {r['peak_rss_paged_in'] / gib:.2f} GiB "
                  f"= {r['peak_paged_minus_before_over_params']:.2f} x parameter bytes (a float32 copy would be >= 2)")


if __name__ == "__main__":
    main()
