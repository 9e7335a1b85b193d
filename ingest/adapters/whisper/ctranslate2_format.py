"""Reader of CTranslate2's `model.bin` (binary version 6), the format faster-whisper ships.

Layout (all little-endian; strings are u16 length including a trailing NUL, then the bytes):

    u32 binary version (6) | string spec name | u32 spec revision | u32 variable count
    per variable: string name | u8 rank | u32 dims[rank] | u8 dtype | u32 byte count | bytes
    u32 alias count | per alias: string alias | string target

dtype codes: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16 (ctranslate2's
`_dtype_to_type_id`). bfloat16 is widened to float32 on read (exact: bf16 is the top half of an
f32). Quantised weights (`int8*`, `int16` conversions) carry `<name>_scale`: the stored integer
is round(w * scale), so `dequantised(name)` returns q / scale (scale per output row for int8,
one scalar for int16). An alias names a variable stored once under another name (Whisper's tied
output projection); `get` resolves it.

Why our own reader rather than the `ctranslate2` package: the package is a compiled inference
engine (tens of MB) that cannot hand its weights back as arrays; reading 6 fields per variable
needs nothing but numpy. The package's own converter is used in the tests as the reference.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actstore.errors import UnknownModelError

SUPPORTED_VERSION = 6
#: dtype code -> (name, numpy dtype as stored)
DTYPES: dict[int, tuple[str, str]] = {0: ("float32", "<f4"), 1: ("int8", "i1"), 2: ("int16", "<i2"),
                                      3: ("int32", "<i4"), 4: ("float16", "<f2"),
                                      5: ("bfloat16", "<u2")}


@dataclass
class Ct2Model:
    """The variables of one `model.bin`: arrays by name, their stored dtypes, and aliases."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Every name, stored or aliased."""
        return sorted([*self.variables, *self.aliases])

    def get(self, name: str) -> np.ndarray:
        """The stored array for `name` (aliases resolved); bfloat16 comes back as float32."""
        target = self.aliases.get(name, name)
        try:
            return self.variables[target]
        except KeyError:
            raise UnknownModelError(
                f"The CTranslate2 model ({self.spec}) has no variable {name!r}; was it converted "
                "from a different architecture?") from None

    def dequantised(self, name: str) -> np.ndarray:
        """`name` as float32: integers divided by their `<name>_scale`, floats widened."""
        target = self.aliases.get(name, name)
        value = self.get(target)
        scale_name = target + "_scale"
        if scale_name in self.variables:
            scale = self.variables[scale_name].astype(np.float32)
            scale = scale.reshape(scale.shape + (1,) * (value.ndim - scale.ndim))
            return (value.astype(np.float32) / scale).astype(np.float32)
        if value.dtype.kind in "iu":
            raise UnknownModelError(
                f"CTranslate2 variable {name!r} is {self.dtypes[target]} without a "
                f"{scale_name!r}; it cannot be read as weights.")
        return value.astype(np.float32)


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise UnknownModelError(
                f"{self.path} is truncated (wanted {n} bytes at offset {self.pos} of "
                f"{len(self.data)}); copy or reassemble the file again.")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (n,) = self.unpack("H")
        return self.take(n)[:-1].decode("utf-8")


def read_ct2_model(path: str | Path) -> Ct2Model:
    """Parse a CTranslate2 `model.bin` (a directory holding one is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        raise UnknownModelError(f"No CTranslate2 model file at {path}; pass a faster-whisper "
                                "directory (model.bin, config.json, tokenizer.json).")
    cur = _Cursor(path.read_bytes(), path)
    (version,) = cur.unpack("I")
    if version != SUPPORTED_VERSION:
        raise UnknownModelError(
            f"{path} is CTranslate2 binary version {version}; only version {SUPPORTED_VERSION} "
            "(ctranslate2 >= 3) is read here: re-convert it with a current ctranslate2.")
    model = Ct2Model(spec=cur.string(), revision=cur.unpack("I")[0])
    (count,) = cur.unpack("I")
    for _ in range(count):
        name = cur.string()
        (rank,) = cur.unpack("B")
        dims = cur.unpack(f"{rank}I") if rank else ()
        code, nbytes = cur.unpack("BI")
        if code not in DTYPES:
            raise UnknownModelError(f"{path}: variable {name!r} has unknown dtype code {code}; "
                                    "the file is corrupt or from a newer CTranslate2.")
        label, np_dtype = DTYPES[code]
        raw = np.frombuffer(cur.take(nbytes), dtype=np_dtype)
        if raw.size != int(np.prod(dims, dtype=np.int64)):
            raise UnknownModelError(f"{path}: variable {name!r} holds {raw.size} values for shape "
                                    f"{tuple(dims)}; the file is corrupt.")
        if label == "bfloat16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        model.variables[name] = raw.reshape(dims)
        model.dtypes[name] = label
    (n_alias,) = cur.unpack("I")
    for _ in range(n_alias):
        alias = cur.string()
        model.aliases[alias] = cur.string()
    return model
