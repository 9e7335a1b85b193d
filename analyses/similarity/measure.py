"""The similarity-measure protocol: what every measure (built-in or third-party) implements.

A measure compares two sets of pooled vectors whose rows are paired (row j of one side and row
j of the other are the same sentence). The study's grids compare the same ~60 sets on thousands
of row subsets, so the protocol has three levels, each computed once and reused:

1. ``prepare(x)``: a whole set (N, d), validated float64, once per set (centring, Gram matrix,
   row norms: whatever the measure needs);
2. ``restrict(prepared, rows)``: one row subset of a prepared set (m row indices into the set,
   repeats allowed), once per distinct (set, subset): the engine caches it and shares it across
   every pair that uses the subset (SVCCA's SVD reduction lives here);
3. ``score(sx, sy, perm=None)``: one pair of restricted subsets, rows paired; ``perm`` (an m-long
   permutation) shuffles y's rows first, for the shuffled-row null. Returns a float, or a `Score`
   when the measure has extras (SVCCA's kept directions kx, ky).

Options common to the study's measures (`keep`, the SVD step's variance fraction; `k`, the
neighbour count) arrive in one `MeasureOptions`; a measure reads only those it uses and declares
that with `uses_keep` / `uses_k`, which the CLI and the results table show. A measure may also
offer a whole-grid torch path (`supports_torch`, `score_grid_torch`); the batched engine uses it
for ``backend='torch'`` and falls back to numpy otherwise.

Registering: an entry point in the group ``actstore.measures`` (``name = "pkg.module:Class"``),
see `registry`. Adding a measure = one module with a `Measure` subclass + one entry point.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from actstore.analyses.validation import MIN_ROWS, check_k, check_keep


@dataclass(frozen=True)
class MeasureOptions:
    """Settings shared by the measures; each measure reads the ones it declares it uses."""

    keep: float = 0.9  # SVD step: fraction of variance kept (svcca, pwcca)
    k: int = 10  # neighbours (knn)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", check_keep(self.keep))
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            check_k(self.k, 2)  # raises the standard k error
        object.__setattr__(self, "k", int(self.k))


@dataclass(frozen=True)
class Score:
    """One comparison with extras: kx, ky are the kept directions per side (-1: not applicable)."""

    score: float
    kx: int = -1
    ky: int = -1


@dataclass(frozen=True, eq=False)
class PairRequest:
    """Compare rows `x_rows` of set `x_key` with rows `y_rows` of set `y_key` (row j with row j)."""

    x_key: Hashable
    x_rows: np.ndarray
    y_key: Hashable
    y_rows: np.ndarray


def null_permutation(seed: int, index: int, m: int) -> np.ndarray:
    """The null's row shuffle for request `index`: independent of order, threads and backend."""
    return np.random.default_rng([seed, index]).permutation(m)


class Measure(ABC):
    """Base class of every measure. Construction is cheap: `options` only."""

    #: registry name (the entry point's name); set by the registry
    name: ClassVar[str] = ""
    #: one line for `--help` and listings
    description: ClassVar[str] = ""
    #: True if the score depends on `options.keep` (the SVD step)
    uses_keep: ClassVar[bool] = False
    #: True if the score depends on `options.k` (neighbours)
    uses_k: ClassVar[bool] = False
    #: True if `score_grid_torch` is implemented (backend='torch')
    supports_torch: ClassVar[bool] = False

    def __init__(self, options: MeasureOptions | None = None):
        self.options = options if options is not None else MeasureOptions()

    def min_rows(self) -> int:
        """Fewest paired rows a comparison needs (the engine refuses smaller subsets)."""
        return MIN_ROWS

    def prepare(self, x: np.ndarray) -> Any:
        """Work done once per set (N, d) of validated float64 vectors; default: the set itself."""
        return x

    def restrict(self, prepared: Any, rows: np.ndarray) -> Any:
        """Work done once per (set, row subset); default: the subset's rows of the prepared set."""
        return prepared[rows]

    @abstractmethod
    def score(self, sx: Any, sy: Any, perm: np.ndarray | None = None) -> float | Score:
        """Compare two restricted subsets (rows paired); `perm` shuffles y's rows first."""

    def score_grid_torch(self, sets: dict[Hashable, np.ndarray], pairs: Sequence[PairRequest], *,
                         null: bool, seed: int, device: str,
                         progress: Callable[[int], object] | None = None) -> dict[str, np.ndarray]:
        """Every pair at once on torch (only when `supports_torch`); same keys as `score_pairs`.

        The null of pair i must use `null_permutation(seed, i, m)`, as the numpy path does.
        """
        raise NotImplementedError(f"measure {self.name!r} has no torch path")

    @property
    def label(self) -> str:
        """The registry name, or the class name of a measure used without registering it."""
        return self.name or type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"


def as_score(value: float | Score) -> Score:
    """Normalise what `Measure.score` returns."""
    if isinstance(value, Score):
        return value
    return Score(float(value))
