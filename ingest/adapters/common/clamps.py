"""Clamping neuron sites: hold chosen units at given values (or read them) with PyTorch hooks.

The machinery every family's interventions share (`actstore.ingest.interventions` orchestrates,
each family supplies its sites by name): an `ffn` site is fc2's INPUT, so a clamp there is a
forward pre-hook on fc2 that overwrites the chosen units; a q/k/v site is a projection's OUTPUT,
so a clamp there is a forward hook on the projection. Nothing else in the forward pass changes,
which is what makes "clamp to the current values" bitwise identical to no clamp.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from actstore.errors import ActstoreError
from actstore.ingest.adapters.common.sites import Site


@dataclass(frozen=True)
class Clamp:
    """Units of one site held at `values`: a vector [k] (one value per unit, every position) or a
    tensor [B, T, k] (per position: the identity test writes captured values back)."""

    site: str
    units: tuple[int, ...]
    values: torch.Tensor


def _overwrite(x: torch.Tensor, units: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y[..., units] = values.to(y.dtype).to(y.device).expand(*y.shape[:-1], units.numel())
    return y


@contextmanager
def clamped(sites: dict[str, Site], clamps: Sequence[Clamp]) -> Iterator[None]:
    """Within the block, every clamp's units are overwritten where its site is read."""
    handles = []
    try:
        for c in clamps:
            site = check_site(sites, c.site)
            units = torch.tensor(c.units, dtype=torch.long)
            if site.read == "input":
                def pre(mod, args, units=units, values=c.values):
                    return (_overwrite(args[0], units, values), *args[1:])
                handles.append(site.module.register_forward_pre_hook(pre))
            else:
                def post(mod, args, out, units=units, values=c.values):
                    return _overwrite(out, units, values)
                handles.append(site.module.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


def capture(sites: dict[str, Site], name: str, run) -> torch.Tensor:
    """The full tensor of site `name` during `run()` (for writing values back)."""
    site, got = check_site(sites, name), {}
    if site.read == "input":
        h = site.module.register_forward_pre_hook(lambda m, a: got.setdefault("x", a[0].detach().clone()))
    else:
        h = site.module.register_forward_hook(lambda m, a, o: got.setdefault("x", o.detach().clone()))
    try:
        run()
    finally:
        h.remove()
    return got["x"]


def check_site(sites: dict[str, Site], name: str) -> Site:
    """The site `name`, or one sentence naming the known ones."""
    if name not in sites:
        stacks = sorted({n.split(".")[0] for n in sites})
        raise ActstoreError(f"Unknown site {name!r}; use a name like {next(iter(sites))} "
                            f"(stacks {', '.join(stacks)}; see `actstore points`).")
    return sites[name]


def site_width(site: Site) -> int:
    m = site.module
    return int(m.in_features if site.read == "input" else m.out_features)
