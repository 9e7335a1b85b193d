"""What each kind of study step does (one library call, as the matching CLI command makes it)
and how the store tells that it is already done.

Why together: a step's "done" test must look at exactly what its action writes (the similarity
rows of that kind and measure, the retrieval table of that model, ...), so both live side by side.
Every action is idempotent on its own (ingest resumes and key-guards, results are keyed upserts),
so a step killed half-way simply runs again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from actstore.store import Store
from actstore.workflows.study.plan import Step

Say = Callable[[str], None]


class Context:
    """What the steps share while a study runs: the store (opened once, lazily) and model paths."""

    def __init__(self, db: str, storage_options: dict | None, *, models: dict[str, str],
                 on_items: Callable[[int], None] | None = None, say: Say | None = None):
        self.db, self.storage_options, self.models = db, storage_options, models
        self.on_items = on_items or (lambda n: None)
        self.say = say or (lambda text: None)
        self._store: Store | None = None

    def store(self, *, create: bool = False) -> Store | None:
        if self._store is None:
            if not create and "://" not in self.db and not Path(self.db).exists():
                return None
            self._store = Store.open(self.db, create=create, storage_options=self.storage_options)
        return self._store


# ---------------------------------------------------------------------------------- actions
def run_build(ctx: Context, step: Step) -> str:
    from actstore.ingest.tiny_builders import build_tiny

    out = Path(step.args["out"])
    ctx.models[step.system] = str(out)
    if _built(out):
        return f"{out} already built"
    return f"built {build_tiny(step.args['kind'], out)}"


def _built(out: Path) -> bool:
    return out.is_dir() and any(out.iterdir())


def run_convert(ctx: Context, step: Step) -> str:
    from actstore.ingest.convert.auto import convert_model

    path = convert_model(None, None, real=step.args["real"])
    ctx.models[step.system] = str(path)
    return f"weights in {path}"


def run_ingest(ctx: Context, step: Step) -> str:
    from actstore.disk_faults import require_writable
    from actstore.ingest.pipeline import IngestRequest, ingest

    args = dict(step.args)
    weights = args.pop("weights")
    request = IngestRequest(model=ctx.models.get(step.system) or weights, **args)

    def open_store():
        store = ctx.store(create=True)
        require_writable(store, "the study ingests activations there")
        return store

    def on_phase(name: str, job) -> None:
        if name == "job" and job is not None:
            ctx.on_items(len(job.ids) * len(job.modalities))

    summary = ingest(open_store, request, progress=False, on_phase=on_phase)
    skipped = "".join(f"; skipped {k}: {why}" for k, why in summary.skipped_langs.items())
    return (f"{summary.items} items in {summary.jobs} jobs, {summary.rows} rows written, "
            f"{summary.skipped_items} already stored{skipped}")


def run_similarity(ctx: Context, step: Step) -> str:
    from actstore.analyses.grids import GridOptions
    from actstore.analyses.tasks import run_similarity as similarity

    a = step.args
    options = GridOptions(measure=a["measure"], n=a.get("n"), seed=a["seed"], bootstrap=a["bootstrap"])
    kinds = None if a["kind"] in ("cross-modal", "cross-lingual", "all") else [a["kind"]]
    kind = a["kind"] if kinds is None else "cross-lingual"
    result = similarity(ctx.store(), a["model"], kind, kinds=kinds, options=options)
    return f"{result.summary.height} depth means ({a['measure']} {a['kind']})"


def run_retrieval(ctx: Context, step: Step) -> str:
    from actstore.analyses.tasks import run_retrieval as retrieval

    a = step.args
    result = retrieval(ctx.store(), a["model"], kinds=a.get("kinds"), depths=a.get("points"), n=a.get("n"),
                       seed=a["seed"])
    return f"{result.summary.height} retrieval rows"


def run_tsne(ctx: Context, step: Step) -> str:
    from actstore.analyses.tasks import run_tsne as tsne

    a = step.args
    result = tsne(ctx.store(), a["model"], depths=a.get("points"), per_language=a.get("per_language", 100),
                  perplexity=a.get("perplexity", 30.0), max_iter=a.get("max_iter", 1000), seed=a["seed"])
    return f"{result.summary.height} t-SNE maps"


def run_neurons(ctx: Context, step: Step) -> str:
    from actstore.analyses.tasks import run_neurons as neurons

    a = step.args
    result = neurons(ctx.store(), a["model"], depths=a.get("points"), sites=a.get("sites"), k=a.get("k", 20),
                     global_k=a.get("global_k", 1000), n_boot=a.get("boot", 200), seed=a["seed"], strict_k=True)
    return f"{len(result.frames)} neuron tables"


def run_probe(ctx: Context, step: Step) -> str:
    from actstore.analyses.tasks import run_probe as probe

    a = step.args
    result = probe(ctx.store(), a["model"], points=a.get("points"), folds=a.get("folds", 5), seed=a["seed"])
    return f"{result.summary.height} probes"


def run_cross_model(ctx: Context, step: Step) -> str:
    from actstore.analyses.grids import GridOptions
    from actstore.analyses.tasks import run_cross_model as cross_model

    a = step.args
    result = cross_model(ctx.store(), a["a"], a["b"], modality_a=a.get("modality_a", "speech"),
                         modality_b=a.get("modality_b", "text"), depths_a=a.get("points_a"),
                         depths_b=a.get("points_b"), langs=a.get("languages"),
                         options=GridOptions(measure=a.get("measure", "svcca"), n=a.get("n")))
    return f"{result.summary.height} depth pairs"


def run_intervention(ctx: Context, step: Step) -> str:
    from actstore.ingest.adapters import load_adapter
    from actstore.ingest.intervention_request import InterventionRequest, intervene

    a = dict(step.args)
    adapter = load_adapter(ctx.models.get(step.system) or a["weights"], name=a["model"],
                           device=a.get("device", "cpu"), dtype=a.get("dtype", "float32"))
    frame = intervene(ctx.store(), adapter, InterventionRequest(
        site=a["site"], langs=list(a["languages"]),
        units=",".join(map(str, a["units"])) if "units" in a else None, top=a.get("top"),
        target=a.get("target"), value=a.get("value", "median"), seeds=list(a.get("seeds", [0, 1, 2])),
        controls=list(a.get("controls", ["random", "matched"])), conditioning=a.get("conditioning"),
        target_lang=a.get("target_lang"), boot=a.get("boot", 1000),
        max_new_tokens=a.get("max_new_tokens", 48) if a.get("generate") else 0,
        batch_size=a.get("batch_size", 8), source=a.get("source", "flores"), data_dir=a.get("data_dir"),
        split=a.get("split", "devtest"), limit=a.get("limit")))
    return f"{frame.height} intervention rows"


def run_report(ctx: Context, step: Step) -> str:
    from actstore.workflows.study.report import write_study_report

    return write_study_report(ctx.store(), step.args, ctx.say)


ACTIONS: dict[str, Callable[[Context, Step], str]] = {
    "build": run_build, "convert": run_convert, "ingest": run_ingest, "similarity": run_similarity,
    "retrieval": run_retrieval, "tsne": run_tsne, "neurons": run_neurons, "probe": run_probe,
    "cross-model": run_cross_model, "intervention": run_intervention, "report": run_report,
}
