"""SALMONN (Whisper + BEATs -> window Q-Former -> Vicuna with LoRA): the study's third system.

Recognised by layout: a directory holding SALMONN's decode config (`decode_config.yaml`, or any
YAML whose `model:` names whisper_path, llama_path and ckpt), or a `salmonn*.pth` with
`speech_Qformer.*` keys (its directory's decode config is used; without one, SALMONN's released
decode settings, and the options whisper_path / beats_path / llama_path name the parts: e.g.
`--model salmonn_v1.pth` from the HF cache's tsinghua-ee/SALMONN). Every part is found through the
config (`salmonn.checkpoint`); the model is assembled natively (`salmonn.model`); no SALMONN code
runs.

Points (names are the API):
- `speech.encoder` (width Dw+Db = 2048 for SALMONN-7B/13B): the Q-Former input, i.e.
  [ln_speech(Whisper) | ln_audio(BEATs) zero-padded], pooled over the Whisper frames that cover
  real audio: n = ceil(N / 320) for N samples after SALMONN's padding to >= 1 s (30 s cap).
- `speech.qformer` (width H): the auditory embeddings after `speech_llama_proj` = the LLM's input
  at the speech positions. `layer_of` = 0, the partner of `text.embed`.
- `speech.L{i}` / `text.L{i}`, i = 1..n_layers: the raw output of decoder layer i (hooks; HF's
  `output_hidden_states` would give the last layer after the final norm), split by position:
  speech = the auditory-token positions, text = every other position.
- `speech.final_norm` / `text.final_norm`: after the LLM's final RMSNorm (what the LM head reads),
  kept separate from `L{n}` so the last layer is the same kind of vector as every other layer.
- `text.embed`: the LLM input embeddings at the text positions.
- neuron sites, on request (`--sites`): `speech.L{i}.ffn` / `text.L{i}.ffn` (the input of LLM
  layer i's `mlp.down_proj`, act(gate) * up, intermediate_size wide) and
  `speech.L{i}.self_attn.q|k|v` / `text.L{i}.self_attn.q|k|v` (the projections' outputs, LoRA
  included: the module hooked is peft's wrapper, so the tensor is what attention reads), pooled
  over the same positions as `speech.L{i}` / `text.L{i}` in the same forward.

Pooling choices (options; recorded in `info.extra` with the prompt template):
- `speech_pooling="all_windows"` (default) pools `speech.qformer` and `speech.L{i}` over ALL
  auditory positions, including the windows over Whisper's 30 s padding: the study splits the LLM
  input along its length into the speech part and the rest, and SALMONN attends to all of them
  (fixture: `auditory_pooled_all`, `llm_pooled_speech`). `"valid_windows"` pools only the first
  ceil(n / stride) windows' tokens (fixture: `auditory_pooled_valid_windows`).
- `text_pooling="all_non_speech"` (default): BOS + prompt before + prompt after (fixture:
  `llm_pooled_text`); `"sentence_tokens"`: only the tokens that overlap the sentence's characters.

Modes (option `mode`):
- `"paired"` (default, the study): a sentence's audio and its text in ONE prompt, the text where
  SALMONN's template puts the instruction: `prompt_template.format("<Speech><SpeechHere></Speech> "
  + text)`. Speech points come from the speech positions, text points from the rest of the SAME
  forward; `encode_pairs(speech, text, points)` is the entry point (`paired = True`).
- `"separate"`: speech items alone with the task prompt (option `task_prompt`, default
  "Please describe the audio.") for speech points; text items alone in the template
  (`prompt_template.format(text)`, no speech tags) for text points; `encode(items, points)`.

`--layers study` = 1, 2, 4, ..., 30, 31, 32, cut to the model's depth (tiny models).

Audio: 16 kHz mono; SALMONN pads every clip to at least 1 s and cuts it at 30 s (Whisper's
window; a `UserWarning` names truncated clips; `actstore ingest` refuses longer clips before any
model runs unless `--max-seconds` is raised above 30 s, the default here).

Real weights: put SALMONN's `configs/decode_config.yaml` in a directory, edit its paths
(whisper_path: openai/whisper-large-v2 dir or hub id in the HF cache; beats_path:
BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt; llama_path: the Vicuna dir or hub id, e.g.
lmsys/vicuna-13b-v1.1 for salmonn_v1.pth, lmsys/vicuna-7b-v1.5 for salmonn_7b_v0.pth; ckpt: the
salmonn*.pth) and pass that directory as `--model`; or pass the .pth itself with
`whisper_path=`, `beats_path=`, `llama_path=` options. Load in bfloat16/float16 on a GPU for the
7B/13B models (`--dtype bfloat16`); nothing is ever materialised in float32 first.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from actstore.errors import ActstoreError
from actstore.ingest.adapters.common.clamps import site_width
from actstore.ingest.adapters.common.hf import HFAdapter, lengths_to_mask
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.common.sites import by_position, llm_sites
from actstore.ingest.adapters.salmonn.checkpoint import (SPEECH_INSTRUCTION, find_decode_config,
                                                          has_qformer_keys, read_parts)
from actstore.ingest.adapters.base import ModelInfo, Pooled
from actstore.ingest.items import SAMPLE_RATE, Item
from actstore.ingest.model_paths import ModelSource
from actstore.ingest.pooling import masked_mean

#: the study's SALMONN layers (32-layer Vicuna-7B)
SALMONN_STUDY_LAYERS = (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 31, 32)
DEFAULT_TASK_PROMPT = "Please describe the audio."
OPTIONS = {"mode": ("paired", "separate"), "text_pooling": ("all_non_speech", "sentence_tokens"),
           "speech_pooling": ("all_windows", "valid_windows")}
PATH_OPTIONS = ("whisper_path", "beats_path", "llama_path", "ckpt")


class SalmonnAdapter(HFAdapter):
    """SALMONN from its decode config and released files (see module docstring)."""

    modalities = ("speech", "text")
    priority = 10
    paired = True
    study_layers = SALMONN_STUDY_LAYERS
    option_keys = (*OPTIONS, *PATH_OPTIONS, "task_prompt")
    site_kinds = ("ffn", "self_attn.q", "self_attn.k", "self_attn.v")

    def __init__(self, source: ModelSource, *, name: str | None = None, device: str = "cpu",
                 dtype: str = "float32", options: dict | None = None):
        super().__init__(source, name=name, device=device, dtype=dtype, options=options)
        opts = dict(self.options)
        for key, allowed in OPTIONS.items():
            value = opts.setdefault(key, allowed[0])
            if value not in allowed:
                raise ActstoreError(f"SALMONN option {key}={value!r} is not one of {', '.join(allowed)}.")
        opts.setdefault("task_prompt", DEFAULT_TASK_PROMPT)
        self.options = opts
        self.mode = opts["mode"]
        self.paired = self.mode == "paired"
        self.model = None

    # -- recognition -------------------------------------------------------------------------
    @classmethod
    def _config_for(cls, source: ModelSource) -> tuple[Path | None, Path | None] | None:
        """(decode config or None, checkpoint override) of a source, or None if it is not SALMONN.

        A directory needs a decode config; a checkpoint file needs SALMONN's Q-Former keys (its
        decode config, if any, is the one in its directory; without one, options name the parts).
        """
        path = source.path
        if path.is_dir():
            cfg = find_decode_config(path)
            return (cfg, None) if cfg is not None else None
        if path.is_file() and path.suffix in (".pth", ".pt", ".bin") and has_qformer_keys(path):
            return find_decode_config(path.parent), path
        return None

    @classmethod
    def recognises(cls, source: ModelSource) -> bool:
        return cls._config_for(source) is not None

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        from actstore.errors import UnknownModelError
        from actstore.ingest.adapters.salmonn.model import SalmonnModel

        found = self._config_for(self.source)
        if found is None and self.source.path.is_file():
            found = (None, self.source.path)  # named with --adapter salmonn (e.g. a pre-zip .pth)
        if found is None:
            raise UnknownModelError(f"{self.source.path} is not a SALMONN model: no decode config "
                                    "(decode_config.yaml naming whisper_path, llama_path, ckpt) found; "
                                    "pass the directory holding SALMONN's decode config.")
        cfg, ckpt = found
        self.parts = read_parts(cfg, overrides={k: self.options.get(k) for k in PATH_OPTIONS}, ckpt=ckpt)
        self.model = m = SalmonnModel(self.parts, dtype=self.torch_dtype, device=self.device)
        n = m.n_layers
        layers = [f"L{i}" for i in range(1, n + 1)]
        self._points = {
            "speech": ["speech.encoder", "speech.qformer"] + [f"speech.{x}" for x in layers] + ["speech.final_norm"],
            "text": ["text.embed"] + [f"text.{x}" for x in layers] + ["text.final_norm"],
        }
        self._widths = {p: m.llm_width for ps in self._points.values() for p in ps}
        self._widths["speech.encoder"] = m.encoder_width
        named = by_position(llm_sites(m.llm.layers))
        self._optional = {mod: list(v) for mod, v in named.items()}
        self._sites = {**named["speech"], **named["text"]}
        self._widths.update({p: site_width(site) for p, site in self._sites.items()})
        self.study_layers = tuple(i for i in SALMONN_STUDY_LAYERS if i <= n)

    # -- provenance --------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        self._require_loaded()
        p, m = self.parts, self.model
        template = p.prompt_template
        extra = {
            "model_type": "salmonn", "dtype": self.dtype_name, "device": str(self.device),
            "pooling": "masked mean, float32", "source": self.source.source,
            "mode": self.mode, "text_pooling": self.options["text_pooling"],
            "speech_pooling": self.options["speech_pooling"],
            "prompt_template": template,
            "speech_prompt": template.format(SPEECH_INSTRUCTION + "{text}") if self.paired
            else template.format(SPEECH_INSTRUCTION + self.options["task_prompt"]),
            "text_prompt": template.format(SPEECH_INSTRUCTION + "{text}") if self.paired
            else template.format("{text}"),
            "decode_config": str(p.decode_config), "whisper": str(p.whisper),
            "beats": str(p.beats) if p.beats else None, "llm": str(p.llama), "ckpt": str(p.ckpt),
            "window_frames": p.kernel_frames, "stride_frames": p.stride_frames,
            "num_query_tokens": p.num_query_tokens, "speech_tokens": m.num_speech_tokens,
            "lora": {"r": p.lora_rank, "alpha": p.lora_alpha, "targets": m.lora_targets} if p.lora else None,
        }
        if not self.paired:
            extra["task_prompt"] = self.options["task_prompt"]
        random_init = p.random_init or m.random_init_llm
        return ModelInfo(model_id=self.model_id, name=self.model_name, adapter=self.adapter_label,
                         revision=self.revision, random_init=random_init, extra=extra)

    def layer_of(self, point: str) -> int | None:
        if point in ("speech.qformer", "text.embed"):
            return 0
        if point.endswith((".encoder", ".final_norm")):
            return None
        return super().layer_of(point)

    #: SALMONN cuts audio at 30 s (Whisper's window): longer clips are truncated with a warning
    window_seconds = 30.0

    def cost_model(self, modality: str):
        """Speech: Whisper over its 30 s window, BEATs over up to 30 s (50 patches a second), the
        LLM over the auditory tokens and the prompt; text: the LLM over prompt + text (+ audio)."""
        from actstore.ingest.memory import CostModel, element_bytes

        m, n = self.model, element_bytes(self.dtype_name)
        w, lm = m.whisper.config, m.llm.config
        prompt = len(self.parts.prompt_template.encode("utf-8")) + 32  # + instruction tokens
        llm = dict(width=lm.hidden_size, layers=m.n_layers + 2, heads=lm.num_attention_heads,
                   ffn_width=lm.intermediate_size, bytes_per_element=n)
        if modality == "text":
            return CostModel(extra_positions=prompt + (m.num_speech_tokens if self.paired else 0), **llm)
        stages = [CostModel(width=w.d_model, layers=len(m.whisper.layers) + 2,
                            heads=w.encoder_attention_heads, ffn_width=w.encoder_ffn_dim,
                            window_positions=w.max_source_positions, bytes_per_element=n),
                  CostModel(window_positions=m.num_speech_tokens + prompt, **llm)]
        if m.beats is not None:
            b = m.beats.cfg
            stages.append(CostModel.speech(50, width=b.encoder_embed_dim, layers=b.encoder_layers + 2,
                                           heads=b.encoder_attention_heads, ffn_width=b.encoder_ffn_embed_dim,
                                           max_positions=1500, bytes_per_element=n))
        return tuple(stages)

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, items: Sequence[Item], points: Sequence[str]) -> dict[str, Pooled]:
        if self.paired and len(items):
            raise ActstoreError("SALMONN's default mode puts each sentence's speech and text in one "
                                "prompt: call encode_pairs (the ingest pipeline pairs items by "
                                "sentence id), or pass the option mode=separate.")
        return super().encode(items, points)

    def encode_pairs(self, speech: Sequence[Item], text: Sequence[Item],
                     points: Sequence[str]) -> dict[str, Pooled]:
        """speech[i] and text[i] (same sentence) in one prompt; rows follow each list."""
        if not self.paired:
            raise ActstoreError("This SALMONN adapter runs in mode=separate; call encode() per "
                                "modality, or drop the option to pair speech and text.")
        if len(speech) != len(text):
            raise ActstoreError(f"encode_pairs got {len(speech)} speech and {len(text)} text items; "
                                "pass one text item per speech item (same sentence id).")
        ids = [(s.sentence_id, t.sentence_id) for s, t in zip(speech, text) if s.sentence_id != t.sentence_id]
        if ids:
            raise ActstoreError(f"encode_pairs got mismatched sentence ids {ids[:3]}; pair speech "
                                "and text items of the same sentence.")
        if not speech:
            return {p: Pooled(np.zeros((0, self.width(p)), np.float32), np.zeros(0, np.int64)) for p in points}
        sp = [p for p in points if p.startswith("speech.")]
        tp = [p for p in points if p.startswith("text.")]
        self._check_batch(speech, sp)
        self._check_batch(text, tp)
        with torch.inference_mode():
            captured = self._run(speech, [t.text for t in text], sp, tp)
            return self._pool(captured)

    def _forward(self, modality: str, items: Sequence[Item], points: Sequence[str]):
        """Separate mode: speech with the task prompt, or text alone in the template."""
        if modality == "speech":
            return self._run(items, [self.options["task_prompt"]] * len(items), list(points), [])
        return self._run(None, [it.text for it in items], [], list(points))

    @staticmethod
    def _pool(captured) -> dict[str, Pooled]:
        out = {}
        for p, (hidden, mask) in captured.items():
            pooled, n = masked_mean(hidden, mask)
            out[p] = Pooled(pooled.cpu().numpy(), n.cpu().numpy())
        return out

    def _run(self, speech: Sequence[Item] | None, texts: list[str], sp: list[str], tp: list[str]):
        """One forward; {point: (hidden [B, T, d], mask [B, T])} for speech points `sp` and text
        points `tp`. speech=None: text-only prompts."""
        m = self.model
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        audio = None
        if speech is not None:
            from actstore.ingest.adapters.salmonn.model import salmonn_audio

            long = [f"{it.lang}/{it.sample_id}" for it in speech if len(it.audio) > 30 * SAMPLE_RATE]
            if long:
                warnings.warn(f"Truncating {len(long)} clip(s) longer than SALMONN's 30 s window: "
                              f"{long[:5]}", UserWarning, stacklevel=3)
            wavs = [salmonn_audio(it.audio) for it in speech]
            audio = m.encode_audio(wavs)
            if "speech.encoder" in sp:
                out["speech.encoder"] = (audio.concat, lengths_to_mask(audio.whisper_frames, audio.concat.shape[1]))
        llm_points = [p for p in sp if p != "speech.encoder"] + tp
        if not llm_points:
            return out
        if speech is not None:
            prompts = [m.speech_prompt(t) for t in texts]
        else:
            prompts = [m.text_prompt(t) for t in texts]
        embeds, attn, layout = m.llm_inputs(prompts, audio.auditory if audio is not None else None)
        B, T = attn.shape
        sentence_only = self.options["text_pooling"] == "sentence_tokens"
        valid_only = self.options["speech_pooling"] == "valid_windows"
        speech_mask = torch.zeros(B, T, dtype=torch.bool, device=attn.device)
        text_mask = torch.zeros_like(speech_mask)
        for b, lay in enumerate(layout):
            sp_pos = lay["speech"]
            if valid_only and sp_pos:
                sp_pos = sp_pos[: int(audio.valid_windows[b]) * m.parts.num_query_tokens]
            speech_mask[b, sp_pos] = True
            if sentence_only:
                if not lay["sentence"]:
                    raise ActstoreError(f"Text item {b} has no token of its own in the prompt; "
                                        "use text_pooling=all_non_speech.")
                text_mask[b, lay["sentence"]] = True
            else:
                text_mask[b, lay["bos"] + lay["before"] + lay["after"]] = True
        layers = [int(p.split(".L")[1].split(".")[0]) for p in llm_points if ".L" in p]
        final = any(p.endswith(".final_norm") for p in llm_points)
        with Capture() as cap:  # sites: one hook per module, shared by the speech and text names
            for what in dict.fromkeys(p.split(".", 1)[1] for p in llm_points if p in self._sites):
                site = self._sites["speech." + what]
                (cap.input_of if site.read == "input" else cap.output_of)(site.module, what)
            states = m.llm_states(embeds, attn, layers, final)
        for p in llm_points:
            modality, what = p.split(".", 1)
            mask = speech_mask if modality == "speech" else text_mask
            if p in self._sites:
                hidden = cap.tensors[what]
            elif what in ("qformer", "embed"):
                hidden = embeds
            elif what == "final_norm":
                hidden = states["final_norm"]
            else:
                hidden = states[int(what[1:])]
            out[p] = (hidden, mask)
        return out
