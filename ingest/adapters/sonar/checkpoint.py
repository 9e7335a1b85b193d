"""Reading SONAR's published checkpoints and fairseq2 asset cards, cheaply and in the target dtype.

Checkpoints: both SONAR formats keep the weights under `checkpoint["model"]` (the text encoder
with fairseq2 names, the speech encoders with fairseq1 names); real speech files also carry
fairseq1 training state (~3x the parameter bytes), which is never touched. `load_model_state`
opens the file with `torch.load(mmap=True, weights_only=True)` (the restricted unpickler; the
tensors stay in the page cache, not in private memory) and casts tensor by tensor to the
requested dtype, so a bfloat16 load never holds a float32 copy of the model.

Modules are built on the `meta` device and filled with `load_state_dict(assign=True)`: the cast
tensors become the parameters themselves (no random initialisation, no second copy).
`rebuild_meta_buffers` recreates the few computed, non-persistent buffers (sinusoidal tables)
that a meta-device build leaves empty.

Asset cards: fairseq2's YAML model cards (`name`, `model_family`, `model_arch`, `model_config`
overrides, `checkpoint`, `tokenizer`, `tokenizer_config`). A card may refer to its files as
`file://${...}/name` (the fixture placeholder), `file:///abs/path`, a bare path, or an https URL
whose download lives in fairseq2's asset cache (`common.fairseq2_assets`).
"""

from __future__ import annotations

import pickle
import re
import types
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from actstore.errors import UnknownModelError

CARD_NAMES = ("asset_card.yaml", "asset_card.yml", "card.yaml")


class _Stub:
    """Stands in for any class a checkpoint names outside torch's weights-only allowlist.

    Nothing of the checkpoint's own code is imported or run, so a training-state entry (e.g. an
    argparse/omegaconf config, numpy scalars) can be skipped without trusting the file.
    """

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _StubUnpickler(pickle.Unpickler):
    """torch's weights-only allowlist for real globals; an inert `_Stub` for everything else."""

    def find_class(self, module, name):
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = _get_allowed_globals()
        if f"{module}.{name}" in allowed:
            return allowed[f"{module}.{name}"]
        return type(name, (_Stub,), {"__module__": "actstore.stub"})


_stub_pickle = types.SimpleNamespace(Unpickler=_StubUnpickler, load=pickle.load,
                                     __name__="actstore_stub_pickle")


def load_model_state(path: str | Path, dtype: torch.dtype,
                     keep: Callable[[str], bool] = lambda k: True) -> dict[str, torch.Tensor]:
    """`checkpoint["model"]` of a SONAR file, floating tensors cast to `dtype` one by one."""
    path = Path(path)
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except pickle.UnpicklingError:
            # fairseq1 training state beside ["model"] (argparse/omegaconf configs, numpy
            # scalars) is refused by the restricted unpickler; read it with stubs instead
            ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False,
                              pickle_module=_stub_pickle)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise UnknownModelError(f"Cannot read {path} as a PyTorch checkpoint ({exc}); pass an "
                                "intact SONAR checkpoint file.") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise UnknownModelError(f"{path} has no 'model' state dict at its top level; pass a "
                                "checkpoint in SONAR's published layout.")
    out: dict[str, torch.Tensor] = {}
    for key, value in ckpt["model"].items():
        if not isinstance(value, torch.Tensor) or not keep(key):
            continue
        out[key] = value.to(dtype) if value.is_floating_point() else value
    return out


def pt_has_key(path: Path, needle: str) -> bool:
    """Cheaply test whether a torch zip checkpoint's pickle names `needle` (no tensor is read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            pkl = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
            if pkl is None or zf.getinfo(pkl).file_size > 512 * 2**20:
                return False
            return needle.encode() in zf.read(pkl)
    except (zipfile.BadZipFile, OSError):
        return False


def rebuild_meta_buffers(model: torch.nn.Module, rebuild: dict[type, Callable[[torch.nn.Module],
                                                                             torch.nn.Module]]) -> None:
    """Replace every sub-module of a type in `rebuild` that still holds a meta buffer."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            factory = rebuild.get(type(child))
            if factory is not None and any(b.is_meta for b in child.buffers()):
                setattr(parent, child_name, factory(child))


def assign_state(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Strict `load_state_dict(assign=True)` with an actionable error on a mismatch."""
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise UnknownModelError(
            f"{what} does not match the model built from its shapes (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}); pass an unmodified SONAR checkpoint.")
    model.load_state_dict(state, strict=True, assign=True)


def count_layers(keys: Iterable[str], prefix: str) -> int:
    """Number of `prefix{N}.` blocks among `keys` (e.g. prefix 'encoder.layers.')."""
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in keys if (m := pat.match(k))}
    return max(found) + 1 if found else 0


# -- asset cards -----------------------------------------------------------------------------

def read_card(path: str | Path) -> dict[str, Any]:
    """A fairseq2 asset card (YAML mapping); an unreadable card is an `UnknownModelError`."""
    import yaml

    path = Path(path)
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UnknownModelError(f"Cannot read the asset card {path} ({exc}); fix or remove it.") from None
    if not isinstance(card, dict):
        raise UnknownModelError(f"The asset card {path} is not a YAML mapping; fix or remove it.")
    return card


def find_card(directory: Path) -> Path | None:
    """The asset card file in a model directory, if any."""
    for name in CARD_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def card_file(card_dir: Path, uri: str | None) -> Path | None:
    """Local file a card's `checkpoint`/`tokenizer` URI refers to, if it can be found offline.

    `file://${VAR}/name` resolves against the card's own directory (how the fixture cards and
    actstore's tiny cards are written); `file:///abs` and bare paths as given; an http(s) URL is
    looked up in fairseq2's asset cache.
    """
    if not uri:
        return None
    uri = str(uri)
    if uri.startswith("file://"):
        rest = uri[len("file://"):]
        rest = re.sub(r"^\$\{[^}]*\}", str(card_dir), rest)
        p = Path(rest)
        return p if p.is_absolute() else card_dir / p
    if re.match(r"^[a-z]+://", uri):
        from actstore.ingest.adapters.common.fairseq2_assets import cached_download

        return cached_download(uri)
    p = Path(uri).expanduser()
    return p if p.is_absolute() else card_dir / p


def card_config(card: dict[str, Any] | None) -> dict[str, Any]:
    """The card's `model_config` overrides (fairseq2 0.8 also nests them under `_set_`)."""
    cfg = (card or {}).get("model_config") or {}
    if isinstance(cfg, dict) and "_set_" in cfg and isinstance(cfg["_set_"], dict):
        cfg = cfg["_set_"]
    return cfg if isinstance(cfg, dict) else {}


def card_langs(card: dict[str, Any] | None) -> list[str] | None:
    """The tokenizer's language list from a card (`tokenizer_config: {_set_: {langs: [...]}}`)."""
    tc = (card or {}).get("tokenizer_config") or {}
    if isinstance(tc, dict) and isinstance(tc.get("_set_"), dict):
        tc = tc["_set_"]
    langs = tc.get("langs") if isinstance(tc, dict) else None
    return list(langs) if langs else None
