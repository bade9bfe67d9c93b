"""What loading score rows into PostgreSQL costs, by COPY format and by index on ``scores``.

    python benchmarks/copy_formats.py --rows N --database-url postgresql+psycopg:///DB --json

Builds N result rows as Arrow columns (the 13 columns of ``scores``), then measures:

- client encoding: Arrow CSV (what the score path used before) against pgpq's binary COPY
  encoder (what it uses now), seconds for the N rows;
- server load: COPY of the encoded rows into a fresh table shaped like ``scores``, for each
  index set: none, the primary key, the primary key plus a B-tree on ``recorded_at``, plus a
  B-tree on ``run_id`` (the 0001 schema), and the primary key plus a BRIN on ``recorded_at``
  (the 0002 schema), in both formats.

Tables are created and dropped in the given database (it should be a scratch database). The last
stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DDL = (
    "record_id varchar(256), model_version int, source varchar(512), patient_id varchar(128),"
    " recorded_at timestamptz, loss float8, threshold_version int, threshold float8,"
    " score_ratio float8, baseline varchar(128), run_id varchar(64), is_anomaly bool,"
    " scored_at timestamptz"
)
INDEXES = {
    "none": [],
    "primary_key": ["ALTER TABLE t ADD PRIMARY KEY (record_id, model_version)"],
    "pk_recorded_at": [
        "ALTER TABLE t ADD PRIMARY KEY (record_id, model_version)",
        "CREATE INDEX ON t (recorded_at)",
    ],
    "schema_0001": [
        "ALTER TABLE t ADD PRIMARY KEY (record_id, model_version)",
        "CREATE INDEX ON t (recorded_at)",
        "CREATE INDEX ON t (run_id)",
    ],
    "schema_0002": [
        "ALTER TABLE t ADD PRIMARY KEY (record_id, model_version)",
        "CREATE INDEX ON t USING brin (recorded_at)",
    ],
}
CHUNK = 8_192


def result_rows(n: int, seed: int = 0) -> pa.Table:
    """N rows shaped like a batch of scores (ids in arrival order, random losses)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    utc = pa.timestamp("us", tz="UTC")
    index = np.arange(n)
    loss = rng.gamma(2.0, 0.01, n)

    def text(value: str) -> pa.Array:
        return pa.repeat(pa.scalar(value), n)

    return pa.table(
        {
            "record_id": pa.array(np.char.add("beat-", index.astype(str)).astype(object)),
            "model_version": pa.array(np.ones(n, np.int32)),
            "source": text("parquet:/data/beats"),
            "patient_id": pa.array(np.char.add("p", (index // 50_000).astype(str)).astype(object)),
            "recorded_at": pa.array(start + index.astype("timedelta64[s]")).cast(utc),
            "loss": pa.array(loss),
            "threshold_version": pa.array(np.ones(n, np.int32)),
            "threshold": pa.array(np.full(n, 0.05)),
            "score_ratio": pa.array(loss / 0.05),
            "baseline": text("population"),
            "run_id": text("run-1"),
            "is_anomaly": pa.array(loss > 0.05),
            "scored_at": pa.repeat(pa.scalar(start.item(), utc), n),
        }
    )


def encode_csv(table: pa.Table) -> list:
    out = []
    for chunk in table.to_batches(max_chunksize=CHUNK):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(chunk, sink, pacsv.WriteOptions(include_header=False))
        out.append(sink.getvalue())
    return out


def encode_binary(table: pa.Table) -> list:
    from pgpq import ArrowToPostgresBinaryEncoder

    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    header = encoder.write_header()  # the encoder is stateful: header, batches, end, in order
    chunks = [encoder.write_batch(b) for b in table.to_batches(max_chunksize=CHUNK)]
    return [header, *chunks, encoder.finish()]


def timed(fn: Callable[..., object], *args: object) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def load(conninfo: str, indexes: list[str], fmt: str, chunks: list) -> float:
    """Seconds of one COPY of ``chunks`` into a fresh table with ``indexes``."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute(f"CREATE TABLE t ({DDL})")
        for statement in indexes:
            conn.execute(statement)
        started = time.perf_counter()
        statement = f"COPY t FROM STDIN (FORMAT {fmt})"
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
            for chunk in chunks:
                copy.write(chunk)
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE t")
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from sqlalchemy.engine import make_url

    url = make_url(args.database_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    table = result_rows(args.rows)
    t_csv, csv_chunks = timed(encode_csv, table)
    t_bin, bin_chunks = timed(encode_binary, table)
    server = {
        f"{name}_{fmt}": load(conninfo, statements, fmt, chunks)
        for name, statements in INDEXES.items()
        for fmt, chunks in (("csv", csv_chunks), ("binary", bin_chunks))
    }
    summary = {
        "rows": args.rows,
        "encode_seconds": {"csv": t_csv, "binary": t_bin},
        "copy_seconds": server,
    }
    print(json.dumps(summary) if args.json else summary)
    return summary


if __name__ == "__main__":
    main()
