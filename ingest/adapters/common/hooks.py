"""Forward hooks that capture hidden states from named modules, then remove themselves.

Why hooks rather than `output_hidden_states`: what `hidden_states[i]` means differs between
models and transformers versions (transformers 5 overwrites the last entry with
`last_hidden_state`, which for SeamlessM4T's speech encoder is the *adaptor* output). A hook
on a module captures exactly that module's output, whatever the version does with the tuple.

`Capture` is a context manager: every hook it registers is removed on exit, also when the
forward raises. `stop_after(module)` ends the forward pass early once the deepest requested
module has run (no compute is spent on layers nobody asked for).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once every requested point is captured."""


def _first_tensor(value):
    """A module's main tensor: the output itself, or the first element of a tuple/ModelOutput."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return value[0]
    if hasattr(value, "last_hidden_state"):
        return value.last_hidden_state
    raise TypeError(f"cannot find a tensor in a module output of type {type(value).__name__}")


class Capture:
    """Collects {point name: tensor} from module hooks during one forward pass."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def output_of(self, module: nn.Module, name: str, *, stop: bool = False) -> None:
        """Store `module`'s output under `name`; with `stop`, end the forward afterwards."""
        def hook(_module, _args, output):
            self.tensors[name] = _first_tensor(output)
            if stop:
                raise _StopForward

        self._handles.append(module.register_forward_hook(hook))

    def input_of(self, module: nn.Module, name: str, *, stop: bool = False) -> None:
        """Store the first input (`hidden_states`) of `module` under `name`."""
        def hook(_module, args, kwargs):
            self.tensors[name] = args[0] if args else kwargs["hidden_states"]
            if stop:
                raise _StopForward

        self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def pre_hook(self, module: nn.Module, fn: Callable[[nn.Module, tuple], tuple | None]) -> None:
        """Register a plain forward pre-hook (e.g. one that rewrites the input) for this pass."""
        self._handles.append(module.register_forward_pre_hook(fn))

    def layer_stack(self, prefix: str, order: list[str], layers, final_norm: nn.Module, *,
                    stop: bool = True) -> None:
        """Hook a pre-norm transformer encoder's points `{prefix}.embed` and `{prefix}.L{i}`.

        embed = the input of layer 1 (embeddings + positions); L{i} = layer i's output, except
        the last layer, taken after the encoder's final LayerNorm (as `hidden_states[N]` was in
        transformers 4). `order` lists the requested points shallowest first; the forward stops
        after the last one (unless `stop` is False: sites or a decoder need the whole stack).
        """
        n_layers = len(layers)
        for p in order:
            last = stop and p == order[-1]
            if p == f"{prefix}.embed":
                self.input_of(layers[0], p, stop=last)
            elif p == f"{prefix}.L{n_layers}":
                self.output_of(final_norm, p, stop=last)
            else:
                self.output_of(layers[int(p.split(".L")[1]) - 1], p, stop=last)

    def run(self, forward: Callable[[], object]) -> dict[str, torch.Tensor]:
        """Call `forward()`; an early stop raised by a hook counts as success."""
        try:
            forward()
        except _StopForward:
            pass
        return self.tensors

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
