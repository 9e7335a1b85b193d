"""Arrow <-> numpy/Polars conversions that keep the store's reads and writes copy-free.

A fixed-size-list vector column is one contiguous buffer: turning it into an (n, d) array and
back never creates per-row Python objects (docs/ARCHITECTURE.md, "Store": a single float32 chunk converts zero-copy).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from actstore.errors import StoreError


def vectors_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column -> (n, d) numpy array; zero-copy for a single float32 chunk."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    width = column.type.list_size
    flat = column.flatten()  # respects slice offsets
    arr = flat.to_numpy(zero_copy_only=False)
    return arr.reshape(-1, width)


def numpy_to_vectors(x: np.ndarray, vector_dtype: str = "float32") -> pa.FixedSizeListArray:
    """(n, d) array -> fixed-size-list Arrow array (one contiguous buffer, no per-row objects)."""
    if x.ndim != 2:
        raise StoreError(f"Vectors must be a 2-D array, got shape {x.shape}; pass (n_rows, width).")
    flat = np.ascontiguousarray(x, dtype=np.float16 if vector_dtype == "float16" else np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), x.shape[1])


def plain_type(typ: pa.DataType) -> pa.DataType:
    """large/view strings and lists -> plain ones: Lance's filter pushdown (Substrait) needs them."""
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return pa.string()
    if pa.types.is_large_list(typ) or pa.types.is_list_view(typ) or pa.types.is_large_list_view(typ):
        return pa.list_(plain_type(typ.value_type))
    if pa.types.is_list(typ):
        return pa.list_(plain_type(typ.value_type))
    return typ


def frame_to_arrow(frame: pl.DataFrame) -> pa.Table:
    """A Polars frame as an Arrow table with plain types, fit for LanceDB and filter pushdown."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    schema = pa.schema([pa.field(f.name, plain_type(f.type), f.nullable) for f in table.schema])
    return table.cast(schema)
