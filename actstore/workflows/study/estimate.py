"""The cost of a study before it runs: items, forwards, peak activation memory, disk for vectors.

Why per system: the systems differ by orders of magnitude (a tiny random-init model against
SALMONN 7B). Where a system's weights are here its adapter is loaded on the CPU to read its points,
widths and cost model (`Adapter.cost_model`, the estimate `--memory-budget` batches by); where they
are missing, the estimate falls back to `default_cost_model` at the `width` the study declares for
it (default 1024) and says so, and the weights are named with how to get them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actstore.workflows.study.plan import Plan, Step, nominal_sentences

#: the lengths a forward is estimated at: a long FLEURS clip and a long FLORES sentence
SPEECH_SECONDS = 20.0
TEXT_BYTES = 300
#: bytes a stored row costs besides its vector (keys, ids, language columns), roughly
ROW_OVERHEAD = 120


@dataclass
class SystemCost:
    system: str
    items: int
    forwards: int
    points: int
    peak_bytes: int
    disk_bytes: int
    exact: bool  # False: weights missing, the default cost model at the declared width
    note: str = ""


def _units(modality: str) -> int:
    return int(SPEECH_SECONDS * 16000) if modality == "speech" else TEXT_BYTES


def estimate_system(plan: Plan, step: Step) -> SystemCost:
    """The cost of one system's ingest step."""
    from actstore.ingest.items import Item
    from actstore.ingest.memory import FORWARD_OVERHEAD, SAFETY_MARGIN, default_cost_model, estimate_bytes

    sp, a = plan.systems[step.system], step.args
    per_lang = sp.limit or nominal_sentences(a["source"], a["split"])
    batch = a["batch_size"]
    items = len(sp.langs) * per_lang * len(sp.modalities)
    forwards = len(sp.langs) * len(sp.modalities) * math.ceil(per_lang / batch)
    vec_bytes = 2 if a["vector_dtype"] == "float16" else 4
    points, widths, stages, note = _shape(sp, a)
    # the default cost model sizes a forward by the hidden states, not by the sites read from it
    hidden = {m: [w for w in widths[m][:_hidden_count(a)]] for m in sp.modalities}
    peak = 0
    for modality in sp.modalities:
        batch_items = [Item(sentence_id=i, lang="eng", modality=modality, sample_id=str(i), split=a["split"],
                            text="x" * TEXT_BYTES if modality == "text" else None,
                            audio=np.broadcast_to(np.float32(0), (_units(modality),)) if modality == "speech"
                            else None) for i in range(batch)]
        model = stages(modality) if stages else default_cost_model(hidden[modality] or [1024],
                                                                    len(hidden[modality]) or 16, modality)
        peak = max(peak, int(estimate_bytes(model, batch_items) * SAFETY_MARGIN) + FORWARD_OVERHEAD)
    disk = sum(len(sp.langs) * per_lang * (sum(widths[m]) * vec_bytes + ROW_OVERHEAD * len(widths[m]))
               for m in sp.modalities)
    return SystemCost(step.system, items, forwards, sum(len(widths[m]) for m in sp.modalities), peak, disk,
                      stages is not None, note)


def _shape(sp, a):
    """(points, widths by modality, cost-model function or None, note): from the loaded adapter
    when the weights are here, else from the study's declared width and layer count."""
    model = a["weights"]
    here = model is not None and ("build" not in sp.spec or Path(model).is_dir())
    if sp.missing is None and here:
        from actstore.ingest.adapters import load_adapter
        from actstore.ingest.pipeline import IngestRequest
        from actstore.ingest.steps.planning import choose_points

        adapter = load_adapter(model, adapter=a["adapter"], options=a["adapter_options"], name=sp.name,
                               dtype=a["dtype"])
        request = IngestRequest(model=model, **{k: v for k, v in a.items() if k != "weights"})
        chosen = choose_points(adapter, request)[0]
        widths = {m: [adapter.width(p) for p in chosen.get(m, [])] for m in sp.modalities}
        return sum(map(len, widths.values())), widths, adapter.cost_model, ""
    width = int(sp.spec.get("width", 1024))
    n = _hidden_count(a)
    sites = _rough_site_widths(list(a.get("sites") or []), width, decoder=bool(a.get("target_lang"))) * n
    widths = {m: [width] * n + sites for m in sp.modalities}
    why = ("weights missing" if sp.missing else "not built yet" if "build" in sp.spec
           else "weights not converted yet")
    counted = f", {len(sites)} sites per modality (FFN at 4x the width)" if sites else ""
    return (sum(map(len, widths.values())), widths, None,
            f"rough ({why}): default cost model, width {width}, {n} points{counted}")


def _hidden_count(a: dict) -> int:
    """How many hidden-state points a study's layers ask for, when the model is not here to say."""
    layers = a["layers"]
    return len(layers) if isinstance(layers, list) else 16 if layers == "study" else 25


def _rough_site_widths(kinds: list[str], width: int, *, decoder: bool) -> list[int]:
    """Per layer, the widths of the sites a study asks for when the model's config is not here:
    an FFN site at 4x the hidden width (the usual ratio), a projection at the width; the encoder
    stack of each modality has every kind but cross-attention, and a decoding run (target_lang)
    adds the decoder's sites for each conditioning. Sites dominate a neuron study's disk (a full
    SeamlessM4T v2 holds 1.23 GB per 1,000 items in float16), so leaving them out misled."""
    def one(kind: str) -> int:
        return 4 * width if kind.startswith("ffn") else width

    encoder = [one(k) for k in kinds if not k.startswith("cross_attn")]
    return encoder + ([one(k) for k in kinds] if decoder else [])


def estimate(plan: Plan) -> list[SystemCost]:
    """Per system, the cost of its ingest."""
    return [estimate_system(plan, step) for step in plan.steps if step.kind == "ingest"]


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
