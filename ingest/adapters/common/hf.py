"""Shared plumbing for adapters over transformers models: dtype/device, checks, pooling.

A subclass implements `matches(config)` (recognition by the transformers config), `load` (which must set `self._points` {modality: [names]} and
`self._widths` {name: d}) and `_forward(modality, items, points)` returning
{point: (hidden [B, T, d], mask [B, T])}. Everything a user can get wrong (dtype, device, a
batch mixing modalities, an unknown point, empty text or audio) is checked here once, with an
`ActstoreError` naming the fix.
"""

from __future__ import annotations

from abc import abstractmethod

import contextlib
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from actstore.errors import ActstoreError, DataSourceError, UnknownModelError
from actstore.ingest.adapters.base import Adapter, ModelInfo, Pooled
from actstore.ingest.items import Item
from actstore.ingest.model_paths import ModelSource
from actstore.ingest.pooling import masked_mean

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_LAYER = re.compile(r"^(speech|text|decoder)\.L(\d+)(\..+)?$")


def parse_dtype(dtype: str) -> torch.dtype:
    """Map the `--dtype` string to a torch dtype (the model's; pooling is always float32)."""
    if dtype not in DTYPES:
        raise ActstoreError(f"Unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    return DTYPES[dtype]


def parse_device(device: str) -> torch.device:
    """Map `--device` to a torch device, refusing one this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ActstoreError(f"Unknown device {device!r}; use cpu, cuda, cuda:N or mps.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ActstoreError(f"Device {device!r} is not available here (no CUDA); pass --device cpu.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ActstoreError(f"Device {device!r} is not available here (no MPS); pass --device cpu.")
    return dev


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load reports and progress bars (expected unexpected keys)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_submodule(cls, path, key_mapping: dict[str, str], dtype, device, what: str):
    """One part of a full checkpoint (e.g. its text decoder) as `cls`, keys renamed by `key_mapping`;
    refused in one sentence when the checkpoint lacks that part's weights."""
    with quiet_transformers():
        part, info = cls.from_pretrained(path, key_mapping=key_mapping, dtype=dtype, local_files_only=True,
                                         output_loading_info=True)
    if info["missing_keys"]:
        raise UnknownModelError(f"Checkpoint {path} lacks {what} weights (e.g. {sorted(info['missing_keys'])[:3]}); "
                                f"decoder points need the full model.")
    return part.to(device).eval()


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B] lengths -> [B, max_len] bool mask, true on the first `lengths[b]` positions."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class HFAdapter(Adapter):
    """Common state and checks; subclasses add loading, point wiring and the forward pass."""

    def __init__(self, source: ModelSource, *, name: str | None = None, device: str = "cpu",
                 dtype: str = "float32", options: dict | None = None):
        super().__init__(source, name=name, device=device, dtype=dtype, options=options)
        self.path = str(source.path)
        self.revision = source.revision
        self.model_id = source.model_id
        self.torch_dtype = parse_dtype(dtype)
        self.device = parse_device(device)
        self.config = None
        self._points: dict[str, list[str]] = {}
        self._optional: dict[str, list[str]] = {}  # sites and decoder states, on request only
        self._widths: dict[str, int] = {}

    @classmethod
    def matches(cls, config) -> bool:
        """True if this adapter handles a transformers config (usually by `config.model_type`)."""
        return False

    @classmethod
    def recognises(cls, source: ModelSource) -> bool:
        config = source.hf_config()
        return config is not None and cls.matches(config)

    # -- provenance -------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        if self.config is None:
            from transformers import AutoConfig

            self.config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        extra = {"model_type": self.config.model_type, "dtype": self.dtype_name,
                 "device": str(self.device), "pooling": "masked mean, float32"}
        extra["source"] = self.source.source
        record = Path(str(self.path)) / "actstore-provenance.json"  # a converted real model's packages, sha256
        if record.is_file():
            extra["weights_provenance"] = json.loads(record.read_text())
        return ModelInfo(model_id=self.model_id, name=self.model_name, adapter=self.adapter_label,
                         revision=self.revision,
                         random_init=bool(getattr(self.config, "actstore_random_init", False)),
                         extra=extra)

    # -- points -----------------------------------------------------------------------------
    def _require_loaded(self) -> None:
        if not self._points:
            raise ActstoreError(f"Adapter for {self.model_name} is not loaded; call load() first "
                                "(or use actstore.ingest.adapters.load_adapter).")

    def points(self, modality: str) -> list[str]:
        self._require_loaded()
        if modality not in self.modalities:
            raise ActstoreError(f"Model {self.model_name} does not encode {modality}; it encodes "
                                f"{', '.join(self.modalities)}.")
        return list(self._points[modality])

    def optional_points(self, modality: str) -> list[str]:
        self.points(modality)  # the same checks
        return list(self._optional.get(modality, []))

    def layer_of(self, point: str) -> int | None:
        if point.endswith(".embed"):
            return 0
        m = _LAYER.match(point)
        return int(m.group(2)) if m else None

    def width(self, point: str) -> int:
        self._require_loaded()
        if point not in self._widths:
            raise ActstoreError(f"Unknown point {point!r}; this model has "
                                f"{', '.join(p for m in self.modalities for p in self._points[m])}.")
        return self._widths[point]

    # -- encoding ---------------------------------------------------------------------------
    def _check_batch(self, items: Sequence[Item], points: Sequence[str]) -> str:
        """Validate a batch and its requested points; return the batch's modality."""
        self._require_loaded()
        modalities = {it.modality for it in items}
        if len(modalities) != 1:
            raise ActstoreError(f"A batch must hold one modality, got {sorted(modalities)}; "
                                "group items by modality before encode().")
        modality = modalities.pop()
        available = self.points(modality) + self.optional_points(modality)
        bad = [p for p in points if p not in available]
        if bad:
            raise ActstoreError(f"Unknown {modality} point(s) {bad}; this model has "
                                f"{', '.join(available)}.")
        for it in items:
            if modality == "text" and (it.text is None or not it.text.strip()):
                raise DataSourceError(f"Text item {it.lang}/{it.sample_id} is empty; drop it "
                                      "or fix the source text.")
            if modality == "speech":
                a = it.audio
                if a is None or np.ndim(a) != 1 or len(a) == 0:
                    raise DataSourceError(f"Speech item {it.lang}/{it.sample_id} has no mono "
                                          "audio (need a 1-D float32 array at 16 kHz); fix or "
                                          "drop it.")
                if not np.isfinite(a).all():
                    raise DataSourceError(f"Speech item {it.lang}/{it.sample_id} has NaN or inf "
                                          "samples; fix the audio file or drop it.")
        return modality

    @abstractmethod
    def _forward(self, modality: str, items: Sequence[Item], points: Sequence[str]
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Preprocess and run one batch; {point: (hidden [B, T, d], mask [B, T])} per point."""

    def encode(self, items: Sequence[Item], points: Sequence[str]) -> dict[str, Pooled]:
        if len(items) == 0:
            return {p: Pooled(np.zeros((0, self.width(p)), np.float32), np.zeros(0, np.int64))
                    for p in points}
        modality = self._check_batch(items, points)
        with torch.inference_mode():
            captured = self._forward(modality, items, list(points))
            out: dict[str, Pooled] = {}
            for p in points:
                hidden, mask = captured[p]
                try:
                    pooled, n = masked_mean(hidden, mask)
                except DataSourceError:
                    empty = [f"{items[b].lang}/{items[b].sample_id}"
                             for b in (mask.sum(1) == 0).nonzero().flatten().tolist()]
                    raise DataSourceError(f"Item(s) {empty} have no valid position at {p} "
                                          "(too short for this model); drop them.") from None
                out[p] = Pooled(pooled.cpu().numpy(), n.cpu().numpy())
        return out
