"""Binary COPY of Arrow columns into a PostgreSQL table, encoded by pgpq (no per-row Python).

Binary, not CSV: formatting floats and timestamps as text costs the client and the server more
per row (docs/performance.md). Knows no table: the caller names the target, its columns and the
Arrow type of each column whose binary encoding must match the PostgreSQL column.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy.engine import Connection

COPY_CHUNK = 8_192  # rows per chunk streamed to COPY


def copy_columns(
    conn: Connection,
    target: str,
    names: tuple[str, ...],
    columns: Mapping[str, np.ndarray | pa.Array],
    types: Mapping[str, pa.DataType],
) -> None:
    """Binary COPY of ``names`` of ``columns`` into ``target``, each cast to its Arrow type in
    ``types`` (text when not listed), streamed in chunks of ``COPY_CHUNK`` rows: the server
    inserts one chunk while the next is encoded."""
    arrays = [as_arrow(columns[c]).cast(types.get(c, pa.string())) for c in names]
    table = pa.Table.from_arrays(arrays, names=list(names))
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor:
        statement = f"COPY {target} ({', '.join(names)}) FROM STDIN (FORMAT binary)"
        with cursor.copy(statement) as copy:
            copy.write(encoder.write_header())
            for chunk in table.to_batches(max_chunksize=COPY_CHUNK):
                copy.write(encoder.write_batch(chunk))
            copy.write(encoder.finish())


def as_arrow(values: np.ndarray | pa.Array) -> pa.Array:
    """An Arrow array of a numpy column; object columns (strings or None) become strings."""
    if isinstance(values, pa.Array):
        return values
    if values.dtype == object:  # strings or None (NULL)
        return pa.array(values, type=pa.string(), from_pandas=True)
    return pa.array(values)
