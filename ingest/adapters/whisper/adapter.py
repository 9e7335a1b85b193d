"""Whisper: pooled states of the audio encoder, and on request its sites and decoder.

The decoder is loaded only when a decoder point is requested (`whisper/decoding.py`: sites,
the teacher-forced transcription).

Points (hooks on modules):
- `speech.embed`: input of encoder layer 1 = GELU(conv2(GELU(conv1(mel)))) + positions.
- `speech.L{i}`, i = 1..N-1: output of encoder layer i; `speech.L{N}`: after the encoder's
  final LayerNorm (`last_hidden_state`, transformers' `hidden_states[N]`).

The window: the encoder only accepts exactly `2 * max_source_positions` mel frames (3000 =
30 s for the released models), so every clip is padded with silence to the window and the
encoder sees no attention mask. Pooling over the whole window would mostly average silence,
so only the positions that hold audio are pooled:

    n_frames = ceil(samples / (2 * hop_length)) = ceil(samples / 320)   (16 kHz, hop 160)

(a mel frame every 160 samples, then conv2 halves the rate), capped at `max_source_positions`.
Because each item is padded to the full window on its own, a batch gives exactly the vectors
of its items run alone.

Audio longer than the window is TRUNCATED to the window, with a `UserWarning` naming the
items (the feature extractor's behaviour; the study's FLEURS clips are < 30 s). Split long
recordings upstream if their tail matters. `actstore ingest` refuses such clips before any model
runs unless `--max-seconds` is raised above the window (the window is the default; see
ingest/memory.py).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import torch

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.base import MAX_NEW_TOKENS
from actstore.ingest.adapters.common.hf import HFAdapter, lengths_to_mask, quiet_transformers
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.common.sites import SITE_KINDS, capture_decoder, hook_sites
from actstore.ingest.adapters.whisper import decoding
from actstore.ingest.items import SAMPLE_RATE, Item


def whisper_frames(n_samples: int, *, hop_length: int = 160, max_positions: int = 1500) -> int:
    """Encoder positions that hold audio: ceil(n_samples / (2 * hop_length)), capped."""
    return min(math.ceil(n_samples / (2 * hop_length)), max_positions)


class WhisperAdapter(HFAdapter):
    """Encoder of Whisper-family models (`model_type == "whisper"`)."""

    modalities = ("speech",)
    site_kinds = SITE_KINDS
    decodes = True
    conditionings = ("speech",)
    priority = 20

    @classmethod
    def matches(cls, config) -> bool:
        return getattr(config, "model_type", None) == "whisper"

    def load(self) -> None:
        from transformers import AutoConfig, AutoFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        self.config = cfg = AutoConfig.from_pretrained(self.path, local_files_only=True)
        with quiet_transformers():
            enc, info = WhisperEncoder.from_pretrained(
                self.path, key_mapping={r"^model\.encoder\.": "", r"^encoder\.": ""},
                dtype=self.torch_dtype, local_files_only=True, output_loading_info=True)
        if info["missing_keys"]:
            raise UnknownModelError(
                f"Checkpoint {self.path} lacks Whisper encoder weights (e.g. "
                f"{sorted(info['missing_keys'])[:3]}); pass the directory of a full Whisper model.")
        self.encoder = enc.to(self.device).eval()
        self.feature_extractor = fe = AutoFeatureExtractor.from_pretrained(self.path,
                                                                           local_files_only=True)
        window = 2 * cfg.max_source_positions
        if fe.nb_max_frames != window:
            raise UnknownModelError(
                f"The feature extractor of {self.model_name} makes {fe.nb_max_frames} mel frames but the "
                f"encoder takes {window}; save a feature extractor whose chunk_length matches "
                "max_source_positions.")
        n = cfg.encoder_layers
        pts = ["speech.embed"] + [f"speech.L{i}" for i in range(1, n + 1)]
        self._points = {"speech": pts}
        self._widths = {p: cfg.d_model for p in pts}
        optional, widths = decoding.declare(cfg)
        self._optional = {"speech": optional}
        self._widths.update(widths)
        self.decoder = self.tokenizer = None

    def _load_decoder(self):
        """The decoder and tokenizer, loaded on the first decoder request."""
        if self.decoder is None:
            from transformers import AutoTokenizer

            self.decoder = decoding.load_decoder(self.path, self.torch_dtype, self.device)
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        return self.decoder

    # --- the intervention protocol (`Adapter`; the work is in whisper/intervene.py) ---

    def intervention_sites(self):
        from actstore.ingest.adapters.whisper import intervene

        return intervene.whisper_sites(self)

    def target_loglik(self, items, clamps=(), conditioning="speech"):
        from actstore.ingest.adapters.whisper import intervene

        self.check_conditioning(conditioning)
        return intervene.target_loglik(self, items, clamps)

    def generate(self, items, clamps=(), max_new_tokens=MAX_NEW_TOKENS, conditioning="speech"):
        from actstore.ingest.adapters.whisper import intervene

        self.check_conditioning(conditioning)
        return intervene.generate(self, items, clamps, max_new_tokens)

    def first_step_language_probs(self, items, clamps=()):
        from actstore.ingest.adapters.whisper import intervene

        return intervene.first_step_language_probs(self, items, clamps)

    def speech_window(self) -> float | None:
        """The feature extractor's window (30 s for the released models; tiny test models: 1 s)."""
        return self.feature_extractor.n_samples / SAMPLE_RATE

    def cost_model(self, modality: str):
        """Every clip is padded to the window: a fixed cost per item, whatever its length."""
        from actstore.ingest.memory import CostModel, element_bytes

        cfg = self.config
        return CostModel(width=cfg.d_model, layers=len(self._points["speech"]),
                         heads=cfg.encoder_attention_heads, ffn_width=cfg.encoder_ffn_dim,
                         window_positions=cfg.max_source_positions,
                         bytes_per_element=element_bytes(self.dtype_name))

    def _forward(self, modality: str, items: Sequence[Item], points: Sequence[str]):
        fe, enc = self.feature_extractor, self.encoder
        long = [f"{it.lang}/{it.sample_id}" for it in items if len(it.audio) > fe.n_samples]
        if long:
            warnings.warn(f"Truncating {len(long)} clip(s) longer than Whisper's "
                          f"{fe.n_samples / SAMPLE_RATE:g} s window: {long[:5]}", UserWarning,
                          stacklevel=3)
        feats = [fe(np.asarray(it.audio, dtype=np.float32), sampling_rate=SAMPLE_RATE,
                    return_tensors="pt")["input_features"] for it in items]
        x = torch.cat(feats).to(self.device, self.torch_dtype)
        n_frames = torch.tensor([whisper_frames(len(it.audio), hop_length=fe.hop_length,
                                                max_positions=self.config.max_source_positions)
                                 for it in items], device=self.device)
        order = [p for p in self._points["speech"] if p in set(points)]
        extra = [p for p in points if p not in order]
        outputs: dict = {}
        with Capture() as cap:
            cap.layer_stack("speech", order, enc.layers, enc.layer_norm, stop=not extra)
            hook_sites(cap, "speech", decoding.encoder_sites(enc), extra)
            tensors = cap.run(lambda: outputs.setdefault("enc", enc(input_features=x)))
        src_mask = lengths_to_mask(n_frames, enc.config.max_source_positions)
        out = {p: (tensors[p], src_mask) for p in order + [p for p in extra if p in tensors]}
        dec_points = [p for p in extra if p.startswith("decoder.")]
        if dec_points:
            out.update(self._decode(items, dec_points, outputs["enc"].last_hidden_state, src_mask))
        return out

    def _decode(self, items, points, enc_out, src_mask):
        """Teacher-forced decoder over each item's transcription, conditioned on `enc_out`."""
        dec = self._load_decoder()
        ids, tmask = decoding.target_ids(self.tokenizer, items, self.device,
                                          self.config.max_target_positions)
        return capture_decoder(dec, decoding.decoder_sites(dec), points, ids, tmask, src_mask,
                               encoder_hidden_states=enc_out)
