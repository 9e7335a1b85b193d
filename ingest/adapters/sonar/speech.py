"""SONAR speech encoders (`sonar_speech_encoder_<lang>`): conformer states and the pooled embedding.

Model (fairseq2 family `sonar_speech`; arch `english` or `non_english`), one checkpoint per
language (`spenc.eng.pt`, `spenc.v3ap.<lang>.pt`, `spenc.v5ap.<lang>.pt`):
- front end (`sonar.fbank`): 80-bin Kaldi fbank of the 16 kHz waveform x 2^15, standardised per
  utterance and bin; pairs of frames stacked -> 160 -> LayerNorm(160) -> Linear(160, d);
- a conformer (macaron FFNs x 1/2 with swish, Transformer-XL relative-position self-attention with
  u/v biases, a "same" depthwise convolution with BatchNorm running statistics, a block-final
  LayerNorm): transformers' SeamlessM4T (v1) conformer classes with
  `position_embeddings_type="relative"` are exactly this. `_attn_implementation` is set
  explicitly: without it a standalone conformer silently ignores the padding mask;
- SONAR's post-encoder LayerNorm;
- an attention pooler: one query (row `bos_idx` = 2 of a d x d embedding table x sqrt(d), plus the
  sinusoidal encoding of step 0 = [0...0 | 1...1]) through 3 (English) or 6 (other languages)
  post-LN decoder layers (self-attention over the single query, cross-attention to the valid
  frames only, ReLU FFN), then a bias-free projection. The depth is read from the checkpoint.

The published files are fairseq1 state dicts under `["model"]`; SONAR's converter drops
`mask_emb`, the unused `pos_conv.*`, `decoder.version` and `decoder.embed_positions._float_tensor`
and so does `speech_state_map`. Everything else loads strictly, BatchNorm statistics included.

Padding: the conformer zeroes padded frames before each depthwise convolution and masks
attention; the pooler attends to valid frames only. A padded batch therefore gives each item
the same vectors as running it alone (the fixture shows 0.0 difference for the conformer points).

Points: `speech.embed` (front-end output), `speech.L{i}` (conformer block i output, the block's
own final LayerNorm included), `speech.final_norm` (SONAR's post-encoder LayerNorm = the pooler's
input), `speech.pooled` (the pooler output = SONAR's sentence embedding; one position, so its
`n_frames` is 1). Frame masks: an item of n samples has floor((1 + (n - 400) // 160) / 2) frames.

Languages: the source is a directory with one or more `spenc.*.pt` files (the language is the
second-to-last dot-separated part of the name) and/or asset cards pointing at them, a single
`spenc.*.pt` file, or a card name found in fairseq2's asset cache. The checkpoint for a batch is
chosen from the items' language (ISO 639-3; the catalogue's FLORES code prefix as a fallback);
one model is held at a time. A language without a checkpoint raises `UnsupportedLanguageError`
(the pipeline asks `supports_language` first and reports the job as skipped).

Audio: actstore items are 16 kHz mono float32 by contract (`Item`); SONAR's pipeline does not
resample and neither does this adapter -- the fbank refuses any other rate with an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch

from actstore.errors import DataSourceError, UnknownModelError, UnsupportedLanguageError
from actstore.ingest.adapters.common.hf import HFAdapter, lengths_to_mask
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.sonar.checkpoint import (assign_state, card_config, card_file,
                                                        count_layers, load_model_state, pt_has_key,
                                                        read_card,
                                                        rebuild_meta_buffers)
from actstore.ingest.adapters.sonar.fbank import MIN_SAMPLES, collate, sonar_fbank
from actstore.ingest.adapters.sonar.speech_model import DROPPED, SonarSpeechEncoder, speech_state_map
from actstore.ingest.adapters.base import ModelInfo
from actstore.ingest.model_paths import ModelSource
from actstore.ingest.adapters.common.study import STUDY_LAYERS

SPEECH_FAMILIES = ("sonar_speech",)
_SPENC = re.compile(r"^spenc\..+\.pt$")


def checkpoint_lang(path: Path) -> str:
    """Language of a SONAR speech checkpoint from its file name (spenc[.vNap].<lang>.pt)."""
    return path.name.split(".")[-2]


class SonarSpeechAdapter(HFAdapter):
    """SONAR's per-language speech encoders (see module docstring)."""

    modalities = ("speech",)
    priority = 20
    study_layers = STUDY_LAYERS  # the FLEURS study's layer set (common.study)

    # -- recognition ------------------------------------------------------------------------
    @staticmethod
    def _card_is_speech(card: dict) -> bool:
        return (str(card.get("model_family", "")) in SPEECH_FAMILIES
                or str(card.get("base", "")).startswith("sonar_speech_encoder")
                or str(card.get("name", "")).startswith("sonar_speech_encoder"))

    @classmethod
    def _checkpoints(cls, source: ModelSource) -> dict[str, tuple[Path, dict | None]]:
        """Language -> (checkpoint file, its card or None) for a source."""
        found: dict[str, tuple[Path, dict | None]] = {}
        given = source.extra.get("checkpoints")
        if given:
            return {lang: (Path(p), source.extra.get("cards", {}).get(lang)) for lang, p in given.items()}
        if not source.is_dir:
            return {checkpoint_lang(source.path): (source.path, None)}
        folder = source.path
        for card_path in sorted(folder.glob("*.y*ml")):
            try:
                card = read_card(card_path)
            except UnknownModelError:
                continue
            if not cls._card_is_speech(card):
                continue
            ckpt = card_file(folder, card.get("checkpoint"))
            if ckpt is not None and ckpt.is_file():
                found[checkpoint_lang(ckpt)] = (ckpt, card)
        for f in sorted(folder.glob("spenc.*.pt")):
            found.setdefault(checkpoint_lang(f), (f, None))
        return found

    @classmethod
    def recognises(cls, source: ModelSource) -> bool:
        if source.extra.get("family") == "sonar_speech":
            return True
        if not source.is_dir:
            p = source.path
            return p.suffix == ".pt" and (bool(_SPENC.match(p.name))
                                          or cls._pt_is_speech(p))
        if any(source.path.glob("spenc.*.pt")):
            return True
        for card_path in source.path.glob("*.y*ml"):
            try:
                if cls._card_is_speech(read_card(card_path)):
                    return True
            except UnknownModelError:
                continue
        return False

    @staticmethod
    def _pt_is_speech(path: Path) -> bool:
        return pt_has_key(path, "encoder.w2v_model.post_extract_proj")

    @classmethod
    def known_models(cls) -> tuple[str, ...]:
        return ("sonar_speech_encoder", "sonar_speech_encoder_eng")

    @classmethod
    def locate(cls, model: str, cache_dir=None) -> ModelSource | None:
        from actstore.ingest.adapters.common import fairseq2_assets as fa

        cards = fa.user_cards()
        if model in cards and cls._card_is_speech(cards[model][0]):
            card, folder = cards[model]
            ckpt = card_file(folder, card.get("checkpoint"))
            if ckpt is not None and ckpt.is_file():
                lang = checkpoint_lang(ckpt)
                return ModelSource(model_id=model, path=ckpt, name=model, source="fairseq2 asset card",
                                   extra={"family": "sonar_speech", "checkpoints": {lang: str(ckpt)},
                                          "cards": {lang: card}})
        if model == "sonar_speech_encoder":  # every language already in the cache
            found = fa.cached_speech_checkpoints()
            if not found:
                return None
            return ModelSource(model_id=model, path=fa.cache_dir(), name=model,
                               source="fairseq2 asset cache",
                               extra={"family": "sonar_speech",
                                      "checkpoints": {k: str(v) for k, v in found.items()}})
        if not model.startswith(fa.SPEECH_CARD_PREFIX):
            return None
        lang = model[len(fa.SPEECH_CARD_PREFIX):]
        for url in fa.speech_urls(lang):
            ckpt = fa.cached_download(url)
            if ckpt is not None:
                return ModelSource(model_id=model, path=ckpt, name=model, source="fairseq2 asset cache",
                                   extra={"family": "sonar_speech", "checkpoints": {lang: str(ckpt)}})
        return None

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        self._ckpts = self._checkpoints(self.source)
        if not self._ckpts:
            raise UnknownModelError(f"No SONAR speech checkpoint (spenc.*.pt) found at "
                                    f"{self.source.path}; pass a directory holding one or more.")
        self._model: SonarSpeechEncoder | None = None
        self._model_lang: str | None = None
        self._pooler_depths: dict[str, int] = {}
        first = "eng" if "eng" in self._ckpts else sorted(self._ckpts)[0]
        self._use(first)
        n_layers = len(self._model.encoder.layers)
        d = self._model.encoder.config.hidden_size
        self._shape = (n_layers, d)
        points = (["speech.embed"] + [f"speech.L{i}" for i in range(1, n_layers + 1)]
                  + ["speech.final_norm", "speech.pooled"])
        self._points = {"speech": points}
        self._widths = {p: d for p in points}

    def cost_model(self, modality: str):
        """No window: 50 frames a second (fbanks stacked in pairs) through relative-position
        attention (sdpa): cost ~ T^2 x heads. Measured on the tiny model: 0.55-0.85x this estimate."""
        from actstore.ingest.memory import CostModel, element_bytes

        cfg = self._model.encoder.config
        return CostModel.speech(50, width=cfg.hidden_size, layers=len(self._points["speech"]),
                                heads=cfg.speech_encoder_attention_heads,
                                ffn_width=cfg.speech_encoder_intermediate_size,
                                bytes_per_element=element_bytes(self.dtype_name))

    def _build(self, path: Path, card: dict | None) -> SonarSpeechEncoder:
        from transformers import SeamlessM4TConfig
        from transformers.models.seamless_m4t.modeling_seamless_m4t import (
            SeamlessM4TConformerRelPositionalEmbedding)

        state = speech_state_map(load_model_state(path, self.torch_dtype,
                                                  keep=lambda k: not DROPPED.search(k)))
        try:
            d = state["feature_projection.projection.weight"].shape[0]
            feat = state["feature_projection.projection.weight"].shape[1]
            heads = state["encoder.layers.0.self_attn.pos_bias_u"].shape[0]
            ffn = state["encoder.layers.0.ffn1.intermediate_dense.weight"].shape[0]
            kernel = state["encoder.layers.0.conv_module.depthwise_conv.weight"].shape[-1]
            pooler_ffn = state["pooler.layers.0.fc1.weight"].shape[0]
        except KeyError as exc:
            raise UnknownModelError(f"{path} lacks {exc.args[0]}; it is not a SONAR speech encoder "
                                    "checkpoint (fairseq1 layout under ['model']).") from None
        cfg = card_config(card)
        pooler_heads = int(cfg.get("num_decoder_attn_heads", heads))
        config = SeamlessM4TConfig(
            hidden_size=d, speech_encoder_layers=count_layers(state, "encoder.layers."),
            speech_encoder_attention_heads=heads, speech_encoder_intermediate_size=ffn,
            conv_depthwise_kernel_size=kernel, position_embeddings_type="relative",
            speech_encoder_hidden_act="swish", feature_projection_input_dim=feat,
            speech_encoder_dropout=0.0, speech_encoder_layerdrop=0.0, layer_norm_eps=1e-5,
            max_source_positions=int((cfg.get("w2v2_encoder_config") or {}).get("max_seq_len", 4096)),
            vocab_size=8, t2u_vocab_size=8, add_adapter=False)
        config._attn_implementation = "sdpa"
        with torch.device("meta"):
            model = SonarSpeechEncoder(config, pooler_heads, pooler_ffn,
                                       count_layers(state, "pooler.layers."))
        assign_state(model, state, f"Checkpoint {path}")
        rebuild_meta_buffers(model, {SeamlessM4TConformerRelPositionalEmbedding:
                                     lambda m: SeamlessM4TConformerRelPositionalEmbedding(config)})
        return model.to(self.device).eval().requires_grad_(False)

    def _use(self, lang: str) -> SonarSpeechEncoder:
        """The model for `lang`, loading its checkpoint (and dropping the previous one) if needed."""
        if self._model_lang != lang:
            self._model = None  # free the previous language's weights first
            path, card = self._ckpts[lang]
            model = self._build(path, card)
            if self._points:
                n_layers, d = self._shape
                if (len(model.encoder.layers), model.encoder.config.hidden_size) != (n_layers, d):
                    raise UnknownModelError(
                        f"{path} has {len(model.encoder.layers)} layers of width "
                        f"{model.encoder.config.hidden_size}, unlike the other checkpoints "
                        f"({n_layers} x {d}); put checkpoints of one model size in a directory.")
            self._model, self._model_lang = model, lang
            self._pooler_depths[lang] = len(model.pooler.layers)
        return self._model

    @property
    def languages(self) -> list[str]:
        """Languages with a checkpoint in this source."""
        return sorted(self._ckpts)

    def checkpoint_for(self, lang: str) -> str | None:
        """The checkpoint language used for an item language, or None."""
        if lang in self._ckpts:
            return lang
        from actstore.ingest.adapters.sonar.text import catalogue_flores_code

        code = catalogue_flores_code(lang).split("_")[0]
        return code if code in self._ckpts else None

    def supports_language(self, lang: str, modality: str = "speech") -> bool:
        """True if a checkpoint for this language is in the source."""
        return modality == "speech" and self.checkpoint_for(lang) is not None

    @property
    def info(self) -> ModelInfo:
        self._require_loaded()
        cards = [c for _, c in self._ckpts.values() if c]
        random_init = any(bool(c.get("actstore_random_init")) for c in cards)
        extra = {"family": "sonar_speech", "dtype": self.dtype_name, "device": str(self.device),
                 "pooling": "masked mean, float32; speech.pooled = attention pooler output",
                 "source": self.source.source,
                 "checkpoints": {k: str(v[0]) for k, v in self._ckpts.items()},
                 "pooler_layers": dict(self._pooler_depths),
                 "front_end": "kaldi-native-fbank 80 bins, no dither, x2^15, per-utterance "
                              "standardisation, 2-frame stacking; 16 kHz only"}
        return ModelInfo(model_id=self.model_id, name=self.model_name, adapter=self.adapter_label,
                         revision=self.revision, random_init=random_init, extra=extra)

    # -- forward ----------------------------------------------------------------------------
    def forward_fbank(self, lang: str, fbank: torch.Tensor, fbank_lengths: torch.Tensor,
                      points: Sequence[str], query_states: list | None = None
                      ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run standardised, zero-padded fbank [B, T, 80] of one language -> {point: (h, mask)}.

        `query_states`, if given, receives the pooler query after its frontend and each layer.
        """
        model = self._use(lang)
        b, t, c = fbank.shape
        t2 = t // 2
        x = fbank[:, : 2 * t2].reshape(b, t2, 2 * c).to(self.device, self.torch_dtype)
        frames = torch.div(fbank_lengths, 2, rounding_mode="floor").to(self.device)
        mask = lengths_to_mask(frames, t2)
        order = [p for p in self._points["speech"] if p in set(points)]
        hooked = [p for p in order if p != "speech.pooled"]
        pool = "speech.pooled" in order or query_states is not None
        enc = model.encoder
        modules = {"speech.embed": model.feature_projection, "speech.final_norm": enc.layer_norm}
        modules.update({f"speech.L{i}": layer for i, layer in enumerate(enc.layers, start=1)})
        with Capture() as cap, torch.inference_mode():
            for p in hooked:  # without the pooler, stop after the deepest requested point
                cap.output_of(modules[p], p, stop=(p == hooked[-1] and not pool))
            if pool and "speech.final_norm" not in hooked:
                cap.output_of(enc.layer_norm, "speech.final_norm")
            tensors = cap.run(lambda: enc(model.feature_projection(x), attention_mask=mask.long()))
            out = {p: (tensors[p], mask) for p in hooked}
            if pool:
                pooled = model.pooler(tensors["speech.final_norm"], mask, query_states)
                if "speech.pooled" in order:
                    out["speech.pooled"] = (pooled[:, None, :],
                                            torch.ones(b, 1, dtype=torch.bool, device=pooled.device))
        return out

    def _forward(self, modality, items, points):
        short = [f"{it.lang}/{it.sample_id}" for it in items if len(it.audio) < MIN_SAMPLES]
        if short:
            raise DataSourceError(f"Speech item(s) {short} are shorter than {MIN_SAMPLES} samples "
                                  "(35 ms), too short for SONAR's front end; drop them.")
        groups: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            lang = self.checkpoint_for(it.lang)
            if lang is None:
                raise UnsupportedLanguageError(
                    f"No SONAR speech checkpoint for {it.lang!r} in {self.source.path} (have "
                    f"{', '.join(self.languages)}); skip that language or add its spenc.*.pt file.")
            groups.setdefault(lang, []).append(i)
        results: dict[str, list[tuple[list[int], torch.Tensor, torch.Tensor]]] = {p: [] for p in points}
        for lang, idx in groups.items():
            fb, lengths = collate([sonar_fbank(items[i].audio) for i in idx])
            got = self.forward_fbank(lang, torch.from_numpy(fb), torch.from_numpy(lengths), points)
            for p in points:
                results[p].append((idx, *got[p]))
        out = {}
        for p in points:
            t_max = max(h.shape[1] for _, h, _ in results[p])
            some_h = results[p][0][1]
            hidden = some_h.new_zeros((len(items), t_max, some_h.shape[-1]))
            mask = torch.zeros((len(items), t_max), dtype=torch.bool, device=some_h.device)
            for idx, h, m in results[p]:
                hidden[idx, : h.shape[1]] = h
                mask[idx, : m.shape[1]] = m
            out[p] = (hidden, mask)
        return out

