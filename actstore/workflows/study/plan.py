"""A checked study turned into an ordered list of steps: build/convert models, ingest each
system, run its analyses, the cross-model comparisons, interventions, and the report.

Why a plan apart from the run: `--dry-run` prints it with its cost, `--status` asks each step
whether the store already holds its output, and the runner executes it; all three must agree on
what the study is. Every step maps onto a library call the CLI also makes (`ingest.pipeline`
with an `IngestRequest`, `analyses.tasks.run_*`, `ingest.intervention_run`, the report), with
the same defaults, so a study equals the commands it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actstore.catalogue import Catalogue
from actstore.workflows.study.spec import ANALYSIS_KEYS, Study
from actstore.workflows.study.validate import Checked

_DATA_FROM_SYSTEM = ("source", "data_dir", "split", "corpus", "limit", "modalities", "languages_csv",
                     "cache_dir")


@dataclass
class Step:
    """One unit of the study: what it does, for which system, and its arguments."""

    kind: str  # build | convert | ingest | similarity | retrieval | tsne | neurons | probe |
    #            intervention | cross-model | report
    system: str | None
    label: str
    args: dict[str, Any] = field(default_factory=dict)
    units: int = 1  # progress units (sentences x modalities for an ingest)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.system or ''}:{self.label}"


@dataclass
class SystemPlan:
    """A system as the study resolves it: its model reference, languages and ingest settings."""

    name: str
    spec: dict[str, Any]
    langs: list[str]
    modalities: list[str]
    limit: int | None
    missing: str | None = None  # why its weights are not here (None: they are)

    @property
    def random_init(self) -> bool:
        return "build" in self.spec


@dataclass
class Plan:
    study: Study
    systems: dict[str, SystemPlan]
    steps: list[Step]
    skipped: dict[str, str]  # optional systems left out (missing weights), with why
    db: str
    storage_options: dict[str, str] | None


def _merged(study: Study, system: dict[str, Any]) -> dict[str, Any]:
    """[data] overridden by the system's own data keys."""
    data = dict(study.table("data"))
    if any(k in system for k in ("languages", "levels")):  # a system's languages replace the study's
        for key in ("languages", "levels", "language_set"):
            data.pop(key, None)
    data.update({k: v for k, v in system.items() if k in (*_DATA_FROM_SYSTEM, "languages", "levels", "language_set")})
    return data


def system_languages(data: dict[str, Any], catalogue: Catalogue) -> list[str]:
    """The languages a system ingests: its (or the study's) list or levels, cut to the language set."""
    codes: Any = data.get("languages")
    if codes is None and isinstance(data.get("levels"), dict):
        codes = [c for level in ("high", "medium", "low") for c in data["levels"].get(level, [])]
    if isinstance(codes, str) and codes != "all":
        codes = [c.strip() for c in codes.split(",") if c.strip()]
    return catalogue.resolve(None if codes in (None, "all") else list(codes),
                             language_set=data.get("language_set"))


def analyses_of(study: Study, system: dict[str, Any]) -> dict[str, Any]:
    """The study's [analyses] with the system's own `analyses` table on top."""
    merged = {k: v for k, v in study.table("analyses").items() if k in ANALYSIS_KEYS}
    merged.update(system.get("analyses") or {})
    return merged


def build_plan(study: Study, checked: Checked) -> Plan:
    """The steps of `study`, in order; optional systems whose weights are missing are left out."""
    catalogue = Catalogue.load(study.table("data").get("languages_csv"))
    systems: dict[str, SystemPlan] = {}
    skipped: dict[str, str] = {}
    steps: list[Step] = []
    for name, spec in study.systems.items():
        data = _merged(study, spec)
        sp = SystemPlan(name, spec, system_languages(data, catalogue),
                        list(data.get("modalities") or ["speech", "text"]), data.get("limit"),
                        checked.missing.get(name))
        if sp.missing and spec.get("optional"):
            skipped[name] = sp.missing
            continue
        systems[name] = sp
        if "build" in spec:
            steps.append(Step("build", name, f"build tiny RANDOM-INIT {spec['build']}",
                              {"kind": spec["build"], "out": str(study.out / name)}))
        elif "convert" in spec:
            steps.append(Step("convert", name, f"convert the real {spec['convert']} weights",
                              {"real": spec["convert"]}))
    for sp in systems.values():
        steps.append(_ingest_step(study, sp))
    for sp in systems.values():
        steps += _analysis_steps(study, sp)
    for item in study.values.get("cross_model", []):
        if item["a"] in systems and item["b"] in systems:
            steps.append(Step("cross-model", item["a"], f"cross-model {item['a']} vs {item['b']}", dict(item)))
    report = study.table("report")
    models = [m for m in report.get("models", list(systems)) if m in systems]
    if models:
        steps.append(Step("report", None, f"report of {', '.join(models)}",
                          {"models": models, "path": str(study.out / report.get("path", "report.html")),
                           "measure": report.get("measure", "svcca"), "bootstrap": report.get("bootstrap", 0),
                           "published": dict(report.get("published", {}))}))
    store = study.table("store")
    path = str(store.get("path") or f"{study.name}.lance")  # default: <name>.lance here
    db = path if "://" in path else str(study.path(path))
    return Plan(study, systems, steps, skipped, db, store.get("storage_options") or None)


def _ingest_step(study: Study, sp: SystemPlan) -> Step:
    """The `IngestRequest` arguments of a system (the model itself is resolved when it runs)."""
    from actstore.ingest.requests import parse_layers

    spec, data = sp.spec, _merged(study, sp.spec)
    layers = spec.get("layers")
    args = {
        "weights": spec.get("model") or (str(study.out / sp.name) if "build" in spec else None), "name": sp.name, "adapter": spec.get("adapter"),
        "adapter_options": {k: str(v) for k, v in (spec.get("adapter_options") or {}).items()},
        "source": data.get("source", "flores"), "data_dir": data.get("data_dir"),
        "split": data.get("split", "devtest"), "corpus": data.get("corpus"), "langs": sp.langs,
        "modalities": sp.modalities,
        "layers": parse_layers(layers if layers is None or isinstance(layers, str) else ",".join(map(str, layers))),
        "points": spec.get("points"), "sites": spec.get("sites"), "target_lang": spec.get("target_lang"),
        "limit": sp.limit, "batch_size": spec.get("batch_size", 16), "device": spec.get("device", "cpu"),
        "dtype": spec.get("dtype", "float32"), "vector_dtype": spec.get("vector_dtype", "float32"),
        "languages_csv": data.get("languages_csv"), "cache_dir": data.get("cache_dir"),
        "max_seconds": spec.get("max_seconds"), "memory_budget": spec.get("memory_budget"),
        "engine": spec.get("engine", "local"), "ray_address": spec.get("ray_address"),
        "ray_actors": spec.get("ray_actors"),
    }
    if args["data_dir"]:
        args["data_dir"] = str(study.path(args["data_dir"]))
    units = len(sp.langs) * len(sp.modalities) * (sp.limit or nominal_sentences(args["source"], args["split"]))
    what = f"{len(sp.langs)} languages x {'+'.join(sp.modalities)}" + (f" x {sp.limit}" if sp.limit else "")
    return Step("ingest", sp.name, f"ingest {sp.name} ({what})", args, units)


def nominal_sentences(source: str, split: str) -> int:
    """Sentence ids per language when no limit is set (for the estimate and the progress total):
    FLORES-200 dev 997 / devtest 1012; FLEURS test ~350 per language (varies); else 1000."""
    return {("flores", "dev"): 997, ("flores", "devtest"): 1012}.get((source, split),
                                                                      350 if source == "fleurs" else 1000)


def _analysis_steps(study: Study, sp: SystemPlan) -> list[Step]:
    table = analyses_of(study, sp.spec)
    seed, n, common = table.get("seed", 0), table.get("n"), {"model": sp.name}
    n_of = (lambda kind: n.get(kind)) if isinstance(n, dict) else (lambda kind: n)
    steps = []
    kinds = table.get("similarity", [])
    for measure in table.get("measures", ["svcca"]):
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            steps.append(Step("similarity", sp.name, f"{measure} {kind} of {sp.name}",
                              {**common, "kind": kind, "measure": measure, "n": n_of(kind), "seed": seed,
                               "bootstrap": table.get("bootstrap", 0)}))
    for kind in ("retrieval", "tsne", "neurons", "probe"):
        options = table.get(kind, False)
        if options:
            steps.append(Step(kind, sp.name, f"{kind} of {sp.name}",
                              {**common, "seed": seed, **(options if isinstance(options, dict) else {})}))
    for item in table.get("interventions", []):
        steps.append(Step("intervention", sp.name, f"intervene {item['site']} of {sp.name}",
                          {**common, "weights": sp.spec.get("model"), "device": sp.spec.get("device", "cpu"),
                           "dtype": sp.spec.get("dtype", "float32"), **item}))
    return steps
