"""The types every ingest step and both engines share: what was asked, what was planned, what a
job still has to do, what was done; and the phase hook that names where an ingest is.

They live apart from the steps that fill them so that the local engine, the Ray engine and the
pipeline import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np

from actstore.ingest.faults import FAULT_PHASES
from actstore.ingest.items import MODALITIES, Item

if TYPE_CHECKING:
    from actstore.catalogue import Catalogue
    from actstore.ingest.adapters.base import ModelInfo
    from actstore.ingest.sources.base import Entry

#: named phases reported to `on_phase` (fault injection, progress, tracing), in order; see
#: `actstore.ingest.faults` for what each one means
PHASES = FAULT_PHASES  # the Ray engine also reports "startup" (cluster join, actors, model load)
PhaseHook = Callable[[str, "Job | None"], object]

#: modality -> (items in encoded order, point -> (vectors (n, d) float32, n_frames (n,)))
Encoded = dict[str, tuple[list[Item], dict[str, tuple[np.ndarray, np.ndarray]]]]


def phase(hook: PhaseHook | None, name: str, job: Job | None) -> None:
    """Report phase `name` (of `job`, or of the whole ingest) to the hook, if there is one."""
    if hook is not None:
        hook(name, job)


@dataclass
class IngestRequest:
    """Everything `actstore ingest` needs; defaults are the offline demo's."""

    model: str
    adapter: str | None = None
    adapter_options: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    source: str = "flores"
    #: declare the source's sentence ids part of this corpus (e.g. a manifest of FLORES recordings
    #: keyed by FLORES ids: "flores200:devtest"); default: the source's own corpus
    corpus: str | None = None
    data_dir: str | None = None
    split: str = "devtest"
    langs: Sequence[str] | str | None = None
    modalities: Sequence[str] = MODALITIES
    layers: Sequence[int] | Literal["study"] | None = None
    points: Sequence[str] | None = None
    #: neuron-site kinds (`--sites ffn,cross_attn.k`), at `--layers`, in every stack of a modality
    sites: Sequence[str] | None = None
    #: decoder target: None = the sentence itself (transcription), else a language whose parallel
    #: sentence (same corpus and sentence id) the decoder reads (translation)
    target_lang: str | None = None
    limit: int | None = None
    batch_size: int = 16
    device: str = "cpu"
    dtype: str = "float32"
    vector_dtype: str = "float32"
    overwrite: bool = False
    languages_csv: str | None = None
    cache_dir: str | None = None
    max_seconds: float | None = None  # longest speech item (None: the model's window, else 60 s)
    memory_budget: int | str | None = None  # bytes one forward may use, e.g. "2GiB" (None: from free memory)
    #: who runs the model: "local" (this process) or "ray" (Ray Data actors, `actstore[ray]`)
    engine: str = "local"
    #: Ray cluster address (default: RAY_ADDRESS, else a local cluster is started)
    ray_address: str | None = None
    #: model actors (default: one per GPU with --device cuda, else 1)
    ray_actors: int | None = None


@dataclass
class IngestSummary:
    run_id: str
    model: str
    random_init: bool
    jobs: int = 0
    items: int = 0
    rows: int = 0
    skipped_items: int = 0
    skipped_langs: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """One unit of work: a language and its modalities (one, or speech+text when paired)."""

    lang: str
    modalities: tuple[str, ...]
    ids: list[int]  # sentence ids to cover (after --limit)
    points: dict[str, list[str]]  # modality -> points to extract
    #: decoder targets by sentence id (set when decoder points are requested) and their language
    targets: dict[int, str] | None = None
    target_lang: str | None = None

    @property
    def label(self) -> str:
        return f"{self.lang}/{'+'.join(self.modalities)}"

    @property
    def all_points(self) -> list[str]:
        return [p for m in self.modalities for p in self.points[m]]


@dataclass
class JobKeys:
    """What one job still has to do, from the store and the source's index only (no payload
    read): the source entries (keys) to encode. Read once per job, before the run starts."""

    job: Job
    entries: dict[str, list[Entry]]  # modality -> entries to encode, in the source's order
    complete: dict[str, set[str]]  # modality -> sample ids stored at every point (skipped)
    replace: bool  # write with a key-guarded merge (some keys may exist) instead of an append

    @property
    def n_items(self) -> int:
        return sum(len(v) for v in self.entries.values())

    @property
    def n_skipped(self) -> int:
        return sum(len(v) for v in self.complete.values())


@dataclass
class JobWork:
    """A job's pending keys with their payloads loaded (audio decoded, texts read): what it encodes."""

    job: Job
    items: dict[str, list[Item]]  # modality -> items to encode
    complete: dict[str, set[str]]  # modality -> sample ids stored at every point
    replace: bool  # write with a key-guarded merge (some keys may exist) instead of an append

    @property
    def n_items(self) -> int:
        return sum(len(v) for v in self.items.values())

    @property
    def n_skipped(self) -> int:
        return sum(len(v) for v in self.complete.values())


@dataclass
class IngestPlan:
    """Everything decided before encoding: the model, its points, the jobs, provenance."""

    model: str
    info: ModelInfo
    source: object
    catalogue: Catalogue
    langs: list[str]
    points_by_mod: dict[str, list[str]]
    point_rows: list[dict]
    jobs: list[Job]
    skipped: dict[str, str]  # "lang/modality" -> why it is not ingested
