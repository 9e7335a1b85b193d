"""Where a SALMONN model's parts live and how its checkpoint's keys map onto ours.

A SALMONN release is not one directory: SALMONN's `configs/decode_config.yaml` names every part
under `model:` -- `whisper_path` (HF Whisper dir), `beats_path` (original BEATs .pt), `llama_path`
(HF Vicuna/LLaMA dir), `ckpt` (`salmonn*.pth`, `{'model': trainable weights}`), plus the window,
query, LoRA and prompt settings. The Q-Former's BERT config comes from `bert-base-uncased`, which
SALMONN fetches by that name: we look for a `bert-base-uncased/config.json` next to the decode
config or in the working directory, then the HF cache, and otherwise use BERT-base's values
(transformers' `BertConfig()` defaults, which are bert-base-uncased's).

Paths in the decode config are resolved relative to the config's own directory first, then the
working directory (SALMONN runs from its repository root), then as Hugging Face hub ids in the
local cache (`openai/whisper-large-v2`, `lmsys/vicuna-13b-v1.1`). `options` of the same names
(`whisper_path`, `beats_path`, `llama_path`, `ckpt`) override the config's.

The checkpoint holds what SALMONN trained (runner.save_checkpoint drops frozen weights):
`speech_Qformer.bert.*`, `speech_query_tokens`, `speech_llama_proj.*`, `ln_speech.*`,
`ln_audio.*` and the LoRA matrices `llama_model.base_model.model.model.layers.N.self_attn.
{q,v}_proj.lora_{A,B}[.default].weight` (peft naming; with or without the adapter name), and
persistent buffers nobody needs (`position_ids`, `rotary_emb.inv_freq`). It can also hold
`beats.*` keys: SALMONN's saver keeps the per-layer aliases of BEATs' shared relative-position
table (skipped: they are layer 0's tensor); any other encoder weight it holds (`beats.*`,
`speech_encoder.*`) overrides the encoder's, as SALMONN's non-strict load does. It is read memory-mapped
with the restricted unpickler (`weights_only=True`), and only its `['model']` entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from actstore.errors import UnknownModelError

DECODE_CONFIG_NAMES = ("decode_config.yaml", "decode_config.yml")
PATH_KEYS = ("whisper_path", "beats_path", "llama_path", "ckpt")
#: SALMONN's LLM prompt template and instruction wrapper (configs/decode_config.yaml, cli_inference.py)
DEFAULT_TEMPLATE = "USER: {}\nASSISTANT:"
SPEECH_INSTRUCTION = "<Speech><SpeechHere></Speech> "
SPEECH_SLOT = "<SpeechHere>"


def _read_yaml(path: Path) -> dict | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _is_salmonn_config(data: dict | None) -> bool:
    model = (data or {}).get("model")
    return isinstance(model, dict) and all(k in model for k in ("whisper_path", "llama_path", "ckpt"))


def find_decode_config(directory: Path) -> Path | None:
    """The SALMONN decode config in `directory` (decode_config.yaml first, else any *.yaml)."""
    if not directory.is_dir():
        return None
    candidates = [directory / n for n in DECODE_CONFIG_NAMES if (directory / n).is_file()]
    candidates += sorted(p for p in directory.iterdir()
                         if p.suffix in (".yaml", ".yml") and p not in candidates and p.is_file())
    for path in candidates:
        if _is_salmonn_config(_read_yaml(path)):
            return path
    return None


def has_qformer_keys(path: Path) -> bool:
    """True if `path` is a torch checkpoint whose ['model'] holds SALMONN's speech Q-Former.

    Memory-mapped only: recognition must stay cheap, so a pre-zip-format file (which would have
    to be read whole) is not recognised here; name it with --adapter salmonn instead."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
        return False
    model = ckpt.get("model") if isinstance(ckpt, dict) else None
    return isinstance(model, dict) and any(k.startswith("speech_Qformer.") for k in model)


def _hf_cached(repo_id: str) -> Path | None:
    from actstore.ingest.model_paths import _from_hf_cache

    return _from_hf_cache(repo_id, None) if re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id) else None


def resolve_part(value: str, key: str, config_path: Path) -> Path:
    """A decode-config path: relative to the config, then the working directory, then the HF cache.

    `config_path` may be the checkpoint itself when no decode config exists (paths then come from
    options and resolve relative to the checkpoint's directory)."""
    p = Path(str(value)).expanduser()
    tries = [p] if p.is_absolute() else [config_path.parent / p, Path.cwd() / p]
    for t in tries:
        if t.exists():
            return t.resolve()
    cached = _hf_cached(str(value))
    if cached is not None:
        return cached
    raise UnknownModelError(
        f"The SALMONN decode config {config_path} names {key}: {value!r}, which is neither a path "
        f"(relative to {config_path.parent} or the working directory) nor in the Hugging Face cache; "
        f"fix the path in the config or pass the option {key}=PATH.")


@dataclass
class SalmonnParts:
    """Every file of one SALMONN model and the decode settings that shape its computation."""

    decode_config: Path
    whisper: Path
    beats: Path | None
    llama: Path
    ckpt: Path
    bert_config: Path | None
    prompt_template: str
    second_per_window: float
    second_stride: float
    num_query_tokens: int
    lora: bool
    lora_rank: int
    lora_alpha: float
    lora_dropout: float
    random_init: bool = False
    settings: dict = field(default_factory=dict)

    @property
    def kernel_frames(self) -> int:
        """Window length in Whisper frames: round(1500 * seconds / 30), as SALMONN computes it."""
        return round(1500 * self.second_per_window / 30.0)

    @property
    def stride_frames(self) -> int:
        return round(1500 * self.second_stride / 30.0)


def _bert_config_dir(config_path: Path) -> Path | None:
    for base in (config_path.parent, Path.cwd()):
        if (base / "bert-base-uncased" / "config.json").is_file():
            return base / "bert-base-uncased"
    cached = _hf_cached("google-bert/bert-base-uncased") or _hf_cached("bert-base-uncased")
    return cached if cached is not None and (cached / "config.json").is_file() else None


#: the `model:` section of SALMONN's released configs/decode_config.yaml, without its paths
SALMONN_DECODE_DEFAULTS = {
    "freeze_whisper": True, "freeze_beats": True, "use_speech_Qformer": True,
    "freeze_speech_QFormer": False, "window_level_Qformer": True, "num_speech_query_token": 1,
    "second_per_window": 0.333333, "second_stride": 0.333333, "speech_llama_proj_model": "",
    "freeze_speech_llama_proj": False, "lora": True, "lora_rank": 8, "lora_alpha": 32,
    "lora_dropout": 0.1, "multi_prompt": True, "prompt_template": DEFAULT_TEMPLATE,
    "prompt_path": "", "test_prompt_path": "", "max_txt_len": 300, "end_sym": "</s>",
}


def read_parts(config_path: Path | None, overrides: dict | None = None, ckpt: Path | None = None) -> SalmonnParts:
    """Parse a decode config; `overrides` (adapter options) replace its paths, `ckpt` its checkpoint.

    Without a decode config (`config_path=None`, a bare `salmonn*.pth`), SALMONN's released
    decode settings are used and the options must name whisper_path and llama_path (beats_path
    too for the released models)."""
    if config_path is None:
        given = {k: v for k, v in (overrides or {}).items() if v}
        if ckpt is None or not {"whisper_path", "llama_path"} <= set(given):
            raise UnknownModelError(
                f"No SALMONN decode config next to {ckpt}; put SALMONN's decode_config.yaml there, or "
                "pass the options whisper_path=DIR, beats_path=FILE and llama_path=DIR.")
        data = {"model": {**SALMONN_DECODE_DEFAULTS, "ckpt": str(ckpt), "beats_path": "", **given}}
        config_path = ckpt
    else:
        data = _read_yaml(config_path)
    if not _is_salmonn_config(data):
        raise UnknownModelError(f"{config_path} is not a SALMONN decode config (needs model: "
                                "whisper_path, llama_path, ckpt); pass SALMONN's decode_config.yaml.")
    m = dict(data["model"])
    for key in PATH_KEYS:
        if overrides and overrides.get(key):
            m[key] = overrides[key]
    if not m.get("use_speech_Qformer", True) or not m.get("window_level_Qformer", True):
        raise UnknownModelError(f"{config_path} disables the window-level Q-Former; only SALMONN's "
                                "released setting (use_speech_Qformer and window_level_Qformer true) is supported.")
    beats = m.get("beats_path") or None
    marker = data.get("actstore") if isinstance(data.get("actstore"), dict) else {}
    return SalmonnParts(
        decode_config=config_path,
        whisper=resolve_part(m["whisper_path"], "whisper_path", config_path),
        beats=resolve_part(beats, "beats_path", config_path) if beats else None,
        llama=resolve_part(m["llama_path"], "llama_path", config_path),
        ckpt=ckpt if ckpt is not None else resolve_part(m["ckpt"], "ckpt", config_path),
        bert_config=_bert_config_dir(config_path),
        prompt_template=str(m.get("prompt_template") or DEFAULT_TEMPLATE),
        second_per_window=float(m.get("second_per_window", 0.333333)),
        second_stride=float(m.get("second_stride", 0.333333)),
        num_query_tokens=int(m.get("num_speech_query_token", 1)),
        lora=bool(m.get("lora", True)),
        lora_rank=int(m.get("lora_rank", 8)),
        lora_alpha=float(m.get("lora_alpha", 32)),
        lora_dropout=float(m.get("lora_dropout", 0.1)),
        random_init=bool(marker.get("random_init", False)),
        settings=m,
    )


# -- checkpoint ------------------------------------------------------------------------------
@dataclass
class SalmonnWeights:
    """The checkpoint's tensors, grouped by the module they belong to (our names)."""

    qformer: dict            # Blip2QFormerModel state dict
    query_tokens: torch.Tensor
    proj: dict               # speech_llama_proj: weight, bias
    ln_speech: dict
    ln_audio: dict
    llm: dict                # LlamaModel names (LoRA as `...q_proj.lora_A.default.weight`)
    beats: dict = field(default_factory=dict)    # encoder weights a checkpoint overrides (rare)
    whisper: dict = field(default_factory=dict)


_LLM_PREFIX = re.compile(r"^llama_model\.(?:base_model\.model\.)?(?:model\.)?")
_LORA = re.compile(r"\.(lora_[AB])\.weight$")


def qformer_key(key: str) -> str | None:
    """SALMONN's BERT Q-Former name -> `Blip2QFormerModel`'s (None: not a Q-Former weight we use).

    bert.embeddings.LayerNorm -> layernorm, `.self.` -> `.attention.`; the word/position
    embeddings, `position_ids`, the LM head and the non-query FFN are unused by the query path.
    """
    k = key.removeprefix("speech_Qformer.").removeprefix("bert.")
    if k.startswith("embeddings.LayerNorm."):
        return "layernorm." + k.removeprefix("embeddings.LayerNorm.")
    if k.startswith(("embeddings.", "cls.")) or re.search(r"\.layer\.\d+\.(intermediate|output)\.", k):
        return None
    return k.replace(".self.", ".attention.")


def llm_key(key: str) -> str | None:
    """SALMONN's peft-wrapped LLaMA name -> `LlamaModel`'s (None: a buffer to recompute)."""
    if key.endswith("rotary_emb.inv_freq"):
        return None
    k = _LLM_PREFIX.sub("", key)
    return _LORA.sub(r".\1.default.weight", k)


def read_salmonn_checkpoint(path: Path) -> SalmonnWeights:
    """Group the tensors of `salmonn*.pth` ['model'] (memory-mapped, restricted unpickler)."""
    from actstore.ingest.adapters.salmonn.beats import load_checkpoint

    try:
        ckpt = load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001
        raise UnknownModelError(f"Cannot read the SALMONN checkpoint {path} with torch's safe loader "
                                f"({exc}); pass the salmonn*.pth file released with the model.") from None
    sd = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not any(k.startswith("speech_Qformer.") for k in sd):
        raise UnknownModelError(f"{path} holds no SALMONN weights (no ['model'] with speech_Qformer.* "
                                "keys); pass the salmonn*.pth checkpoint.")
    groups: dict[str, dict] = {"qformer": {}, "proj": {}, "ln_speech": {}, "ln_audio": {}, "llm": {},
                               "beats": {}, "whisper": {}}
    query_tokens = None
    unknown = []
    for key, value in sd.items():
        if key == "speech_query_tokens":
            query_tokens = value
        elif key.startswith("speech_Qformer."):
            name = qformer_key(key)
            if name is not None:
                groups["qformer"][name] = value
        elif key.startswith("llama_model."):
            name = llm_key(key)
            if name is not None:
                groups["llm"][name] = value
        elif key.startswith("beats."):
            # SALMONN's saver keeps the alias of BEATs' shared bias table under every layer's
            # name (named_parameters de-duplicates it, state_dict does not): same tensor, skip
            if ".relative_attention_bias." in key and not key.startswith("beats.encoder.layers.0."):
                continue
            groups["beats"][key.removeprefix("beats.")] = value
        elif key.startswith("speech_encoder."):
            groups["whisper"][key.removeprefix("speech_encoder.")] = value
        elif key.split(".")[0] in ("speech_llama_proj", "ln_speech", "ln_audio"):
            head, rest = key.split(".", 1)
            groups["proj" if head == "speech_llama_proj" else head][rest] = value
        else:
            unknown.append(key)
    if unknown:
        raise UnknownModelError(f"{path} holds weights this adapter does not know ({unknown[:3]}); "
                                "it supports SALMONN's released speech Q-Former architecture only.")
    if query_tokens is None or not groups["proj"] or not groups["ln_speech"]:
        raise UnknownModelError(f"{path} lacks speech_query_tokens, speech_llama_proj or ln_speech; "
                                "pass a complete salmonn*.pth checkpoint.")
    return SalmonnWeights(qformer=groups["qformer"], query_tokens=query_tokens, proj=groups["proj"],
                          ln_speech=groups["ln_speech"], ln_audio=groups["ln_audio"], llm=groups["llm"],
                          beats=groups["beats"], whisper=groups["whisper"])
