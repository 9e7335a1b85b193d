"""The measure registry: Python entry points in the group `actstore.measures`.

A distribution makes a measure available by declaring, in its `pyproject.toml`,

    [project.entry-points."actstore.measures"]
    my_measure = "my_package.my_module:MyMeasure"

where `MyMeasure` subclasses `actstore.analyses.similarity.measure.Measure`. actstore's own
measures (svcca, pwcca, cka, cka_debiased, knn) are declared the same way, so a third-party
measure is a peer of the built-ins: `actstore analyze similarity --measure my_measure` and the
report's `--measure` list it, and the batched engine, baselines, nulls and bootstrap run it.

`measure_names()` reads names from the installed metadata without importing any measure (the
CLI's choice lists use it, so `actstore --help` stays fast); a class is imported on first use.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import entry_points

from actstore.errors import AnalysisInputError

from .measure import Measure, MeasureOptions

GROUP = "actstore.measures"
log = logging.getLogger(__name__)


def measure_names() -> list[str]:
    """Registered measure names, in declaration order, without importing them."""
    seen: list[str] = []
    for ep in entry_points(group=GROUP):
        if ep.name not in seen:
            seen.append(ep.name)
    return seen


@lru_cache(maxsize=None)
def _load(name: str) -> type[Measure]:
    eps = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not eps:
        raise AnalysisInputError(
            f"measure={name!r} is unknown; choose one of {', '.join(measure_names()) or 'none'} "
            f"(or install the package that registers it in entry point group {GROUP!r})."
        )
    ep = eps[0]
    try:
        cls = ep.load()
    except Exception as exc:  # noqa: BLE001 - a plug-in's import error becomes one clear sentence
        raise AnalysisInputError(
            f"measure {name!r} ({ep.value}) failed to import ({type(exc).__name__}: {exc}); "
            "fix or reinstall the package that provides it."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Measure)):
        raise AnalysisInputError(
            f"measure {name!r} ({ep.value}) is not a Measure subclass; fix its entry point."
        )
    cls.name = name
    return cls


def measure_class(name: str) -> type[Measure]:
    """The class registered as `name` (imported on first use, then cached)."""
    if not isinstance(name, str):
        raise AnalysisInputError(f"measure={name!r} is not a name; pass e.g. 'svcca'.")
    return _load(name)


def registered_measures() -> dict[str, type[Measure]]:
    """Name -> class for every measure that imports; broken plug-ins are logged and left out."""
    found: dict[str, type[Measure]] = {}
    for name in measure_names():
        try:
            found[name] = measure_class(name)
        except AnalysisInputError as exc:
            log.warning("%s", exc)
    return found


def describe_measures() -> list[dict]:
    """One row per registered measure: name, what it reads, torch support, description, provider."""
    return [{"measure": name, "uses_keep": cls.uses_keep, "uses_k": cls.uses_k,
             "torch": cls.supports_torch, "description": cls.description,
             "provider": cls.__module__.split(".")[0]}
            for name, cls in registered_measures().items()]


def get_measure(measure: str | type[Measure] | Measure, *, keep: float = 0.9, k: int = 10) -> Measure:
    """A ready measure: a registered name or a `Measure` class with these options, or an
    instance as is (its own options win)."""
    if isinstance(measure, Measure):
        return measure
    if isinstance(measure, type) and issubclass(measure, Measure):
        return measure(MeasureOptions(keep=keep, k=k))
    return measure_class(measure)(MeasureOptions(keep=keep, k=k))
