"""Any Hugging Face text encoder that `AutoModel` loads (the generic fallback; lowest priority).

Points: `text.embed` = `hidden_states[0]` (token + position (+ type) embeddings, after the
embedding LayerNorm where the model has one), `text.L{i}` = `hidden_states[i]`, i = 1..N.

Why `output_hidden_states` here and hooks elsewhere: a generic adapter cannot know module
names, and for text models the tuple's meaning is stable -- entry 0 is the embedding output,
entry i the output of layer i, and transformers 5 makes the last entry `last_hidden_state`
(after a final norm for models that have one). For BERT-like models (no final norm) that is
layer N's output. The layer count and width are read from one probe forward at load time.

Pooling is the masked mean over the tokenizer's attention mask, special tokens ([CLS],
[SEP]) included -- the same as sentence-transformers' mean pooling, so `text.L{N}` of
all-MiniLM-L6-v2 is its sentence embedding before normalisation. Text longer than the model's
maximum length is truncated, with a `UserWarning`.

Text prefix: models trained with an instruction prefix (E5: `passage: ` / `query: `) need it on
every input. `--adapter-option text_prefix=...` sets one; a directory whose config carries
`actstore_text_prefix` (the converted multilingual-e5-small) brings its own. The prefix is
prepended before tokenisation, pooled with the sentence, and recorded in the run (`params`).

Matches any config that `AutoModel` maps to a class whose main input is `input_ids` and that
is not an encoder-decoder (those need decoder inputs); decoder-only LMs work too (right
padding keeps each item's causal states unchanged).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.common.hf import HFAdapter, quiet_transformers
from actstore.ingest.items import Item


class HFTextAdapter(HFAdapter):
    """Generic text encoder via `AutoModel` + `AutoTokenizer`."""

    modalities = ("text",)
    priority = 1000
    option_keys = ("text_prefix",)

    @property
    def text_prefix(self) -> str:
        """The prefix put before every text: the option, else the model directory's own, else none."""
        if "text_prefix" in self.options:
            return self.options["text_prefix"]
        return getattr(self._config(), "actstore_text_prefix", "") or ""

    def _config(self):
        if self.config is None:
            from transformers import AutoConfig

            self.config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        return self.config

    @property
    def info(self):
        info = super().info
        info.extra["text_prefix"] = self.text_prefix
        label = getattr(self._config(), "actstore_label", None)
        if label:  # e.g. "multilingual-e5-small, 4-bit weights (Q4_0)": what the weights are
            info.extra["weights"] = label
        return info

    @classmethod
    def matches(cls, config) -> bool:
        from transformers import MODEL_MAPPING

        if getattr(config, "is_encoder_decoder", False):
            return False
        try:
            model_cls = MODEL_MAPPING[type(config)]
        except (KeyError, ValueError, ImportError):
            return False
        return getattr(model_cls, "main_input_name", None) == "input_ids"

    def load(self) -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        try:
            with quiet_transformers():
                model = AutoModel.from_pretrained(self.path, dtype=self.torch_dtype,
                                                  local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise UnknownModelError(
                f"Cannot load {self.model_name} as a text encoder ({str(exc).splitlines()[0]}); pass a "
                "directory with the weights and a tokenizer.") from None
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model = model.to(self.device).eval()
        # tokenizers without a limit report a huge sentinel (int(1e30)): ignore those
        limits = [x for x in (self.tokenizer.model_max_length,
                              getattr(self.config, "max_position_embeddings", None))
                  if isinstance(x, int) and 0 < x < 10**9]
        self.max_length = min(limits) if limits else None
        probe = self.tokenizer(["a"], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hs = self.model(**probe, output_hidden_states=True).hidden_states
        pts = ["text.embed"] + [f"text.L{i}" for i in range(1, len(hs))]
        self._points = {"text": pts}
        self._widths = {p: int(h.shape[-1]) for p, h in zip(pts, hs)}

    def cost_model(self, modality: str):
        """The base guess (largest width at every point), with the tokenizer's truncation as a cap."""
        from dataclasses import replace

        return replace(super().cost_model(modality), max_positions=self.max_length)

    def _forward(self, modality: str, items: Sequence[Item], points: Sequence[str]):
        texts = [self.text_prefix + it.text for it in items]
        kw = dict(truncation=True, max_length=self.max_length) if self.max_length else {}
        enc = self.tokenizer(texts, padding=True, return_tensors="pt", **kw)
        if self.max_length:
            full = self.tokenizer(texts)["input_ids"]
            cut = [f"{it.lang}/{it.sample_id}" for it, ids in zip(items, full)
                   if len(ids) > self.max_length]
            if cut:
                warnings.warn(f"Truncated {len(cut)} text(s) to {self.max_length} tokens: "
                              f"{cut[:5]}", UserWarning, stacklevel=3)
        enc = enc.to(self.device)
        hs = self.model(**enc, output_hidden_states=True).hidden_states
        mask = enc["attention_mask"].bool()
        index = {p: i for i, p in enumerate(self._points["text"])}
        return {p: (hs[index[p]], mask) for p in points}
