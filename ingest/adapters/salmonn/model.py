"""SALMONN assembled from its released files, natively on torch/transformers/peft.

    wav (16 kHz; zero-padded to >= 1 s, cut at 30 s, as SALMONN's prepare_one_sample)
     |- WhisperFeatureExtractor (30 s log-mel) -> Whisper encoder -> ln_speech   [B, 1500, Dw]
     |- BEATs fbank (float64) -> BEATs -> ln_audio, zero-padded to 1500 frames   [B, 1500, Db]
    concat [B, 1500, Dw+Db] -> window Q-Former -> speech_llama_proj -> auditory [B, W*nq, H]
    LLM input = [BOS] + embed(p_before) + auditory + embed(p_after), p_before/p_after = the two
    halves of prompt_template.format("<Speech><SpeechHere></Speech> " + instruction) split at
    <SpeechHere>, each tokenised without special tokens (SALMONN's prompt_wrap + generate).
    LLM = LlamaModel (the LM head is never needed) with peft LoRA injected on the checkpoint's
    target modules (q_proj, v_proj), r/alpha/dropout from the decode config, in eval mode.

Loading never makes a float32 copy of a big part: the LLM is read by transformers directly in
the requested dtype (meta-device init, memory-mapped shards), BEATs and the SALMONN checkpoint
are memory-mapped (`torch.load(mmap=True, weights_only=True)`) and assigned, then cast once.

Batching: the Whisper encoder, the Q-Former and the LLM run batched; BEATs runs clip by clip
(its padding-mask path would make a padded batch differ from single clips, and its cost is small
next to the LLM). LLM sequences are right-padded, so with causal attention each item's valid
positions are computed exactly as when it runs alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.salmonn.beats import beats_fbank, load_beats
from actstore.ingest.adapters.common.hf import quiet_transformers
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.salmonn.checkpoint import (SPEECH_INSTRUCTION, SPEECH_SLOT, SalmonnParts,
                                                          read_salmonn_checkpoint)
from actstore.ingest.adapters.salmonn.qformer import build_window_qformer, num_windows
from actstore.ingest.adapters.whisper.adapter import whisper_frames
from actstore.ingest.items import SAMPLE_RATE

WHISPER_FRAMES = 1500  # SALMONN's window formula assumes Whisper's 30 s = 1500 encoder frames


def salmonn_audio(wav: np.ndarray) -> np.ndarray:
    """SALMONN's `prepare_one_sample`: float64, zero-padded to at least 1 s, cut at 30 s."""
    wav = np.asarray(wav, dtype=np.float64)
    if len(wav) < SAMPLE_RATE:
        wav = np.concatenate([wav, np.zeros(SAMPLE_RATE - len(wav))])
    return wav[: SAMPLE_RATE * 30]


@dataclass
class AudioOut:
    """The speech branch for a batch; tensors on the model's device."""

    concat: torch.Tensor            # [B, 1500, Dw+Db] Q-Former input
    whisper_frames: torch.Tensor    # [B] Whisper frames covering real audio
    beats_tokens: list[int]
    qformer: torch.Tensor           # [B, W*nq, Dq]
    auditory: torch.Tensor          # [B, W*nq, H]
    valid_windows: torch.Tensor     # [B] windows that start inside the real audio
    whisper_layers: list[torch.Tensor] = field(default_factory=list)   # raw outputs, then last_hidden_state
    beats_layers: list[list[torch.Tensor]] = field(default_factory=list)  # per item: per layer [n_b, Db]
    beats_out: list[torch.Tensor] = field(default_factory=list)


@dataclass
class Prompt:
    """One LLM input's token ids around the speech slot (or a text-only prompt: before = all)."""

    before: list[int]
    after: list[int]
    sentence: list[int]   # indices into `after` (or `before` for text-only) of the sentence's own tokens
    with_speech: bool = True


def _token_span(offsets, start: int, end: int) -> list[int]:
    """Indices of tokens whose character span overlaps [start, end)."""
    return [i for i, (a, b) in enumerate(offsets) if a < end and b > start]


class SalmonnModel(nn.Module):
    """Every part of one SALMONN, loaded in `dtype` on `device`, eval mode."""

    def __init__(self, parts: SalmonnParts, *, dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.parts, self.dtype, self.device_ = parts, dtype, device
        weights = read_salmonn_checkpoint(parts.ckpt)
        self._load_whisper(parts, dtype, device)
        self.beats = load_beats(parts.beats, dtype=dtype, device=device) if parts.beats else None
        self._override("BEATs", self.beats, weights.beats)
        self._override("Whisper", self.whisper, weights.whisper)
        self.ln_speech = self._layer_norm(weights.ln_speech, self.whisper_width)
        self.ln_audio = self._layer_norm(weights.ln_audio, self.beats.width) if self.beats else None
        self._load_llm(parts, weights, dtype, device)
        kernel, stride = parts.kernel_frames, parts.stride_frames
        if kernel < 1 or stride < 1 or kernel > WHISPER_FRAMES:
            raise UnknownModelError(f"{parts.decode_config}: second_per_window/second_stride give a "
                                    f"{kernel}-frame window every {stride} frames; use values in (0, 30] s.")
        self.qformer = build_window_qformer(
            weights, parts.bert_config, kernel=kernel, stride=stride,
            encoder_width=self.encoder_width, llm_width=self.llm_width, dtype=dtype, device=device)
        if weights.query_tokens.shape[1] != parts.num_query_tokens:
            raise UnknownModelError(f"The checkpoint has {weights.query_tokens.shape[1]} speech query tokens but "
                                    f"{parts.decode_config} says num_speech_query_token: {parts.num_query_tokens}; "
                                    "fix the config.")
        self.num_windows = num_windows(WHISPER_FRAMES, kernel, stride)
        self.num_speech_tokens = self.num_windows * parts.num_query_tokens
        self.requires_grad_(False)  # inference only (peft marks LoRA weights trainable)
        self.eval()

    # -- loading -----------------------------------------------------------------------------
    def _override(self, what: str, module: nn.Module | None, sd: dict) -> None:
        """Apply encoder weights that the SALMONN checkpoint carries (SALMONN loads it non-strictly)."""
        if not sd:
            return
        unknown = sorted(set(sd) - set(module.state_dict())) if module is not None else sorted(sd)
        if unknown:
            raise UnknownModelError(f"The SALMONN checkpoint holds {what} weights that do not fit the "
                                    f"{what} encoder (e.g. {unknown[:2]}); check the paths in the decode config.")
        module.load_state_dict(sd, strict=False)

    def _layer_norm(self, sd: dict, width: int) -> nn.LayerNorm:
        if not sd or tuple(sd["weight"].shape) != (width,):
            raise UnknownModelError(f"The SALMONN checkpoint's stream LayerNorm does not fit the "
                                    f"{width}-wide encoder; the checkpoint and encoders do not belong together.")
        ln = nn.LayerNorm(width)
        ln.load_state_dict(sd)
        return ln.to(device=self.device_, dtype=self.dtype)

    def _load_whisper(self, parts: SalmonnParts, dtype, device) -> None:
        from transformers import WhisperFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        with quiet_transformers():
            enc, info = WhisperEncoder.from_pretrained(
                str(parts.whisper), key_mapping={r"^model\.encoder\.": "", r"^encoder\.": ""},
                dtype=dtype, local_files_only=True, output_loading_info=True)
        if info["missing_keys"]:
            raise UnknownModelError(f"{parts.whisper} lacks Whisper encoder weights (e.g. "
                                    f"{sorted(info['missing_keys'])[:3]}); point whisper_path at a Whisper model directory.")
        if enc.config.max_source_positions != WHISPER_FRAMES:
            raise UnknownModelError(f"{parts.whisper} has a {enc.config.max_source_positions}-frame encoder; "
                                    "SALMONN needs Whisper's 30 s window (1500 frames).")
        self.whisper = enc.to(device).eval()
        self.whisper_width = enc.config.d_model
        self.feature_extractor = WhisperFeatureExtractor.from_pretrained(str(parts.whisper),
                                                                         local_files_only=True)

    @property
    def encoder_width(self) -> int:
        return self.whisper_width + (self.beats.width if self.beats is not None else 0)

    def _load_llm(self, parts: SalmonnParts, weights, dtype, device) -> None:
        from transformers import AutoConfig, AutoTokenizer, LlamaModel

        config = AutoConfig.from_pretrained(str(parts.llama), local_files_only=True)
        if config.model_type != "llama":
            raise UnknownModelError(f"{parts.llama} is a {config.model_type!r} model; SALMONN's llama_path "
                                    "must be a LLaMA/Vicuna directory.")
        kwargs = {} if device.type == "cpu" else {"device_map": {"": str(device)}}
        with quiet_transformers():
            llm = LlamaModel.from_pretrained(str(parts.llama), dtype=dtype, local_files_only=True, **kwargs)
        self.random_init_llm = bool(getattr(config, "actstore_random_init", False))
        lora_keys = [k for k in weights.llm if ".lora_" in k]
        if parts.lora:
            if not lora_keys:
                raise UnknownModelError(f"{parts.decode_config} enables LoRA but {parts.ckpt} has no LoRA "
                                        "weights; set lora: false or pass the matching checkpoint.")
            from peft import LoraConfig, inject_adapter_in_model

            targets = sorted({k.split(".lora_")[0].split(".")[-1] for k in lora_keys})
            lora = LoraConfig(r=parts.lora_rank, lora_alpha=parts.lora_alpha,
                              lora_dropout=parts.lora_dropout, target_modules=targets)
            llm = inject_adapter_in_model(lora, llm)
            self.lora_targets = targets
        else:
            self.lora_targets = []
        expected = {k for k in llm.state_dict() if ".lora_" in k}
        missing = expected - set(weights.llm)
        unexpected = set(weights.llm) - set(llm.state_dict())
        if missing or unexpected:
            raise UnknownModelError(f"The LLM weights in {parts.ckpt} do not fit {parts.llama} with LoRA "
                                    f"r={parts.lora_rank} (missing {sorted(missing)[:2]}, unexpected "
                                    f"{sorted(unexpected)[:2]}); check lora_rank and the paths in the decode config.")
        try:
            llm.load_state_dict(weights.llm, strict=False)
        except RuntimeError as exc:  # shape mismatch, e.g. lora_rank differs from the checkpoint's
            raise UnknownModelError(f"The LLM weights in {parts.ckpt} do not fit {parts.llama} with LoRA "
                                    f"r={parts.lora_rank} ({str(exc).splitlines()[-1].strip()}); check "
                                    "lora_rank in the decode config.") from None
        self.llm = llm.to(device).eval()  # eval(): LoRA dropout modules are created in training mode
        self.llm_width = config.hidden_size
        self.n_layers = config.num_hidden_layers
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(str(parts.llama), local_files_only=True)
        if self.tokenizer.bos_token_id is None:
            raise UnknownModelError(f"The tokenizer in {parts.llama} has no BOS token; SALMONN prepends one.")

    # -- speech branch -----------------------------------------------------------------------
    def spectrograms(self, wavs: Sequence[np.ndarray]) -> torch.Tensor:
        """Whisper log-mel inputs [B, 80, 3000] of SALMONN-prepared waveforms."""
        fe = self.feature_extractor
        feats = [fe(w, sampling_rate=SAMPLE_RATE, return_tensors="pt")["input_features"] for w in wavs]
        return torch.cat(feats)

    @torch.inference_mode()
    def encode_audio(self, wavs: Sequence[np.ndarray], *, spectrograms: torch.Tensor | None = None,
                     fbanks: Sequence[torch.Tensor] | None = None, details: bool = False) -> AudioOut:
        """Speech branch of SALMONN-prepared waveforms (`salmonn_audio`).

        `spectrograms`/`fbanks` replace the front ends (tests feed the reference's stored inputs);
        `details` also keeps every Whisper and BEATs layer output.
        """
        dev, dt = self.device_, self.dtype
        spec = spectrograms if spectrograms is not None else self.spectrograms(wavs)
        n_w = torch.tensor([whisper_frames(len(w), hop_length=self.feature_extractor.hop_length,
                                           max_positions=WHISPER_FRAMES) for w in wavs], device=dev)
        out = AudioOut(concat=None, whisper_frames=n_w, beats_tokens=[], qformer=None, auditory=None,
                       valid_windows=None)
        with Capture() as cap:
            if details:
                for i, layer in enumerate(self.whisper.layers):
                    cap.output_of(layer, f"L{i}")
            whisper = self.whisper(input_features=spec.to(dev, dt)).last_hidden_state
        if details:
            out.whisper_layers = [cap.tensors[f"L{i}"] for i in range(len(self.whisper.layers))] + [whisper]
        streams = [self.ln_speech(whisper)]
        if self.beats is not None:
            audio = []
            for b, w in enumerate(wavs):
                fb = fbanks[b] if fbanks is not None else beats_fbank(torch.from_numpy(np.asarray(w)))
                with Capture() as cap:
                    if details:
                        for i, layer in enumerate(self.beats.encoder.layers):
                            cap.output_of(layer, f"L{i}")
                    tokens = self.beats(fb.to(dev, dt).unsqueeze(0))[0]
                if details:
                    out.beats_layers.append([cap.tensors[f"L{i}"][0] for i in range(len(self.beats.encoder.layers))])
                    out.beats_out.append(tokens)
                if tokens.shape[0] > WHISPER_FRAMES:
                    raise ValueError(f"BEATs made {tokens.shape[0]} tokens from a <= 30 s clip")
                out.beats_tokens.append(tokens.shape[0])
                audio.append(F.pad(self.ln_audio(tokens), (0, 0, 0, WHISPER_FRAMES - tokens.shape[0])))
            streams.append(torch.stack(audio))
        out.concat = torch.cat(streams, dim=-1)
        out.qformer, out.auditory = self.qformer(out.concat)
        stride = self.qformer.stride
        out.valid_windows = torch.clamp((n_w + stride - 1) // stride, max=self.num_windows)
        return out

    # -- prompts -----------------------------------------------------------------------------
    def _ids(self, text: str, offsets: bool = False):
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=offsets)
        return (enc["input_ids"], enc["offset_mapping"]) if offsets else enc["input_ids"]

    def speech_prompt(self, instruction: str) -> Prompt:
        """SALMONN's prompt around the audio, with `instruction` where the template puts it."""
        template = self.parts.prompt_template
        full = template.format(SPEECH_INSTRUCTION + instruction)
        before, after = full.split(SPEECH_SLOT, 1)
        start = template.index("{}") + len(SPEECH_INSTRUCTION) - len(before) - len(SPEECH_SLOT)
        ids_after, offsets = self._ids(after, offsets=True)
        return Prompt(before=self._ids(before), after=ids_after,
                      sentence=_token_span(offsets, start, start + len(instruction)))

    def text_prompt(self, text: str) -> Prompt:
        """The template around `text` alone (separate text-only passes)."""
        template = self.parts.prompt_template
        ids, offsets = self._ids(template.format(text), offsets=True)
        start = template.index("{}")
        return Prompt(before=ids, after=[], sentence=_token_span(offsets, start, start + len(text)),
                      with_speech=False)

    def embed_ids(self, ids: list[int]) -> torch.Tensor:
        emb = self.llm.get_input_embeddings()
        return emb(torch.tensor(ids, dtype=torch.long, device=self.device_)).to(self.dtype)

    def llm_inputs(self, prompts: Sequence[Prompt], auditory: torch.Tensor | None):
        """Right-padded LLM input embeddings [B, T, H], attention mask [B, T], and per-item index
        sets {bos, before, speech, after, sentence} (lists of positions)."""
        bos = self.tokenizer.bos_token_id
        seqs, layout = [], []
        for b, p in enumerate(prompts):
            parts = [self.embed_ids([bos] + p.before)]
            n0 = 1 + len(p.before)
            if p.with_speech:
                parts.append(auditory[b].to(self.dtype))
            ns = parts[-1].shape[0] if p.with_speech else 0
            if p.after:
                parts.append(self.embed_ids(p.after))
            seqs.append(torch.cat(parts))
            base = n0 + ns if p.with_speech else 1
            layout.append({"bos": [0], "before": list(range(1, n0)), "speech": list(range(n0, n0 + ns)),
                           "after": list(range(n0 + ns, n0 + ns + len(p.after))),
                           "sentence": [base + i for i in p.sentence]})
        T = max(s.shape[0] for s in seqs)
        embeds = torch.zeros(len(seqs), T, self.llm_width, dtype=self.dtype, device=self.device_)
        mask = torch.zeros(len(seqs), T, dtype=torch.long, device=self.device_)
        for b, s in enumerate(seqs):
            embeds[b, : s.shape[0]] = s
            mask[b, : s.shape[0]] = 1
        return embeds, mask, layout

    @torch.inference_mode()
    def llm_states(self, embeds: torch.Tensor, mask: torch.Tensor, layers: Sequence[int],
                   final_norm: bool) -> dict:
        """{i: raw output of decoder layer i (1-based), 'final_norm': after the final RMSNorm}.

        Hooks, not `output_hidden_states` (whose last entry is already normalised); the forward
        stops after the deepest requested module.
        """
        dec = self.llm.layers
        wanted = [(f"L{i}", dec[i - 1]) for i in sorted(set(layers))]
        if final_norm:
            wanted.append(("final_norm", self.llm.norm))
        if not wanted:
            return {}
        with Capture() as cap:
            for j, (name, module) in enumerate(wanted):
                cap.output_of(module, name, stop=j == len(wanted) - 1)
            tensors = cap.run(lambda: self.llm(inputs_embeds=embeds, attention_mask=mask, use_cache=False))
        return {(int(k[1:]) if k.startswith("L") else k): v for k, v in tensors.items()}
