"""Bounded ingest memory: estimate a forward's activation bytes BEFORE it runs, and batch under a budget.

Why: attention over audio frames is quadratic. SeamlessM4T v2's conformer even materialises a
relative-position tensor of T x T x head_size per layer, so a 120 s clip (T = 6000 frames) needs
~5.6 GB on the TINY model (measured 5.9 GB), whatever `--batch-size` says. A count of items does
not bound memory; an estimate of bytes does.

The estimate (`estimate_bytes`) for one forward over a batch of B items padded to T positions,
per stage the adapter declares (`CostModel`, from `Adapter.cost_model(modality)`):

    elements = T^2 * (pair_elements + B * (heads * score_copies + 1))     # scores, bias, softmax, mask
             + B * T * (width * (layers + 4) + 2 * ffn_width)              # kept hidden states, FFN
    bytes    = elements * bytes_per_element

`pair_elements` is what one (query, key) pair costs independently of the batch (relative-position
embeddings: the head size); `layers` counts every hidden state that may be alive at once (each
captured point is kept until pooling). Stages add up (a paired forward counts its speech and
its text stage; SALMONN its Whisper, BEATs and LLM stages); `BatchCost` adds a fixed
`FORWARD_OVERHEAD` and a 15% `SAFETY_MARGIN`. Calibration: on the tiny SeamlessM4T v2 (width 32,
one head of size 32, 6 points) formula + overhead give 0.93-1.10x the measured peak-RSS growth
(VmHWM reset before the forward) of one forward, for 1-8 items of 5-40 s; repeated runs vary by
about 5% (tests/test_memory_budget.py checks it; benchmarks/bench_ingest_memory.py measures ingests).
Eager attention is assumed: fused (sdpa/flash) kernels need less, so this over-estimates there.

Units: `Item.length` samples (16 kHz) for speech; text uses the UTF-8 byte count, an upper bound
on the tokens of any byte-level or character-level tokenizer (special tokens are `extra_positions`).

Limits (`MemoryLimits`, decided once per ingest, before any model runs):
- `max_seconds`: longest speech item accepted. Default: the model's window where it has one
  (Whisper, Qwen2-Audio, SALMONN: 30 s; longer audio would be silently truncated by the model),
  else `DEFAULT_MAX_SECONDS` (60 s). An item over it is refused with one sentence naming the item
  and the fix. Passing a `--max-seconds` above a model's window is the explicit opt-in to the
  model's truncation (the adapter warns); memory stays bounded because a window is a fixed cost.
- `budget`: the most activation bytes one forward may need. Default: `DEFAULT_BUDGET_FRACTION`
  of the memory available when the ingest starts (after the model is loaded): RAM (cgroup limit
  included) for cpu, free device memory for cuda. Batches are filled longest-first while their
  estimate stays under it (`--batch-size` stays an upper bound on items); a single item over it
  is refused before any model runs.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from actstore.errors import ActstoreError
from actstore.ingest.items import SAMPLE_RATE, Item

#: default --max-seconds for models without a window
DEFAULT_MAX_SECONDS = 60.0
#: default --memory-budget: this share of the memory available when the ingest starts
DEFAULT_BUDGET_FRACTION = 0.5
#: the budget used when available memory cannot be read
FALLBACK_BUDGET = 2 * 1024**3
#: score-sized (B x heads x T x T) tensors alive at once in eager attention: q.k scores, the
#: position bias and its scaled copy, the biased scores, softmax output, its dropout/cast copy
SCORE_COPIES = 6
#: bytes every forward needs besides its activations (allocator, kernels, feature extraction):
#: measured 10-15 MB on the tiny SeamlessM4T v2 at every length
FORWARD_OVERHEAD = 16 * 1024**2
#: the estimate is calibrated to the measured peak (0.93-1.10x on the tiny SeamlessM4T v2, with
#: run-to-run noise of about 5%); this margin keeps it on the safe side
SAFETY_MARGIN = 1.15


class MemoryLimitError(ActstoreError):
    """An item too long (--max-seconds) or too costly (--memory-budget) to encode; nothing ran."""


@dataclass(frozen=True)
class CostModel:
    """How one stage of a forward grows with its input; declared by an adapter per modality.

    positions_per_unit: encoder positions per length unit (speech: per sample, e.g. 50 frames a
      second = 50 / 16000; text: per UTF-8 byte).
    window_positions: every item is padded to this many positions (Whisper-style windows): the
      cost no longer depends on the length.
    max_positions: positions are capped here (the model truncates longer input).
    extra_positions: positions added to every item (special tokens, a prompt, audio tokens).
    """

    width: int
    layers: int
    heads: int = 1
    ffn_width: int = 0
    positions_per_unit: float = 1.0
    pair_elements: int = 0
    window_positions: int | None = None
    max_positions: int | None = None
    extra_positions: int = 0
    bytes_per_element: int = 4
    score_copies: int = SCORE_COPIES

    @classmethod
    def speech(cls, positions_per_second: float, **kw) -> "CostModel":
        """A speech stage: `positions_per_second` encoder positions per second of 16 kHz audio."""
        return cls(positions_per_unit=positions_per_second / SAMPLE_RATE, **kw)

    def positions(self, units: int) -> int:
        """Positions one item of `units` length units occupies in this stage."""
        if self.window_positions is not None:
            return self.window_positions + self.extra_positions
        n = math.ceil(units * self.positions_per_unit)
        if self.max_positions is not None:
            n = min(n, self.max_positions)
        return max(1, n + self.extra_positions)

    def batch_bytes(self, units: Sequence[int]) -> int:
        """Peak activation bytes of this stage for a batch padded to its longest item."""
        if not units:
            return 0
        b, t = len(units), self.positions(max(units))
        ffn = self.ffn_width or 4 * self.width
        pairs = t * t * (self.pair_elements + b * (self.heads * self.score_copies + 1))
        linear = b * t * (self.width * (self.layers + 4) + 2 * ffn)
        return int((pairs + linear) * self.bytes_per_element)


def as_stages(model: CostModel | Sequence[CostModel]) -> tuple[CostModel, ...]:
    return (model,) if isinstance(model, CostModel) else tuple(model)


def units(item: Item) -> int:
    """An item's length in cost units: samples for speech, UTF-8 bytes for text."""
    if item.modality == "speech":
        return item.length
    return len((item.text or "").encode("utf-8"))


def estimate_bytes(stages: CostModel | Sequence[CostModel], items: Sequence[Item]) -> int:
    """Estimated peak activation bytes of one forward over `items` (one modality), all stages."""
    lengths = [units(it) for it in items]
    return sum(stage.batch_bytes(lengths) for stage in as_stages(stages))


def element_bytes(dtype: str) -> int:
    """Bytes per activation element for a `--dtype` name."""
    return 2 if dtype in ("float16", "bfloat16") else 4


def default_cost_model(widths: Iterable[int], n_points: int, modality: str,
                       bytes_per_element: int = 4) -> CostModel:
    """Conservative guess for an adapter that declares nothing: the largest width at every one of
    its points, a head per 64 channels, a 4x FFN, 50 positions a second (20 ms frames, the
    common speech-encoder rate) and a token per text byte."""
    width = max(widths, default=1024)
    kw = dict(width=width, layers=max(n_points, 1), heads=max(1, width // 64),
              ffn_width=4 * width, bytes_per_element=bytes_per_element)
    if modality == "speech":
        return CostModel.speech(50, **kw)
    return CostModel(extra_positions=8, **kw)


class BatchCost:
    """Estimated bytes of a batch (one modality, or a paired speech+text batch) for one adapter."""

    def __init__(self, adapter) -> None:
        self.adapter = adapter
        self._stages: dict[str, tuple[CostModel, ...]] = {}

    def stages(self, modality: str) -> tuple[CostModel, ...]:
        if modality not in self._stages:
            self._stages[modality] = as_stages(self.adapter.cost_model(modality))
        return self._stages[modality]

    def __call__(self, groups: dict[str, Sequence[Item]]) -> int:
        need = sum(estimate_bytes(self.stages(m), items) for m, items in groups.items() if items)
        return int(need * SAFETY_MARGIN) + FORWARD_OVERHEAD if need else 0


@dataclass(frozen=True)
class MemoryLimits:
    """What one ingest accepts: the longest speech item and the bytes one forward may use."""

    max_seconds: float
    budget: int
    window_seconds: float | None = None  # the model's window, if it has one (for messages)
    budget_source: str = "--memory-budget"  # how the budget was chosen (for messages)


def resolve_limits(adapter, *, max_seconds: float | None, memory_budget: int | None,
                   device: str = "cpu") -> MemoryLimits:
    """The limits of an ingest: explicit values, else the adapter's window / available memory."""
    window = adapter.speech_window() if "speech" in adapter.modalities else None
    seconds = max_seconds if max_seconds is not None else (window or DEFAULT_MAX_SECONDS)
    if memory_budget is not None:
        return MemoryLimits(seconds, int(memory_budget), window)
    avail = available_memory(device)
    if avail is None:
        return MemoryLimits(seconds, FALLBACK_BUDGET, window, "the default --memory-budget")
    budget = int(avail * DEFAULT_BUDGET_FRACTION)
    return MemoryLimits(seconds, budget, window,
                        f"the default --memory-budget ({DEFAULT_BUDGET_FRACTION:.0%} of available memory)")


def check_items(items: Sequence[Item], limits: MemoryLimits, cost: BatchCost,
                pairs: dict[int, Item] | None = None) -> None:
    """Refuse, in one sentence, the first item over `max_seconds` or whose forward alone exceeds the budget.

    `pairs` maps a speech item's sentence id to its text item (paired adapters: they meet in
    one forward, so their cost is counted together).
    """
    long = [it for it in items if it.modality == "speech" and it.length > limits.max_seconds * SAMPLE_RATE]
    if long:
        worst = max(long, key=lambda it: it.length)
        more = f" (and {len(long) - 1} more)" if len(long) > 1 else ""
        why = (f"the model reads only {limits.window_seconds:g} s and would truncate it"
               if limits.window_seconds and limits.max_seconds <= limits.window_seconds
               else "attention memory grows with the square of the length")
        raise MemoryLimitError(
            f"Speech item {worst.lang}/{worst.sample_id}{more} is {worst.length / SAMPLE_RATE:.1f} s long, "
            f"over --max-seconds {limits.max_seconds:g} ({why}); split long recordings into shorter "
            f"clips, or raise --max-seconds if the memory allows.")
    for it in items:
        group = {it.modality: [it]}
        if pairs is not None and it.sentence_id in pairs:
            group["text"] = [pairs[it.sentence_id]]
        need = cost(group)
        if need > limits.budget:
            secs = f"{it.length / SAMPLE_RATE:.1f} s of speech" if it.modality == "speech" else f"{units(it)} bytes of text"
            raise MemoryLimitError(
                f"Item {it.lang}/{it.sample_id} ({secs}) needs about {format_bytes(need)} of activation "
                f"memory in one forward, over {limits.budget_source} of {format_bytes(limits.budget)}; "
                "raise --memory-budget, or refuse such items with a lower --max-seconds.")


def budgeted_batches(items: list[Item], batch_size: int, cost: Callable[[list[Item]], int] | None = None,
                     budget: int | None = None) -> list[list[Item]]:
    """Length-bucketed batches, longest first, of at most `batch_size` items whose `cost` stays
    under `budget` (a lone item over the budget still forms its own batch: `check_items` refuses
    those before any model runs)."""
    ordered = sorted(items, key=lambda it: it.length, reverse=True)
    if cost is None or budget is None:
        return [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
    out: list[list[Item]] = []
    batch: list[Item] = []
    for it in ordered:
        # longest first: the batch's padded length is its first item's, so cost grows with size only
        if batch and (len(batch) >= batch_size or cost(batch + [it]) > budget):
            out.append(batch)
            batch = []
        batch.append(it)
    if batch:
        out.append(batch)
    return out


# -- sizes and available memory ---------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_size(text: str | int | None, option: str = "--memory-budget") -> int | None:
    """'2GiB', '512MB', '1.5g', '1073741824' -> bytes (None stays None)."""
    if text is None:
        return None
    if isinstance(text, int):
        if text <= 0:
            raise ActstoreError(f"{option} {text} must be more than zero bytes; write e.g. 2GiB.")
        return text
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise ActstoreError(f"{option} {text!r} is not a size; write e.g. 2GiB, 512MB or a byte count.")
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ActstoreError(f"{option} {text!r} must be more than zero bytes; write e.g. 2GiB.")
    return value


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def available_memory(device: str = "cpu") -> int | None:
    """Bytes a forward may still use: free device memory for cuda, else available RAM, capped by
    the cgroup (container) limit; None when it cannot be read."""
    if str(device).startswith("cuda"):
        try:
            import torch

            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except Exception:  # noqa: BLE001 - no CUDA runtime: fall back to RAM
            pass
    avail = _meminfo_available()
    cgroup = _cgroup_headroom()
    values = [v for v in (avail, cgroup) if v is not None]
    return min(values) if values else None


def _meminfo_available() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_headroom() -> int | None:
    """cgroup v2 memory.max - memory.current, when a limit is set."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            current = int(fh.read().strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None
