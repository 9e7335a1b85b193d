"""SONAR text encoder (`text_sonar_basic_encoder`): per-layer states and the sentence embedding.

Model (fairseq2 family `transformer_encoder`, arch `basic`): an NLLB-style encoder -- token
embeddings x sqrt(d) + fairseq sinusoidal positions ([sin | cos] halves, first real position 2),
pre-LN layers (ReLU FFN), a model-level final LayerNorm. The sentence embedding is the masked
mean of the final LayerNorm's output over every token of the sentence.

It runs on transformers' `M2M100Encoder`, which is that architecture: the published checkpoint
`{"model": {fairseq2 names}}` is renamed key by key and the four special embedding rows are
reordered from fairseq2's vocabulary order (pad 0, unk 1, bos 2, eos 3) to the HF NLLB order
(bos 0, pad 1, eos 2, unk 3), exactly as the HF conversion script does. Token ids are produced in
fairseq2's convention and mapped to HF's, so `M2M100`'s position ids (counted from pad id 1 + 1)
are fairseq2's. `max_position_embeddings` = 514 (SONAR's `max_seq_len`).

Tokenisation (fairseq2's `NllbTokenizer`, mode `source`): `[__lang__] pieces... </s>` with the
NLLB SentencePiece model. fairseq2 inserts `<pad>` at id 0, so a SentencePiece id s becomes s+1,
and the language token of the card's i-th language is V + 1 + i (V = pieces in the model).
Sequences longer than the position encoder's `max_seq_len` keep their first `max_seq_len` tokens
and a warning names the item: that is what SONAR's `TextToEmbeddingModelPipeline.predict` does by
default (`x[:pos_encoder.max_seq_len]`), 514 tokens in the `basic` arch (a card may override it).
The item's ISO 639-3 language is mapped to SONAR's FLORES-200 code through the shipped catalogue
(`flores_code`, e.g. cmn -> zho_Hans); FLORES codes are accepted as they are; a language outside
the card's list raises `UnsupportedLanguageError` (`supports_language` asks first).

Points:
- `text.embed`: scaled embeddings + positions (input of layer 1);
- `text.L{i}`: the raw output of layer i (a pre-LN residual stream; the last one too);
- `text.pooled`: the final LayerNorm's output, masked mean = SONAR's sentence embedding.
Every point pools over the same positions: the language token, the pieces and `</s>`.

Source layouts recognised (cheap: names, a YAML card, or the pickle index inside the .pt zip):
a directory with an `asset_card.yaml` of family `transformer_encoder`/`sonar_text` or with
`sonar_text_encoder.pt` and a `*.model` SentencePiece file next to it; a `.pt` file whose keys
include `encoder_frontend.embed.weight` (with the SentencePiece model in the same folder); the
card name `text_sonar_basic_encoder` in fairseq2's asset cache (`--model text_sonar_basic_encoder`).
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Sequence

import torch

from actstore.errors import ActstoreError, UnknownModelError, UnsupportedLanguageError
from actstore.ingest.adapters.common.hf import HFAdapter, lengths_to_mask
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.common.nllb_langs import NLLB_LANGS
from actstore.ingest.adapters.sonar.checkpoint import (assign_state, card_config, card_file,
                                                        card_langs, count_layers, find_card,
                                                        load_model_state, pt_has_key, read_card,
                                                        rebuild_meta_buffers)
from actstore.ingest.adapters.base import ModelInfo
from actstore.ingest.items import Item
from actstore.ingest.model_paths import ModelSource
from actstore.ingest.adapters.common.study import STUDY_LAYERS

log = logging.getLogger(__name__)

TEXT_CHECKPOINT = "sonar_text_encoder.pt"
TEXT_FAMILIES = ("transformer_encoder", "sonar_text", "sonar_text_encoder")
MAX_SEQ_LEN = 514  # the `basic` arch: SONAR/NLLB max_seq_len
#: fairseq2 id -> HF NLLB id for the four special tokens (pieces and languages are unchanged)
FS2_TO_HF = {0: 1, 1: 3, 2: 0, 3: 2}
#: hf_rows[i] = fs2_rows[HF_ROW_SOURCE[i]] for i < 4
HF_ROW_SOURCE = (2, 0, 3, 1)
#: `basic` arch defaults, used when neither the card nor the shapes say otherwise
BASIC_HEADS = 16
_FLORES_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


@functools.lru_cache(maxsize=None)
def catalogue_flores_code(lang: str) -> str:
    """The shipped catalogue's FLORES-200 code for an ISO 639-3 code ('' if unknown)."""
    from actstore.catalogue import Catalogue

    try:
        return Catalogue.load().get(lang).flores_code
    except ActstoreError:
        return ""


def flores_code_for(lang: str, langs: Sequence[str]) -> str | None:
    """SONAR/NLLB code (e.g. eng_Latn) of an ISO 639-3 item language, or None if unsupported."""
    if lang in langs:
        return lang
    code = catalogue_flores_code(lang)
    if code and code in langs:
        return code
    if not _FLORES_CODE.match(lang):
        matches = [c for c in langs if c.split("_")[0] == lang]
        if len(matches) == 1:
            return matches[0]
    return None


class SonarTokenizer:
    """fairseq2's NLLB tokenizer (source mode) over a SentencePiece model; fairseq2 ids."""

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, model_file: str | Path, langs: Sequence[str]):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.num_pieces = self.sp.get_piece_size()
        self.langs = list(langs)
        self._lang_index = {lang: i for i, lang in enumerate(self.langs)}
        self.vocab_size = self.num_pieces + 1 + len(self.langs) + 3  # + 3 data-tag symbols

    def lang_id(self, flores_code: str) -> int:
        return self.num_pieces + 1 + self._lang_index[flores_code]

    def encode(self, text: str, flores_code: str) -> list[int]:
        """`[__lang__] pieces </s>` in fairseq2 ids (untruncated)."""
        pieces = [i + 1 for i in self.sp.encode(text)]
        return [self.lang_id(flores_code)] + pieces + [self.eos_id]


def fs2_to_hf_ids(ids: torch.Tensor) -> torch.Tensor:
    """Map fairseq2 ids to the HF NLLB convention (only ids 0..3 change)."""
    out = ids.clone()
    for a, b in FS2_TO_HF.items():
        out[ids == a] = b
    return out


def text_state_to_m2m100(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fairseq2 SONAR text encoder names -> `M2M100Encoder` names; special rows reordered."""
    renames = [(r"^encoder_frontend\.embed\.weight$", "embed_tokens.weight"),
               (r"^encoder\.layers\.(\d+)\.self_attn\.output_proj\.", r"layers.\1.self_attn.out_proj."),
               (r"^encoder\.layers\.(\d+)\.self_attn\.", r"layers.\1.self_attn."),
               (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"layers.\1.self_attn_layer_norm."),
               (r"^encoder\.layers\.(\d+)\.ffn_layer_norm\.", r"layers.\1.final_layer_norm."),
               (r"^encoder\.layers\.(\d+)\.ffn\.inner_proj\.", r"layers.\1.fc1."),
               (r"^encoder\.layers\.(\d+)\.ffn\.output_proj\.", r"layers.\1.fc2."),
               (r"^layer_norm\.", "layer_norm.")]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for pat, rep in renames:
            new, n = re.subn(pat, rep, key)
            if n:
                out[new] = value
                break
        else:
            out[key] = value  # left for the strict load to report
    emb = out.get("embed_tokens.weight")
    if emb is not None:  # one new tensor: the special rows in HF order, then every other row
        out["embed_tokens.weight"] = torch.cat([emb[list(HF_ROW_SOURCE)], emb[len(HF_ROW_SOURCE):]])
    return out


class SonarTextAdapter(HFAdapter):
    """SONAR's text encoder from its published checkpoint (see module docstring)."""

    modalities = ("text",)
    priority = 20
    study_layers = STUDY_LAYERS  # the FLEURS study's layer set (common.study)

    # -- recognition ------------------------------------------------------------------------
    @classmethod
    def _files(cls, source: ModelSource) -> tuple[Path | None, Path | None, dict | None]:
        """(checkpoint, SentencePiece model, card) of a source; None where absent."""
        extra = source.extra or {}
        card = extra.get("card")
        ckpt = Path(extra["checkpoint"]) if extra.get("checkpoint") else None
        spm = Path(extra["tokenizer"]) if extra.get("tokenizer") else None
        folder = source.path if source.is_dir else source.path.parent
        if card is None and source.is_dir and (card_path := find_card(source.path)) is not None:
            card = read_card(card_path)
        if card is not None and not cls._card_is_text(card):
            card = None
        if card is not None:
            ckpt = ckpt or card_file(folder, card.get("checkpoint"))
            spm = spm or card_file(folder, card.get("tokenizer"))
        if ckpt is None:
            if not source.is_dir:
                ckpt = source.path
            elif (folder / TEXT_CHECKPOINT).is_file():
                ckpt = folder / TEXT_CHECKPOINT
        if spm is None:
            models = sorted(folder.glob("*.model"))
            spm = models[0] if len(models) == 1 else None
        return ckpt, spm, card

    @staticmethod
    def _card_is_text(card: dict) -> bool:
        family = str(card.get("model_family", ""))
        return family in TEXT_FAMILIES or str(card.get("name", "")).startswith("text_sonar")

    @classmethod
    def recognises(cls, source: ModelSource) -> bool:
        if source.extra.get("family") == "sonar_text":
            return True
        if source.is_dir:
            card_path = find_card(source.path)
            if card_path is not None:
                try:
                    return cls._card_is_text(read_card(card_path))
                except UnknownModelError:
                    return False
            return (source.path / TEXT_CHECKPOINT).is_file()
        path = source.path
        return path.suffix == ".pt" and (path.name == TEXT_CHECKPOINT
                                         or pt_has_key(path, "encoder_frontend.embed.weight"))

    @classmethod
    def known_models(cls) -> tuple[str, ...]:
        from actstore.ingest.adapters.common import fairseq2_assets as fa

        return tuple(fa.TEXT_CARDS)

    @classmethod
    def locate(cls, model: str, cache_dir=None) -> ModelSource | None:
        from actstore.ingest.adapters.common import fairseq2_assets as fa

        cards = fa.user_cards()
        if model in cards and cls._card_is_text(cards[model][0]):
            card, folder = cards[model]
            ckpt = card_file(folder, card.get("checkpoint"))
            spm = card_file(folder, card.get("tokenizer"))
            if ckpt is not None and ckpt.is_file():
                return ModelSource(model_id=model, path=ckpt, name=model, source="fairseq2 asset card",
                                   extra={"family": "sonar_text", "card": card, "checkpoint": str(ckpt),
                                          "tokenizer": str(spm) if spm else None})
        if model not in fa.TEXT_CARDS:
            return None
        ckpt_url, spm_url = fa.TEXT_CARDS[model]
        ckpt, spm = fa.cached_download(ckpt_url), fa.cached_download(spm_url)
        if ckpt is None or spm is None:
            return None
        return ModelSource(model_id=model, path=ckpt, name=model, source="fairseq2 asset cache",
                           extra={"family": "sonar_text", "checkpoint": str(ckpt),
                                  "tokenizer": str(spm)})

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        from transformers import M2M100Config
        from transformers.models.m2m_100.modeling_m2m_100 import (
            M2M100Encoder, M2M100SinusoidalPositionalEmbedding)

        ckpt, spm, card = self._files(self.source)
        if ckpt is None or not ckpt.is_file():
            raise UnknownModelError(f"No SONAR text checkpoint found for {self.source.path}; pass "
                                    f"a directory holding {TEXT_CHECKPOINT} (or an asset card).")
        if spm is None or not spm.is_file():
            raise UnknownModelError(f"No SentencePiece model found next to {ckpt}; put the NLLB "
                                    "tokenizer (sentencepiece.source.256000.model) beside it or "
                                    "name it in the asset card's `tokenizer`.")
        self.card = card or {}
        self.tokenizer = SonarTokenizer(spm, card_langs(card) or NLLB_LANGS)
        state = load_model_state(ckpt, self.torch_dtype)
        cfg = card_config(card)
        emb = state.get("encoder_frontend.embed.weight")
        if emb is None:
            raise UnknownModelError(f"{ckpt} has no encoder_frontend.embed.weight; it is not a SONAR "
                                    "text encoder checkpoint (fairseq2 layout).")
        vocab, d = emb.shape
        if vocab != self.tokenizer.vocab_size:
            raise UnknownModelError(
                f"{ckpt} has {vocab} embedding rows but the tokenizer {spm.name} with "
                f"{len(self.tokenizer.langs)} languages gives {self.tokenizer.vocab_size} ids; pair "
                "the checkpoint with its own SentencePiece model and card.")
        n_layers = count_layers(state, "encoder.layers.")
        ffn = state["encoder.layers.0.ffn.inner_proj.weight"].shape[0]
        heads = int(cfg.get("num_encoder_attn_heads", BASIC_HEADS if d % BASIC_HEADS == 0 else 1))
        max_seq_len = int(cfg.get("max_seq_len", MAX_SEQ_LEN))
        self.max_tokens = max_seq_len
        config = M2M100Config(vocab_size=vocab, d_model=d, encoder_layers=n_layers,
                              encoder_attention_heads=heads, encoder_ffn_dim=ffn,
                              activation_function="relu", scale_embedding=True,
                              max_position_embeddings=max_seq_len, pad_token_id=1, bos_token_id=0,
                              eos_token_id=2, dropout=0.0, attention_dropout=0.0,
                              activation_dropout=0.0, encoder_layerdrop=0.0, decoder_layers=1)
        config._attn_implementation = "sdpa"
        self.config = config
        with torch.device("meta"):
            enc = M2M100Encoder(config)
        assign_state(enc, text_state_to_m2m100(state), f"Checkpoint {ckpt}")
        rebuild_meta_buffers(enc, {M2M100SinusoidalPositionalEmbedding: lambda m: M2M100SinusoidalPositionalEmbedding(
            m.num_positions, m.embedding_dim, m.padding_idx).to(self.torch_dtype)})
        self.encoder = enc.to(self.device).eval().requires_grad_(False)
        self.checkpoint = ckpt
        points = ["text.embed"] + [f"text.L{i}" for i in range(1, n_layers + 1)] + ["text.pooled"]
        self._points = {"text": points}
        self._widths = {p: d for p in points}

    def cost_model(self, modality: str):
        """An NLLB encoder over SentencePiece tokens (at most one per UTF-8 byte), capped at max_seq_len."""
        from actstore.ingest.memory import CostModel, element_bytes

        cfg = self.config
        return CostModel(width=cfg.d_model, layers=len(self._points["text"]), heads=cfg.encoder_attention_heads,
                         ffn_width=cfg.encoder_ffn_dim, max_positions=self.max_tokens, extra_positions=2,
                         bytes_per_element=element_bytes(self.dtype_name))

    @property
    def info(self) -> ModelInfo:
        self._require_loaded()
        extra = {"family": "sonar_text", "dtype": self.dtype_name, "device": str(self.device),
                 "pooling": "masked mean, float32", "source": self.source.source,
                 "checkpoint": str(self.checkpoint), "card": self.card.get("name"),
                 "max_tokens": self.max_tokens,
                 "points_note": "text.L{i} raw layer outputs; text.pooled = final LayerNorm mean "
                                "(SONAR's sentence embedding)"}
        return ModelInfo(model_id=self.model_id, name=self.model_name, adapter=self.adapter_label,
                         revision=self.revision,
                         random_init=bool(self.card.get("actstore_random_init", False)), extra=extra)

    # -- languages and tokens ---------------------------------------------------------------
    def supports_language(self, lang: str, modality: str = "text") -> bool:
        """True if the tokenizer has a language token for this ISO 639-3 (or FLORES) code."""
        self._require_loaded()
        return modality == "text" and flores_code_for(lang, self.tokenizer.langs) is not None

    def token_ids(self, items: Sequence[Item]) -> list[list[int]]:
        """fairseq2 token ids per item, truncated to `max_tokens` (with a warning)."""
        rows = []
        for it in items:
            code = flores_code_for(it.lang, self.tokenizer.langs)
            if code is None:
                raise UnsupportedLanguageError(
                    f"SONAR's tokenizer has no language token for {it.lang!r}; skip that language "
                    "or add its FLORES-200 code (flores_code) to the catalogue.")
            ids = self.tokenizer.encode(it.text, code)
            if len(ids) > self.max_tokens:
                log.warning("text item %s/%s has %d tokens; SONAR keeps the first %d",
                            it.lang, it.sample_id, len(ids), self.max_tokens)
                ids = ids[: self.max_tokens]
            rows.append(ids)
        return rows

    def forward_ids(self, ids: torch.Tensor, lengths: torch.Tensor, points: Sequence[str]
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run padded fairseq2 ids [B, T] (any pad value) -> {point: (hidden, mask)}."""
        enc = self.encoder
        mask = lengths_to_mask(lengths.to(self.device), ids.shape[1])
        hf_ids = fs2_to_hf_ids(ids.to(self.device)).masked_fill(~mask, 1)
        order = [p for p in self._points["text"] if p in set(points)]
        n_layers = len(enc.layers)
        with Capture() as cap:
            for p in order:
                stop = p == order[-1]
                if p == "text.embed":
                    cap.input_of(enc.layers[0], p, stop=stop)
                elif p == "text.pooled":
                    cap.output_of(enc.layer_norm, p, stop=stop)
                else:
                    i = int(p.split(".L")[1])
                    cap.output_of(enc.layers[i - 1], p, stop=stop and i < n_layers)
            with torch.inference_mode():
                tensors = cap.run(lambda: enc(input_ids=hf_ids, attention_mask=mask.long()))
        return {p: (tensors[p], mask) for p in order}

    def _forward(self, modality, items, points):
        rows = self.token_ids(items)
        lengths = torch.tensor([len(r) for r in rows])
        ids = torch.zeros((len(rows), int(lengths.max())), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
        return self.forward_ids(ids, lengths, points)

