"""SeamlessM4T v2: pooled states of its speech encoder and its text encoder (and, on request,
neuron sites and the shared text decoder, teacher-forced: `seamless_m4t_v2/decoding.py`).

Only the two encoders are loaded (`SeamlessM4Tv2SpeechEncoder` / `SeamlessM4Tv2Encoder`
`.from_pretrained` with a key mapping on the full checkpoint); the text decoder is loaded the
same way on the first request for a `decoder.*` point only; the text-to-unit model and the
vocoder are never materialised.

Points (hooks on modules, never `hidden_states` indices: transformers 5 overwrites the last
speech entry with the adaptor output):
- `speech.embed`: output of the feature projection (LayerNorm + Linear on stacked fbanks).
- `speech.L{i}`, i = 1..N-1: output of conformer layer i. `speech.L{N}`: output of the conformer
  encoder, i.e. layer N followed by the encoder's final LayerNorm -- what transformers 4's
  `hidden_states[N]` held, so results compare with the study.
- `speech.adaptor`: the speech encoder's output: `h + 0.5 * FFN(h)`, the length adaptor
  (stride-8 convolutions + attention) and the final LayerNorm -- what the text decoder reads.
- `text.embed`: scaled token embeddings + sinusoidal positions (the input of text layer 1).
- `text.L{i}`, i = 1..M-1: output of text layer i; `text.L{M}`: after the final LayerNorm.

Masks: speech points before the adaptor use the feature extractor's frame mask (one frame =
two stacked 10 ms fbank frames). After the adaptor, lengths follow transformers'
`_compute_sub_sample_lengths_from_attention_mask`: floor((L + 2*(k//2) - k) / s) + 1 (k = s = 8:
floor(L/8) + 1). The text mask is the tokenizer's attention mask, which covers the language
token `__xxx__`, the sentence tokens and the final `</s>`: all three are pooled.

Padding: the adaptor's convolutions read neighbouring frames, and they run after a LayerNorm
that maps a padded (zero) frame to its bias, so zeroing the adaptor's input is not enough. A
pre-hook on each adaptor convolution zeroes every time step past the item's length, which is
what the convolution's own zero padding gives an item run alone: a padded batch pools to the
same vectors as single items (to float32 round-off). The conformer layers need nothing:
attention is masked and their depthwise convolution is causal and masked.

Which reference `speech.adaptor` matches: transformers with every frame past the item's mask
zeroed before each adaptor convolution, i.e. transformers run on the item alone whenever its
fbank length is even. For an odd fbank length the feature extractor pads the fbank to an even
length, and the last stacked frame (one real fbank frame, one padded) falls outside the frame
mask; transformers run alone still feeds that frame's state to the adaptor's convolutions,
actstore zeroes it (as it must for the vector not to depend on the batch). There, and only
there, `speech.adaptor` differs slightly from transformers run alone; every other point and
every even length equal it.

Text languages: the tokenizer's `src_lang` is set per item to SeamlessM4T's 3-letter code,
which is the study's ISO 639-3 code except for the few in `SEAMLESS_LANG_CODES` (e.g. zho ->
cmn); a language without a `__xxx__` token in the tokenizer is refused, not encoded as <unk>.
"""

from __future__ import annotations

from typing import Sequence

import torch

from actstore.errors import ActstoreError, DataSourceError, UnknownModelError
from actstore.ingest.adapters.base import MAX_NEW_TOKENS
from actstore.ingest.adapters.common.hf import HFAdapter, lengths_to_mask, quiet_transformers
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.common.kaldi_fbank import MIN_SAMPLES
from actstore.ingest.adapters.common.sites import SITE_KINDS, capture_decoder, hook_sites
from actstore.ingest.adapters.seamless_m4t_v2 import decoding
from actstore.ingest.items import SAMPLE_RATE, Item
from actstore.ingest.adapters.common.study import STUDY_LAYERS

#: ISO 639-3 (or macro-language) code -> SeamlessM4T's language code, where they differ.
SEAMLESS_LANG_CODES = {
    "zho": "cmn", "lav": "lvs", "msa": "zsm", "nep": "npi", "ori": "ory",
    "uzb": "uzn", "mon": "khk", "pus": "pbt", "orm": "gaz", "aze": "azj", "swa": "swh",
    "fas": "pes", "per": "pes", "ara": "arb", "nor": "nob",
    "zho_Hant": "cmn_Hant", "yue_Hant": "yue",
}


def seamless_lang_code(lang: str) -> str:
    """SeamlessM4T's code for an ISO 639-3 language code (identity unless overridden)."""
    return SEAMLESS_LANG_CODES.get(lang, lang)


def adaptor_lengths(frame_lengths: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Frames after the length adaptor, as transformers computes them (see module docstring)."""
    pad = kernel_size // 2
    return torch.div(frame_lengths + 2 * pad - kernel_size, stride, rounding_mode="floor") + 1


def _zero_past(lengths: torch.Tensor):
    """Pre-hook for a Conv1d over [B, d, T]: zero the time steps at or past each item's length."""
    def hook(_module, args):
        x = args[0]
        keep = lengths_to_mask(lengths.to(x.device), x.shape[-1]).unsqueeze(1)
        return (x * keep.to(x.dtype),) + tuple(args[1:])
    return hook


class SeamlessM4Tv2Adapter(HFAdapter):
    """Speech and text encoders of SeamlessM4T v2 (`model_type == "seamless_m4t_v2"`)."""

    modalities = ("speech", "text")
    site_kinds = SITE_KINDS
    decodes = True
    translates = True
    priority = 10
    study_layers = STUDY_LAYERS  # the FLEURS study's layer set (common.study)

    conditionings = ("speech", "text")

    @classmethod
    def matches(cls, config) -> bool:
        return getattr(config, "model_type", None) == "seamless_m4t_v2"

    # --- the intervention protocol (`Adapter`; the work is in seamless_m4t_v2/intervene.py) ---
    def intervention_sites(self):
        from actstore.ingest.adapters.seamless_m4t_v2 import intervene

        return intervene.seamless_sites(self)

    def target_loglik(self, items, clamps=(), conditioning="speech"):
        from actstore.ingest.adapters.seamless_m4t_v2 import intervene

        self.check_conditioning(conditioning)
        return intervene.target_loglik(self, items, clamps, conditioning)

    def generate(self, items, clamps=(), max_new_tokens=MAX_NEW_TOKENS, conditioning="speech"):
        from actstore.ingest.adapters.seamless_m4t_v2 import intervene

        self.check_conditioning(conditioning)
        return intervene.generate(self, items, clamps, max_new_tokens, conditioning)

    def load(self) -> None:
        from transformers import AutoConfig, AutoFeatureExtractor, AutoTokenizer
        from transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2 import (
            SeamlessM4Tv2Encoder, SeamlessM4Tv2SpeechEncoder)

        self.config = cfg = AutoConfig.from_pretrained(self.path, local_files_only=True)
        if cfg.add_adapter and cfg.num_adapter_layers != 1:
            raise UnknownModelError(
                f"Model {self.model_name} has {cfg.num_adapter_layers} adaptor layers; only 1 is supported "
                "(transformers feeds every adaptor layer the un-subsampled mask); use a standard "
                "SeamlessM4T v2 checkpoint.")
        common = dict(dtype=self.torch_dtype, local_files_only=True, output_loading_info=True)
        with quiet_transformers():
            speech, s_info = SeamlessM4Tv2SpeechEncoder.from_pretrained(
                self.path, key_mapping={r"^speech_encoder\.": ""}, **common)
            text, t_info = SeamlessM4Tv2Encoder.from_pretrained(
                self.path, key_mapping={r"^text_encoder\.": "", r"^shared\.": "embed_tokens."},
                **common)
        missing = list(s_info["missing_keys"]) + list(t_info["missing_keys"])
        if missing:
            raise UnknownModelError(
                f"Checkpoint {self.path} lacks encoder weights (e.g. {sorted(missing)[:3]}); it is "
                "not a full SeamlessM4T v2 checkpoint: pass the directory of the complete model.")
        self.speech_encoder = speech.to(self.device).eval()
        self.text_encoder = text.to(self.device).eval()
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(self.path, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)

        n_speech, n_text, d = cfg.speech_encoder_layers, cfg.encoder_layers, cfg.hidden_size
        speech_points = ["speech.embed"] + [f"speech.L{i}" for i in range(1, n_speech + 1)]
        if cfg.add_adapter:
            speech_points.append("speech.adaptor")
        text_points = ["text.embed"] + [f"text.L{i}" for i in range(1, n_text + 1)]
        self._points = {"speech": speech_points, "text": text_points}
        self._widths = {p: d for p in speech_points + text_points}
        self._optional, widths = decoding.declare(cfg)
        self._widths.update(widths)
        self.decoder = None

    def _load_decoder(self):
        """The shared text decoder, loaded on the first request only."""
        if self.decoder is None:
            self.decoder = decoding.load_decoder(self.path, self.torch_dtype, self.device)
        return self.decoder

    def _decode(self, items, points, enc_out, src_mask):
        """The shared text decoder, teacher-forced over each item's target, attending to
        `enc_out` (speech or text encoding) under `src_mask`."""
        dec = self._load_decoder()
        ids, tmask = decoding.target_ids(self.tokenizer, items, self.config.decoder_start_token_id,
                                         self._lang_code, self.device)
        return capture_decoder(dec, decoding.decoder_sites(dec), points, ids, tmask, src_mask,
                               encoder_hidden_states=enc_out, encoder_attention_mask=src_mask.long())

    def cost_model(self, modality: str):
        """No window: 50 frames a second (fbanks at 100/s stacked in pairs) and relative-position
        attention that materialises T x T x head_size per layer, so cost ~ T^2 (see ingest/memory.py)."""
        from actstore.ingest.memory import CostModel, element_bytes

        cfg, n = self.config, element_bytes(self.dtype_name)
        if modality == "speech":
            heads = cfg.speech_encoder_attention_heads
            rel = cfg.position_embeddings_type == "relative_key"
            return CostModel.speech(50, width=cfg.hidden_size, layers=len(self._points["speech"]),
                                    heads=heads, ffn_width=cfg.speech_encoder_intermediate_size,
                                    pair_elements=cfg.hidden_size // heads if rel else 0,
                                    bytes_per_element=n)
        return CostModel(width=cfg.hidden_size, layers=len(self._points["text"]),
                         heads=cfg.encoder_attention_heads, ffn_width=cfg.encoder_ffn_dim,
                         extra_positions=2, bytes_per_element=n)  # + language token and </s>

    # -- speech -----------------------------------------------------------------------------
    def _speech_inputs(self, items: Sequence[Item]) -> tuple[torch.Tensor, torch.Tensor]:
        short = [f"{it.lang}/{it.sample_id}" for it in items if len(it.audio) < MIN_SAMPLES]
        if short:
            raise DataSourceError(f"Speech item(s) {short} are shorter than {MIN_SAMPLES} samples "
                                  f"({MIN_SAMPLES / SAMPLE_RATE * 1000:.0f} ms), too short for "
                                  "SeamlessM4T's features; drop them.")
        feats = self.feature_extractor([it.audio.astype("float32") for it in items],
                                       sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt")
        x = feats["input_features"].to(self.device, self.torch_dtype)
        mask = feats["attention_mask"].to(self.device)
        return x, mask

    def _run_speech_encoder(self, cap: Capture, x: torch.Tensor, mask: torch.Tensor):
        """Run the speech encoder under `cap` (whose point hooks are already registered), with
        the adaptor convolutions' zero-past pre-hooks (module docstring: padding); its output,
        or None when a point hook stopped the forward early."""
        enc, lengths, outputs = self.speech_encoder, mask.sum(1), {}
        if enc.adapter is not None:
            for layer in enc.adapter.layers:
                cap.pre_hook(layer.residual_conv, _zero_past(lengths))
                cap.pre_hook(layer.self_attn_conv, _zero_past(lengths))
        cap.run(lambda: outputs.setdefault("enc", enc(input_features=x, attention_mask=mask)))
        return outputs.get("enc")

    def _adaptor_mask(self, mask: torch.Tensor, width: int) -> torch.Tensor:
        """Valid positions of the speech encoder's output (after the length adaptor, if any)."""
        n, cfg = mask.sum(1), self.config
        if self.speech_encoder.adapter is not None:
            n = adaptor_lengths(n, cfg.adaptor_kernel_size, cfg.adaptor_stride)
        return lengths_to_mask(n.to(mask.device), width)

    def encode_source(self, items: Sequence[Item], conditioning: str) -> tuple[torch.Tensor, torch.Tensor]:
        """What the shared decoder reads: the speech (after the adaptor) or the text encoder's
        output [B, S, d] and its valid positions [B, S] (call under the caller's clamps; the last
        result is reused while no clamp or hook is on that encoder: `common.decode.reuse_encoding`)."""
        from actstore.ingest.adapters.common.decode import reuse_encoding

        def speech():
            x, mask = self._speech_inputs(items)
            with Capture() as cap:
                h = self._run_speech_encoder(cap, x, mask).last_hidden_state
            return h, self._adaptor_mask(mask, h.shape[1])

        def text():
            ids, mask = self._token_ids(items)
            return self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask.bool()

        encoder = self.speech_encoder if conditioning == "speech" else self.text_encoder
        return reuse_encoding(self, encoder, items, conditioning, speech if conditioning == "speech" else text)

    def _forward_speech(self, items, points):
        enc = self.speech_encoder
        x, mask = self._speech_inputs(items)
        n_layers = len(enc.encoder.layers)
        wanted = set(points)
        modules = {"speech.embed": enc.feature_projection}
        for i in range(1, n_layers):
            modules[f"speech.L{i}"] = enc.encoder.layers[i - 1]
        modules[f"speech.L{n_layers}"] = enc.encoder
        if enc.adapter is not None:
            modules["speech.adaptor"] = enc.inner_layer_norm
        order = [p for p in self._points["speech"] if p in wanted]
        extra = [p for p in points if p not in order]
        with Capture() as cap:
            for p in order:
                cap.output_of(modules[p], p, stop=not extra and p == order[-1])
            hook_sites(cap, "speech", decoding.speech_sites(enc), extra)
            encoded = self._run_speech_encoder(cap, x, mask)
            tensors = cap.tensors
        out = {p: (tensors[p], mask.bool()) for p in extra if p in tensors}
        dec_points = [p for p in extra if p.startswith("decoder.")]
        if dec_points:
            h = encoded.last_hidden_state
            out.update(self._decode(items, dec_points, h, self._adaptor_mask(mask, h.shape[1])))
        for p in order:
            h = tensors[p]
            out[p] = (h, self._adaptor_mask(mask, h.shape[1]) if p == "speech.adaptor" else mask.bool())
        return out

    # -- text -------------------------------------------------------------------------------
    def _lang_code(self, lang: str) -> str:
        """SeamlessM4T's code for `lang`, refused when the tokenizer has no `__code__` token."""
        tok, code = self.tokenizer, seamless_lang_code(lang)
        token = f"__{code}__"
        if tok.convert_tokens_to_ids(token) in (None, tok.unk_token_id):
            raise ActstoreError(
                f"SeamlessM4T's tokenizer has no language token {token} for {lang!r}; add "
                f"the mapping to SEAMLESS_LANG_CODES or drop that language's text.")
        return code

    def _token_ids(self, items: Sequence[Item]) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        rows = [tok(it.text, src_lang=self._lang_code(it.lang))["input_ids"] for it in items]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _forward_text(self, items, points):
        enc = self.text_encoder
        ids, mask = self._token_ids(items)
        order = [p for p in self._points["text"] if p in set(points)]
        extra = [p for p in points if p not in order]
        outputs: dict = {}
        with Capture() as cap:
            cap.layer_stack("text", order, enc.layers, enc.layer_norm, stop=not extra)
            hook_sites(cap, "text", decoding.text_sites(enc), extra)
            tensors = cap.run(lambda: outputs.setdefault("enc", enc(input_ids=ids, attention_mask=mask)))
        out = {p: (tensors[p], mask.bool()) for p in order + [p for p in extra if p in tensors]}
        dec_points = [p for p in extra if p.startswith("decoder.")]
        if dec_points:
            out.update(self._decode(items, dec_points, outputs["enc"].last_hidden_state, mask.bool()))
        return out

    def _forward(self, modality, items, points):
        if modality == "speech":
            return self._forward_speech(items, points)
        return self._forward_text(items, points)
