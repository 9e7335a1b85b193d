"""The adapter contract is complete: what the pipeline reads is declared on `Adapter`, and
composites forward every per-modality hook of it.

The pipeline and engines are scanned (AST) for every attribute they read from an adapter, so a
new hook read with `getattr(adapter, ...)` but not declared on the base class fails here.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from actstore.errors import ActstoreError
from actstore.ingest.adapters.base import Adapter, ModelInfo, Pooled
from actstore.ingest.adapters.composite import ModalityComposite
from actstore.ingest.adapters.registry import registered_adapters
from actstore.ingest.model_paths import ModelSource

REPO = Path(__file__).resolve().parents[1]
#: hooks that do not depend on a modality: a composite inherits or defines them itself
MODALITY_INDEPENDENT = {"recognises", "locate", "known_models", "info", "adapter_label", "select_points", "encode_pairs",
                        # the intervention protocol is model-wide (a decoder and its conditioning)
                        "intervention_sites", "check_conditioning", "target_loglik", "generate",
                        "first_step_language_probs"}
#: what `Adapter.__init__` sets on every instance
INSTANCE_ATTRIBUTES = {"source", "model_name", "dtype_name", "options"}


def _adapter_reads(path: Path) -> set[str]:
    """Attribute names read from a variable or attribute called `adapter` in one module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (isinstance(base, ast.Name) and base.id == "adapter") or \
                    (isinstance(base, ast.Attribute) and base.attr == "adapter"):
                names.add(node.attr)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"getattr", "hasattr"}:
            target = node.args[0] if node.args else None
            if isinstance(target, ast.Name) and target.id == "adapter" and isinstance(node.args[1], ast.Constant):
                names.add(node.args[1].value)
    return names


def test_every_hook_the_pipeline_reads_is_declared_on_the_base_class():
    modules = [*sorted((REPO / "ingest").glob("*.py"))] + [p for sub in ("engines", "steps")
                                                           for p in sorted((REPO / "ingest" / sub).glob("*.py"))]
    read = set().union(*(_adapter_reads(p) for p in modules))
    assert {"encode", "supports_language"} <= read  # the scan sees what it must
    undeclared = sorted(n for n in read if not hasattr(Adapter, n) and n not in INSTANCE_ATTRIBUTES)
    assert not undeclared, f"the pipeline reads {undeclared} from adapters; declare them on Adapter"


def test_composites_forward_every_per_modality_hook():
    hooks = {n for n, v in inspect.getmembers(Adapter) if not n.startswith("_")
             and (callable(v) or isinstance(v, property))}
    per_modality = hooks - MODALITY_INDEPENDENT
    missing = sorted(h for h in per_modality if h not in ModalityComposite.__dict__)
    assert not missing, f"ModalityComposite does not forward {missing}"


def test_family_is_the_registry_name_and_model_name_the_stored_name():
    assert not hasattr(Adapter, "name")  # one meaning per name: no ambiguous `name`
    for family, cls in registered_adapters().items():
        assert cls.family == family


class _Part(Adapter):
    modalities = ("speech",)

    def __init__(self, source, *, modality: str, langs: tuple[str, ...], window=None, **kw):
        super().__init__(source, **kw)
        self.modality, self.langs, self.window = modality, langs, window

    def load(self) -> None:
        self.loaded = True

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(model_id="x", name=self.model_name, adapter=self.adapter_label)

    def points(self, modality: str) -> list[str]:
        return [f"{self.modality}.embed", f"{self.modality}.L1"]

    def layer_of(self, point: str) -> int | None:
        return 0 if point.endswith("embed") else 1

    def width(self, point: str) -> int:
        return 3 if self.modality == "speech" else 5

    def supports_language(self, lang: str, modality: str) -> bool:
        return lang in self.langs

    def speech_window(self) -> float | None:
        return self.window

    def encode(self, items: Sequence, points: Sequence[str]) -> dict[str, Pooled]:
        w = self.width(points[0])
        return {p: Pooled(np.full((len(items), w), float(w), np.float32), np.ones(len(items), int))
                for p in points}


class _Both(ModalityComposite):
    modalities = ("speech", "text")

    def __init__(self, source, **kw):
        super().__init__(source, **kw)
        self.parts = {"speech": _Part(source, modality="speech", langs=("eng",), window=7.5),
                      "text": _Part(source, modality="text", langs=("eng", "fra"))}

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(model_id="x", name=self.model_name, adapter=self.adapter_label)


def test_a_composite_routes_each_hook_to_its_modality(tmp_path):
    from actstore.ingest.items import Item

    both = _Both(ModelSource(model_id="x", path=tmp_path, name="both", source="test"), name="mine")
    both.load()
    assert both.model_name == "mine" and all(p.loaded for p in both.parts.values())
    assert both.points("text") == ["text.embed", "text.L1"] and both.width("speech.L1") == 3
    assert both.width("text.L1") == 5 and both.speech_window() == 7.5
    assert both.supports_language("fra", "text") and not both.supports_language("fra", "speech")
    assert both.select_points("text", layers=[1]) == ["text.L1"]
    items = [Item(sentence_id=0, lang="eng", modality="text", sample_id="0", split="x", text="a")]
    assert both.encode(items, ["text.L1"])["text.L1"].vectors.shape == (1, 5)
    with pytest.raises(ActstoreError, match="Unknown modality"):
        both.width("image.L1")


def test_an_option_the_family_does_not_read_is_refused(tmp_path):
    source = ModelSource(model_id="x", path=tmp_path, name="both", source="test")
    with pytest.raises(ActstoreError, match=r"Unknown _Both option\(s\) \['text_pool'\]; it takes none"):
        _Both(source, options={"text_pool": "sentence"})
