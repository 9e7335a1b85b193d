"""Qwen2-Audio (transformers' `Qwen2AudioForConditionalGeneration`): audio tower, projector, LLM.

Recognised by its transformers config (`model_type == "qwen2_audio"`). The model is loaded
whole, in the requested dtype (no float32 copy); modules are found by TYPE, never by dotted
paths (transformers 4.x keeps `audio_tower` on the top model and the decoder under
`language_model.model`, transformers 5.x under `model.audio_tower` / `model.language_model`):
the audio tower is the `Qwen2AudioEncoder` instance, the projector the
`Qwen2AudioMultiModalProjector`, the decoder the module holding a `layers` ModuleList and a
`norm` (Qwen2Model in both versions).

Points (names are the API; every one a forward hook on a module, never `hidden_states`:
the LLM's last `hidden_states` entry is after the final RMSNorm):
- `speech.embed`: input of tower layer 1 = GELU(conv2(GELU(conv1(mel)))) + positions.
- `speech.L{i}`, i = 1..N: raw output of audio tower layer i (N = 32 for the released model).
- `speech.projector`: the multi-modal projector's output (tower -> 2x avg-pool -> LayerNorm ->
  Linear), i.e. exactly what the LLM receives at the audio-token positions.
- `speech.llm.L{j}`, j = 1..M: raw output of LLM decoder layer j at the audio-token positions
  (`input_ids == config.audio_token_id`).
- `text.llm.embed`: the LLM's token embeddings (its layer-1 input) at the text positions.
- `text.llm.L{j}`: raw output of LLM decoder layer j at the text positions.
Neuron sites (on request, `--sites ffn,self_attn.q,...`; `qwen2_audio/sites.py`):
`speech.llm.L{j}.ffn|self_attn.q|k|v` and `text.llm.L{j}.*`, pooled over the same positions as
the hidden states of the same name. Interventions (`actstore intervene`): `qwen2_audio/intervene.py`.
The LLM points carry `llm.` so they never collide with the tower's `speech.L{i}`; the text
embedding is `text.llm.embed`, not `text.embed`, so that analyses pairing points by depth name
never pair the tower's input (`speech.embed`) with the LLM's token embeddings.

Layer index (`layer_of`, the stored `layer` column, `--layers`): depth along the audio path.
0 = `speech.embed`, i = tower layer i, N+1 = the LLM input (`speech.projector`,
`text.llm.embed`), N+1+j = LLM layer j for both modalities. `speech.llm.Lj` and `text.llm.Lj`
share an index, the tower's layers sort before the LLM's; pick LLM layers by name (`--points`).

Prompts. Default, `mode="paired"` (`paired = True`, `encode_pairs`): one prompt per sentence
holding its audio and its text, in Qwen2-Audio's chat format (the processor's default
template: audio slot first, then the text where the instruction goes):

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    Audio 1: <|audio_bos|><|AUDIO|>...<|AUDIO|><|audio_eos|>\\n{text}<|im_end|>\\n
    <|im_start|>assistant\\n

`mode="separate"`: an audio-only prompt (the same template, text empty) for speech points and a
text-only prompt (audio slot empty) for text points, through `encode(items, points)`. The LLM is
causal and the audio comes first, so `speech.llm.L{j}` is the same in both modes; only the text
points see the audio in paired mode. Option `template` replaces the format string (fields
`{audio}` and `{text}`); `text_pool="prompt"` (default, as SALMONN's default) pools every
non-audio position of the prompt (template tokens included), `"sentence"` only the sentence's
own tokens (found by the tokenizer's character offsets). Mode, template and pooling are
recorded in `info.extra`.

Masks. Each clip is padded to the tower's fixed window on its own (30 s = 3000 mel frames for
the released model), and the tower gets transformers' attention mask over the padding, so a
batch gives its items' vectors. Only positions that hold audio are pooled:
    mel frames  L = the feature extractor's attention mask sum = ceil(samples / 160)
    tower       T = (L - 1) // 2 + 1     (conv2, stride 2)        speech.embed, speech.L{i}
    audio tokens  = (T - 2) // 2 + 1     (avg-pool 2, stride 2)   speech.projector, speech.llm.*
(`Qwen2AudioEncoder._get_feat_extract_output_lengths`, the processor's token count). Clips
shorter than `MIN_SAMPLES` (two audio tokens) are refused: with a single audio token in every
row transformers switches to its legacy merge path. Clips longer than the window are truncated
with a `UserWarning` (the feature extractor's behaviour); `actstore ingest` refuses them before
any model runs unless `--max-seconds` exceeds the window (its default). Prompts are right-padded, so causal
attention makes each row independent of the others.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from actstore.errors import ActstoreError, DataSourceError, UnknownModelError
from actstore.ingest.adapters.common.hf import HFAdapter, lengths_to_mask, quiet_transformers
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.base import ModelInfo, Pooled
from actstore.ingest.adapters.qwen2_audio import sites as llm_sites
from actstore.ingest.adapters.qwen2_audio.intervene import Qwen2AudioInterventions
from actstore.ingest.adapters.qwen2_audio.prompts import (AUDIO_SLOT, PROMPT_TEMPLATE, Prompts, pad_rows,
                                                          render, template_fields)
from actstore.ingest.items import SAMPLE_RATE, Item
from actstore.ingest.pooling import masked_mean

MODES = ("paired", "separate")
OPTIONS = ("mode", "template", "text_pool")
TEXT_POOLS = ("prompt", "sentence")
#: fewest samples giving 2 audio tokens: ceil(961/160) = 7 mel frames -> 4 tower -> 2 tokens
MIN_SAMPLES = 961


def _unique(model: torch.nn.Module, what: str, predicate) -> torch.nn.Module:
    """The one submodule satisfying `predicate` (lookup by type/attribute, not by path)."""
    found = [m for m in model.modules() if predicate(m)]
    if len(found) != 1:
        raise UnknownModelError(f"Expected one {what} in this Qwen2-Audio model, found {len(found)}; "
                                "pass a standard Qwen2AudioForConditionalGeneration checkpoint.")
    return found[0]


class Qwen2AudioAdapter(Qwen2AudioInterventions, HFAdapter):
    """Audio tower, projector and LLM of Qwen2-Audio (`model_type == "qwen2_audio"`)."""

    modalities = ("speech", "text")
    priority = 10
    paired = True  # the instance sets False for mode="separate"
    option_keys = OPTIONS
    site_kinds = llm_sites.KINDS

    @classmethod
    def matches(cls, config) -> bool:
        return getattr(config, "model_type", None) == "qwen2_audio"

    def __init__(self, source, *, name=None, device="cpu", dtype="float32", options=None):
        super().__init__(source, name=name, device=device, dtype=dtype, options=options)
        self.mode = self.options.get("mode", "paired")
        if self.mode not in MODES:
            raise ActstoreError(f"Unknown Qwen2-Audio mode {self.mode!r}; use one of {', '.join(MODES)}.")
        self.paired = self.mode == "paired"
        self.text_pool = self.options.get("text_pool", "prompt")
        if self.text_pool not in TEXT_POOLS:
            raise ActstoreError(f"Unknown text_pool {self.text_pool!r}; use one of "
                                f"{', '.join(TEXT_POOLS)}.")
        self.template = self.options.get("template", PROMPT_TEMPLATE)
        if template_fields(self.template) != {"audio", "text"}:
            raise ActstoreError("The Qwen2-Audio prompt template must hold exactly the fields "
                                "{audio} and {text}; fix the template option.")

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        from transformers import AutoConfig, AutoProcessor, Qwen2AudioForConditionalGeneration
        from transformers.models.qwen2_audio.modeling_qwen2_audio import (
            Qwen2AudioEncoder, Qwen2AudioMultiModalProjector)

        self.config = cfg = AutoConfig.from_pretrained(self.path, local_files_only=True)
        with quiet_transformers():
            model, info = Qwen2AudioForConditionalGeneration.from_pretrained(
                self.path, dtype=self.torch_dtype, local_files_only=True, output_loading_info=True)
        if info["missing_keys"]:
            raise UnknownModelError(
                f"Checkpoint {self.path} lacks Qwen2-Audio weights (e.g. "
                f"{sorted(info['missing_keys'])[:3]}); pass the directory of the complete model.")
        self.model = model.to(self.device).eval()
        self.tower = _unique(model, "audio tower (Qwen2AudioEncoder)",
                             lambda m: isinstance(m, Qwen2AudioEncoder))
        self.projector = _unique(model, "multi-modal projector",
                                 lambda m: isinstance(m, Qwen2AudioMultiModalProjector))
        self.llm = _unique(model, "language model (a module with `layers` and `norm`)",
                           lambda m: m is not self.tower and hasattr(m, "norm")
                           and isinstance(getattr(m, "layers", None), torch.nn.ModuleList))
        self.processor = proc = AutoProcessor.from_pretrained(self.path, local_files_only=True)
        self.feature_extractor, self.tokenizer = proc.feature_extractor, proc.tokenizer
        self.audio_token_id = cfg.audio_token_id
        if self.tokenizer.convert_tokens_to_ids(proc.audio_token) != self.audio_token_id:
            raise UnknownModelError(
                f"The tokenizer of {self.model_name} maps {proc.audio_token} to a different id than the "
                f"config's audio_token_id {self.audio_token_id}; save a matching processor.")
        window = self.tower.config.max_source_positions * 2
        if self.feature_extractor.nb_max_frames != window:
            raise UnknownModelError(
                f"The feature extractor of {self.model_name} makes {self.feature_extractor.nb_max_frames} "
                f"mel frames but the audio tower takes {window}; save a feature extractor whose "
                "chunk_length matches max_source_positions.")
        self.audio_slot = AUDIO_SLOT.format(bos=proc.audio_bos_token, audio=proc.audio_token,
                                            eos=proc.audio_eos_token)
        self._reserved = (proc.audio_token, proc.audio_bos_token, proc.audio_eos_token)

        self.n_tower, self.n_llm = len(self.tower.layers), len(self.llm.layers)
        d_tower, d_llm = self.tower.config.d_model, cfg.text_config.hidden_size
        speech = (["speech.embed"] + [f"speech.L{i}" for i in range(1, self.n_tower + 1)]
                  + ["speech.projector"] + [f"speech.llm.L{j}" for j in range(1, self.n_llm + 1)])
        text = ["text.llm.embed"] + [f"text.llm.L{j}" for j in range(1, self.n_llm + 1)]
        self._points = {"speech": speech, "text": text}
        self._widths = {p: (d_tower if p == "speech.embed" or p.startswith("speech.L") else d_llm)
                        for p in speech + text}
        self._sites, self._optional, widths = llm_sites.declare(self.llm)
        self._widths.update(widths)

    @property
    def info(self) -> ModelInfo:
        info = super().info
        info.extra.update({"mode": self.mode, "prompt_template": self.template,
                           "text_pool": self.text_pool, "audio_slot": getattr(self, "audio_slot", None)})
        return info

    def layer_of(self, point: str) -> int | None:
        """Depth along the audio path (module docstring); None for an unknown name."""
        n = getattr(self, "n_tower", None)
        if n is None:
            self._require_loaded()
        if point == "speech.embed":
            return 0
        if point in ("speech.projector", "text.llm.embed"):
            return n + 1
        site = llm_sites.parse(point)
        if site is not None:
            return n + 1 + site[1]
        head, _, idx = point.rpartition(".L")
        if idx.isdigit():
            if head == "speech":
                return int(idx)
            if head in ("speech.llm", "text.llm"):
                return n + 1 + int(idx)
        return None

    def speech_window(self) -> float | None:
        """The tower's window (30 s for the released model): longer clips are truncated."""
        return self.feature_extractor.n_samples / SAMPLE_RATE

    def cost_model(self, modality: str):
        """Speech: the tower over its fixed window, then the LLM over the audio tokens and the
        prompt; text: the LLM over the prompt and the text (plus the audio tokens when paired)."""
        from actstore.ingest.memory import CostModel, element_bytes

        n, tower, llm = element_bytes(self.dtype_name), self.tower.config, self.config.text_config
        audio_tokens = tower.max_source_positions // 2
        prompt = len(self.template.encode("utf-8")) + len(self.audio_slot)
        lm = dict(width=llm.hidden_size, layers=self.n_llm + 1, heads=llm.num_attention_heads,
                  ffn_width=llm.intermediate_size, bytes_per_element=n)
        if modality == "speech":
            return (CostModel(width=tower.d_model, layers=self.n_tower + 2,
                              heads=tower.encoder_attention_heads, ffn_width=tower.encoder_ffn_dim,
                              window_positions=tower.max_source_positions, bytes_per_element=n),
                    CostModel(window_positions=audio_tokens + prompt, **lm))
        return CostModel(extra_positions=prompt + (audio_tokens if self.paired else 0), **lm)

    # -- prompts ----------------------------------------------------------------------------
    def _render(self, audio_tokens: int, text: str) -> tuple[str, tuple[int, int]]:
        """The prompt string and the character span of `text` in it."""
        return render(self.template, self.audio_slot, self._reserved[0], audio_tokens, text)

    def _audio_features(self, items: Sequence[Item]):
        fe = self.feature_extractor
        long = [f"{it.lang}/{it.sample_id}" for it in items if len(it.audio) > fe.n_samples]
        if long:
            warnings.warn(f"Truncating {len(long)} clip(s) longer than Qwen2-Audio's "
                          f"{fe.n_samples / SAMPLE_RATE:g} s window: {long[:5]}", UserWarning,
                          stacklevel=4)
        short = [f"{it.lang}/{it.sample_id}" for it in items if len(it.audio) < MIN_SAMPLES]
        if short:
            raise DataSourceError(f"Speech item(s) {short} are shorter than {MIN_SAMPLES} samples "
                                  "(2 audio tokens), too short for Qwen2-Audio; drop them.")
        feats = fe([np.asarray(it.audio, dtype=np.float32) for it in items],
                   sampling_rate=SAMPLE_RATE, padding="max_length", return_attention_mask=True,
                   return_tensors="pt")
        mask = feats["attention_mask"].to(self.device)
        tower_len, token_len = self.tower._get_feat_extract_output_lengths(mask.sum(-1))
        return feats["input_features"].to(self.device, self.torch_dtype), mask, tower_len, token_len

    def _prompts(self, speech: Sequence[Item] | None, text: Sequence[Item] | None,
                 targets: Sequence[list[int]] | None = None) -> Prompts:
        """Tokenise one prompt per row: its audio (if `speech`), its text (if `text`), then its
        `targets` token ids if given (interventions: `Prompts.target` marks them)."""
        n = len(speech if speech is not None else text)
        features = feature_mask = tower_len = token_len = None
        if speech is not None:
            features, feature_mask, tower_len, token_len = self._audio_features(speech)
        sentences = [""] * n
        if text is not None:
            for it in text:
                bad = [t for t in self._reserved if t in it.text]
                if bad:
                    raise DataSourceError(f"Text item {it.lang}/{it.sample_id} contains Qwen2-Audio's "
                                          f"special token(s) {bad}; remove them from the text.")
            sentences = [it.text for it in text]
        rows, spans = [], []
        for b in range(n):
            prompt, (start, end) = self._render(int(token_len[b]) if speech is not None else 0,
                                                sentences[b])
            enc = self.tokenizer(prompt, return_offsets_mapping=True)
            rows.append(enc["input_ids"])
            spans.append([s < end and e > start for s, e in enc["offset_mapping"]])
        n_prompt = [len(r) for r in rows]
        if targets is not None:
            rows = [r + list(t) for r, t in zip(rows, targets)]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids, attn, sentence = pad_rows(rows, spans, pad)
        audio = (ids == self.audio_token_id) & attn.bool()
        if speech is not None and not torch.equal(audio.sum(1), token_len.cpu()):
            raise ActstoreError("The prompt's audio-token count differs from the audio tower's "
                                "output length; the template or tokenizer splits the audio token.")
        text_mask = sentence if self.text_pool == "sentence" else (attn.bool() & ~audio)
        dev = self.device
        target = None
        if targets is not None:
            pos = torch.arange(ids.shape[1])
            target = ((pos >= torch.tensor(n_prompt)[:, None]) & attn.bool()).to(dev)
        return Prompts(ids.to(dev), attn.to(dev), audio.to(dev), text_mask.to(dev), features,
                       feature_mask, tower_len, token_len, target)

    # -- forward ----------------------------------------------------------------------------
    def _modules(self) -> list[tuple[str, torch.nn.Module, str]]:
        """(internal name, module, "in"/"out") in the order the forward reaches them."""
        mods = [("tower.embed", self.tower.layers[0], "in")]
        mods += [(f"tower.L{i}", layer, "out") for i, layer in enumerate(self.tower.layers, 1)]
        mods += [("projector", self.projector, "out"), ("llm.embed", self.llm.layers[0], "in")]
        mods += [(f"llm.L{j}", layer, "out") for j, layer in enumerate(self.llm.layers, 1)]
        return mods

    @staticmethod
    def _internal(point: str) -> str:
        """Hook name of a point: speech.embed -> tower.embed, text.llm.L3 -> llm.L3,
        text.llm.L3.ffn -> llm.L3.ffn, ..."""
        if point == "speech.embed" or (point.startswith("speech.L")):
            return "tower." + point.split(".", 1)[1]
        if point == "speech.projector":
            return "projector"
        if point == "text.llm.embed":
            return "llm.embed"
        return point.split(".", 1)[1]  # speech.llm.Lj / text.llm.Lj

    def _run(self, batch: Prompts, points: Sequence[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """One forward with hooks; {point: (hidden [B, T, d], mask [B, T])}."""
        sites = [p for p in points if llm_sites.parse(p)]
        wanted = {self._internal(p) for p in points if p not in sites}
        # the forward must reach the deepest site's layer: stop after that layer's output
        wanted |= {f"llm.L{llm_sites.parse(p)[1]}" for p in sites}
        mods = [m for m in self._modules() if m[0] in wanted]
        kwargs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
        if batch.features is not None:
            kwargs.update(input_features=batch.features, feature_attention_mask=batch.feature_mask)
        with Capture() as cap:
            for name, module, where in mods:
                hook = cap.input_of if where == "in" else cap.output_of
                hook(module, name, stop=(name == mods[-1][0]))
            for p in dict.fromkeys(map(self._internal, sites)):  # speech./text. share a module
                site = self._sites["speech." + p]
                (cap.input_of if site.read == "input" else cap.output_of)(site.module, p)
            tensors = cap.run(lambda: self.model(**kwargs))
        out = {}
        for p in points:
            h = tensors[self._internal(p)]
            if p.startswith("speech.llm."):
                mask = batch.audio
            elif p.startswith("text."):
                mask = batch.text
            elif p == "speech.projector":
                mask = lengths_to_mask(batch.token_len.to(h.device), h.shape[1])
            else:
                mask = lengths_to_mask(batch.tower_len.to(h.device), h.shape[1])
            out[p] = (h, mask)
        return out

    def _forward(self, modality, items, points):
        if self.paired:
            raise ActstoreError("This Qwen2-Audio adapter runs in paired mode: call encode_pairs() "
                                "with each sentence's speech and text, or load it with "
                                "options={'mode': 'separate'}.")
        if modality == "speech":
            return self._run(self._prompts(items, None), points)
        return self._run(self._prompts(None, items), points)

    def encode_pairs(self, speech: Sequence[Item], text: Sequence[Item],
                     points: Sequence[str]) -> dict[str, Pooled]:
        """speech[i] and text[i] (same sentence and language) in one prompt; pools every point."""
        if len(speech) != len(text):
            raise ActstoreError(f"encode_pairs got {len(speech)} speech and {len(text)} text items; "
                                "pair each sentence's speech with its text.")
        for s, t in zip(speech, text):
            if (s.sentence_id, s.lang) != (t.sentence_id, t.lang):
                raise ActstoreError(f"Speech {s.lang}/{s.sentence_id} is paired with text "
                                    f"{t.lang}/{t.sentence_id}; pair items of the same sentence and "
                                    "language.")
        if len(speech) == 0:
            return {p: Pooled(np.zeros((0, self.width(p)), np.float32), np.zeros(0, np.int64))
                    for p in points}
        by_mod = {m: [p for p in points if p.startswith(m + ".")] for m in self.modalities}
        other = [p for p in points if not any(p in v for v in by_mod.values())]
        if other:
            self.width(other[0])  # raises the unknown-point error
        self._check_batch(speech, by_mod["speech"])
        self._check_batch(text, by_mod["text"])
        with torch.inference_mode():
            captured = self._run(self._prompts(speech, text), list(points))
            return {p: _pool(captured[p], speech if p.startswith("speech.") else text, p)
                    for p in points}


def _pool(hidden_mask: tuple[torch.Tensor, torch.Tensor], items: Sequence[Item], point: str) -> Pooled:
    hidden, mask = hidden_mask
    try:
        pooled, n = masked_mean(hidden, mask)
    except DataSourceError:
        empty = [f"{items[b].lang}/{items[b].sample_id}"
                 for b in (mask.sum(1) == 0).nonzero().flatten().tolist()]
        raise DataSourceError(f"Item(s) {empty} have no valid position at {point}; drop them.") from None
    return Pooled(pooled.cpu().numpy(), n.cpu().numpy())
