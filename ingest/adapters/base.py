"""What every model adapter provides: the contract third-party adapters are written against.

An adapter loads one family of models, names its extraction points, and turns a batch of
`Item`s of one modality into one pooled float32 vector per (item, point). Points are named
`{modality}.{name}`: `speech.embed`, `speech.L3`, `speech.adaptor`, `text.embed`, `text.L12`, ...
(names are the API; keep them stable).

Optional points (`optional_points`), extracted only when asked for by name or by `--sites`:
- neuron *sites* `{stack}.L{i}.{kind}`, stack `speech`/`text` (encoders) or `decoder`, kind
  `ffn` (the FFN activation after its nonlinearity, the input of fc2; a conformer's two FFNs
  are `ffn1`/`ffn2`), `self_attn.q|k|v`, `cross_attn.q|k|v` (decoder; k/v read the encoder
  output). Widths: the FFN width, or d_model for projections (`common/sites.py`);
- decoder hidden states `decoder.L{i}` (encoder-decoder families), from a TEACHER-FORCED
  decoder run over `Item.target` conditioned on the item's own encoding: a decoder row's
  modality is its conditioning (speech- or text-conditioned decoding). Decoder-stream points
  pool over the target positions, cross-attention k/v over the source positions.

How an adapter is found (docs/ARCHITECTURE.md, "Extension points"):
- it is registered as a Python entry point in the group `actstore.adapters`
  (`name = "package.module:AdapterClass"`); the built-ins register the same way;
- `--adapter NAME` picks it explicitly; otherwise the model is resolved to a `ModelSource` (a
  directory or a checkpoint file) and every adapter, in `priority` order, is asked whether it
  `recognises` it: by its transformers config, by a checkpoint file layout, by an asset card;
- `locate` lets a family resolve names of its own (e.g. fairseq2 asset cards in fairseq2's cache).

The constructor does no heavy work: `load()` reads weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from actstore.ingest.model_paths import ModelSource
from actstore.ingest.items import Item

if TYPE_CHECKING:  # torch stays unimported until a model loads
    from actstore.ingest.adapters.common.clamps import Clamp
    from actstore.ingest.adapters.common.sites import Site

#: the default bound of `Adapter.generate` (greedy decoding), in new tokens
MAX_NEW_TOKENS = 48


@dataclass
class Pooled:
    """Pooled output of one batch at one point.

    vectors: (B, d) float32, the masked mean over the point's valid positions.
    n_frames: (B,) int, how many positions were pooled for each item.
    """

    vectors: np.ndarray
    n_frames: np.ndarray


@dataclass
class ModelInfo:
    """Provenance of a loaded model, written to the `runs` table."""

    model_id: str                  # what the user passed (hub id or directory)
    name: str                      # stored model name (the `model` column)
    adapter: str                   # adapter registry name (or class name)
    revision: str | None = None    # hub commit hash when loaded from the HF cache
    random_init: bool = False      # True for random-initialised test/demo models: label results!
    extra: dict = field(default_factory=dict)


class Adapter(ABC):
    """Base class. Subclasses do no heavy work until `load()`.

    Two names, never mixed: `family` is the CLASS's registry name (the entry point's, e.g.
    "seamless-m4t-v2", what `--adapter` takes and provenance records as the adapter);
    `model_name` is the INSTANCE's stored model name (the `model` column, `--name`).

    The pipeline reads only what is declared here. Required: `load`, `info`, `points`,
    `layer_of`, `width`, `encode`. Optional, each with the default below: the class attributes
    `modalities`, `priority`, `paired`, `study_layers`, `window_seconds`, `option_keys`, and the
    methods
    `recognises`, `locate`, `known_models`, `supports_language`, `speech_window`, `cost_model`, `encode_pairs`
    (paired adapters only) and `select_points`.
    """

    #: registry name (the entry point's name, e.g. "seamless-m4t-v2"); set by the registry
    family: ClassVar[str] = ""
    #: modalities this adapter encodes, e.g. ("speech", "text")
    modalities: ClassVar[tuple[str, ...]] = ()
    #: lower is asked first when several adapters recognise a model (generic text is last)
    priority: ClassVar[int] = 50
    #: True when a sentence's speech and text items must meet in ONE forward (SALMONN-style
    #: prompts); the pipeline then calls `encode_pairs` instead of `encode`
    paired: ClassVar[bool] = False
    #: the study's layer set for `--layers study` (None: every layer)
    study_layers: ClassVar[tuple[int, ...] | None] = None
    #: the longest audio the model reads, in seconds (Whisper-style fixed windows: longer clips
    #: are truncated by the model); None: no window. It is the default `--max-seconds`
    #: (actstore.ingest.memory); override `speech_window()` when the loaded checkpoint decides it
    window_seconds: ClassVar[float | None] = None
    #: neuron-site kinds this family declares (`common/sites.py`: "ffn", "self_attn.q", ...)
    site_kinds: ClassVar[tuple[str, ...]] = ()
    #: True for encoder-decoder families whose decoder runs teacher-forced (`decoder.*` points)
    decodes: ClassVar[bool] = False
    #: True when its decoder also reads targets in another language (`--target-lang`): translation
    translates: ClassVar[bool] = False
    #: the `--adapter-option` keys this family reads; any other key is refused when the adapter
    #: is built (an option silently ignored would change nothing and be recorded nowhere)
    option_keys: ClassVar[tuple[str, ...]] = ()
    #: source modalities the decoder can be conditioned on in interventions (Whisper:
    #: ("speech",); SeamlessM4T v2: ("speech", "text")); empty: no interventions
    conditionings: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def recognises(cls, source: ModelSource) -> bool:
        """True if this adapter reads `source` (cheap: look at files, never load weights)."""
        return False

    @classmethod
    def locate(cls, model: str, cache_dir: str | Path | None) -> ModelSource | None:
        """Resolve a name only this family knows (e.g. a fairseq2 asset card), or None."""
        return None

    @classmethod
    def known_models(cls) -> tuple[str, ...]:
        """Names `locate` answers to, offered as "did you mean" when `--model` is not found."""
        return ()

    def __init__(self, source: ModelSource, *, name: str | None = None, device: str = "cpu",
                 dtype: str = "float32", options: dict | None = None):
        """Remember where to load from; `load()` does the work.

        name: the stored model name (default: the source's); device/dtype: the model's (pooling
        is float32 regardless); options: adapter-specific settings (e.g. a prompt template),
        recorded in provenance through `info.extra`.
        """
        self.source = source
        #: the stored model name (the `model` column); `family` is the adapter's registry name
        self.model_name = name or source.name
        self.dtype_name = dtype
        self.options = dict(options or {})
        unknown = sorted(set(self.options) - set(self.option_keys))
        if unknown:
            from actstore.errors import ActstoreError

            allowed = f"use {', '.join(self.option_keys)}" if self.option_keys else "it takes none"
            raise ActstoreError(f"Unknown {self.adapter_label} option(s) {unknown}; {allowed}.")

    @abstractmethod
    def load(self) -> None:
        """Load weights and the preprocessor, put the model in eval mode on the device."""

    @property
    def adapter_label(self) -> str:
        """What provenance records as the adapter: registry name, else the class name."""
        return type(self).family or type(self).__name__

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Provenance for the runs table."""

    @abstractmethod
    def points(self, modality: str) -> list[str]:
        """All extraction point names for a modality, in depth order."""

    @abstractmethod
    def layer_of(self, point: str) -> int | None:
        """Depth index for ordering (0 for embeddings, i for layer i); None if not a layer."""

    def optional_points(self, modality: str) -> list[str]:
        """Points extracted only on request (sites, decoder states); see the module docstring.
        Default: none."""
        return []

    def has_decoder(self) -> bool:
        """True when the family can decode teacher-forced (`decoder.*` points exist)."""
        return type(self).decodes

    @abstractmethod
    def width(self, point: str) -> int:
        """Vector width at a point."""

    @abstractmethod
    def encode(self, items: Sequence[Item], points: Sequence[str]) -> dict[str, Pooled]:
        """Forward one batch (all items share a modality) and pool every requested point.

        Pooling is a masked mean in float32 over each point's own valid positions, so a padded
        batch gives the same vectors as running each item alone (to 1e-5).
        """

    def supports_language(self, lang: str, modality: str) -> bool:
        """False when the loaded model has no weights for `lang` in `modality` (e.g. SONAR's
        per-language speech encoders): the pipeline then reports that job as skipped, not failed.
        `lang` is the catalogue's ISO 639-3 code. Default: every language."""
        return True

    def speech_window(self) -> float | None:
        """Seconds of audio the loaded model reads at once (None: no window); see `window_seconds`."""
        return self.window_seconds

    def cost_model(self, modality: str):
        """How a forward's activation memory grows with input length, for `--memory-budget`.

        Returns an `actstore.ingest.memory.CostModel` (or a sequence of them, one per stage of the
        forward; their estimates add up). Adapters declare their architecture here (width, heads,
        frames per second, a window); this default is a conservative guess from the points'
        largest width and count, so an adapter that declares nothing is still budgeted.
        """
        from actstore.ingest.memory import default_cost_model, element_bytes

        points = self.points(modality)
        return default_cost_model((self.width(p) for p in points), len(points), modality,
                                  element_bytes(self.dtype_name))

    def encode_pairs(self, speech: Sequence[Item], text: Sequence[Item],
                     points: Sequence[str]) -> dict[str, Pooled]:
        """For `paired` adapters: speech[i] and text[i] (same sentence id) in one forward.

        Returns pooled vectors for speech points (rows follow `speech`) and text points (rows
        follow `text`) together. Only called when `paired` is True.
        """
        raise TypeError(f"{type(self).__name__} is not a paired adapter; call encode().")

    def select_points(self, modality: str, *, layers: Sequence[int] | None = None,
                      names: Sequence[str] | None = None) -> list[str]:
        """Points of a modality chosen by layer index list and/or explicit names (None: all)."""
        from actstore.errors import ActstoreError

        available = self.points(modality)
        if layers is None and names is None:
            return available
        optional = self.optional_points(modality)
        chosen: list[str] = []
        if layers is not None:
            by_layer = {self.layer_of(p): p for p in available if self.layer_of(p) is not None}
            for i in layers:
                if i not in by_layer:
                    have = sorted(k for k in by_layer if k is not None)
                    raise ActstoreError(
                        f"Layer {i} does not exist for {modality}; this model has layers "
                        f"{have[0]}..{have[-1]}."
                    )
                chosen.append(by_layer[i])
        if names is not None:
            own = set(available) | set(optional)
            other = [n for n in names if n not in own and not n.startswith(modality + ".")]
            mine = [n for n in names if n in own or n.startswith(modality + ".")]
            all_points = {p for m in self.modalities for p in self.points(m) + self.optional_points(m)}
            bad = [n for n in other if n not in all_points]
            if bad:
                raise ActstoreError(
                    f"Unknown point(s) {bad}; this model has {', '.join(sorted(all_points))}."
                )
            for n in mine:
                if n not in own:
                    raise ActstoreError(f"Unknown point {n!r}; this model has {', '.join(available)}.")
                if n not in chosen:
                    chosen.append(n)
        order = {p: i for i, p in enumerate(available + optional)}
        return sorted(chosen, key=order.__getitem__)

    # --- Interventions (issue 16, item 4; `actstore.ingest.intervention_run` uses only these) ---
    # `items` carry their `target` (the sentence the decoder is scored on); `conditioning` says
    # which encoding of the item the decoder reads: "speech" (`item.audio`) or "text"
    # (`item.text`). `clamps` (`common/clamps.py`) hold units of named sites at values during the
    # whole forward. Each family's numbers must not depend on batch padding (1e-5), and clamping
    # units to their own current values must change nothing (bitwise).

    def intervention_sites(self) -> dict[str, "Site"]:
        """Every neuron site of the loaded model by name (`stack.L<i>.<kind>`), with the module
        a clamp hooks (loads whatever part holds them, e.g. a decoder)."""
        from actstore.errors import ActstoreError

        raise ActstoreError(f"The {self.adapter_label} family declares no intervention sites; use a "
                            "family that does (e.g. Whisper) or implement Adapter.intervention_sites.")

    def check_conditioning(self, conditioning: str) -> None:
        """Refuse, in one sentence, a conditioning this family's decoder cannot read."""
        from actstore.errors import ActstoreError

        have = type(self).conditionings
        if conditioning not in have:
            fix = f"use {' or '.join(have)}" if have else "use a family that decodes (e.g. Whisper)"
            raise ActstoreError(f"The {self.adapter_label} family cannot condition its decoder on "
                                f"{conditioning}; {fix}.")

    def target_loglik(self, items: Sequence[Item], clamps: Sequence["Clamp"] = (),
                      conditioning: str = "speech") -> tuple[np.ndarray, np.ndarray]:
        """Per item: the summed teacher-forced log-probability of its target tokens (float64)
        and how many tokens were scored (int64), with `clamps` applied."""
        self._refuse_decoding("Interventions score a teacher-forced target")

    def generate(self, items: Sequence[Item], clamps: Sequence["Clamp"] = (),
                 max_new_tokens: int = MAX_NEW_TOKENS, conditioning: str = "speech") -> list[str]:
        """Per item: the greedy decoding (at most `max_new_tokens` new tokens) with `clamps`
        applied, as plain text (special tokens dropped)."""
        self._refuse_decoding("--generate")

    def first_step_language_probs(self, items: Sequence[Item], clamps: Sequence["Clamp"] = ()
                                  ) -> np.ndarray | None:
        """Per item: the probability the decoder gives the item's language at its first step
        (language identification, e.g. Whisper's language token after <|startoftranscript|>),
        with `clamps` applied; None when the family has no such step."""
        return None

    def _refuse_decoding(self, what: str):
        from actstore.errors import ActstoreError

        if not type(self).decodes:
            raise ActstoreError(f"{what} needs a family that decodes; {self.adapter_label} is encoder-only.")
        raise ActstoreError(f"{what} is not implemented for the {self.adapter_label} family yet; "
                            "use Whisper, SeamlessM4T v2 or Qwen2-Audio.")
