"""Throughput of the score path: the real pipeline against a naive path and a hardware limit.

    python benchmarks/score_throughput.py --rows N --database-url URL [--skip-baselines] --json

Generates ``--rows`` synthetic beats (140 samples) into a temporary Parquet folder (untimed,
written in chunks), trains a small dense model and registers it as champion, then measures in
one process and machine state:

(a) pipeline: the task functions the score flow runs (start_run, resolve_judge,
    score_new_records, finish_run), in a child process whose peak RSS (its ``VmHWM``) is
    reported;
(b) naive: pandas read, Keras ``predict``, pandas ``to_sql`` append;
(c) limit: bare Parquet read to numpy + bare batched inference + bare bulk load (binary COPY
    with the pipeline's own encoder on PostgreSQL, executemany on SQLite) of the result rows into
    an empty copy of ``scores`` with its primary key and indexes (``limit_keyed`` in the JSON: the
    two tables' keys were compared and match), summed:
    ``limit_rows_per_s = rows / (t_read + t_infer + t_load)``.

With baselines, the pipeline and the limit are each run ``--repeats`` times (default 3),
alternated, the result tables emptied before each pipeline run; each is reported by its fastest
run (``pipeline_seconds_each`` and ``limit_seconds_each`` list them all): on a shared machine
other work only slows a run down, so the fastest run is the one least disturbed, for both sides.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:  # for annotations only: the script imports them where it uses them
    import pandas as pd

    from ecgmon.models.autoencoder.detector import AutoencoderDetector
    from ecgmon.settings import Settings

log = logging.getLogger("bench")
LENGTH = 140
PIPELINE_RUN_ID = "bench-run-1"
LIMIT_TABLE = "limit_scores"
FILE_ROWS = 1_000_000
CHUNK_ROWS = 100_000
RESULT_COLUMNS = (
    "record_id", "model_version", "source", "patient_id", "recorded_at", "loss",
    "threshold_version", "threshold", "score_ratio", "baseline", "run_id", "is_anomaly",
    "scored_at",
)  # fmt: skip


def generate(folder: Path, rows: int, seed: int = 0) -> np.ndarray:
    """Write ``rows`` beats as daily Parquet partitions; returns the normal base beats."""
    from ecgmon.synthetic import synthetic_beats

    base = synthetic_beats(min(rows, 20_000), LENGTH, anomaly_fraction=0.05, seed=seed)
    rng = np.random.default_rng(seed + 1)
    start = np.datetime64("2026-01-01T00:00:00", "ns")
    for first_of_file in range(0, rows, FILE_ROWS):
        day = str(start.astype("datetime64[D]") + first_of_file // FILE_ROWS)
        path = folder / f"date={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        end_of_file = min(rows, first_of_file + FILE_ROWS)
        with pq.ParquetWriter(path, _schema()) as writer:
            for first in range(first_of_file, end_of_file, CHUNK_ROWS):
                n = min(CHUNK_ROWS, end_of_file - first)
                writer.write_table(_chunk(base.signals, first, n, start, rng))
    return base.signals[base.normal_mask()]


def _schema() -> pa.Schema:
    return pa.schema(
        [
            ("record_id", pa.string()),
            ("recorded_at", pa.timestamp("ns", tz="UTC")),
            ("patient_id", pa.string()),
            ("signal", pa.list_(pa.float32())),
        ]
    )


def _chunk(
    base: np.ndarray, first: int, n: int, start: np.datetime64, rng: np.random.Generator
) -> pa.Table:
    index = np.arange(first, first + n)
    signals = base[index % len(base)] + rng.normal(0, 0.02, (n, LENGTH)).astype(np.float32)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * LENGTH)
    columns = [
        pa.array(np.char.add("beat-", index.astype(str)).astype(object), pa.string()),
        pa.array(start + index.astype("timedelta64[s]"), pa.timestamp("ns", tz="UTC")),
        pa.array((np.char.add("p", (index // 50_000).astype(str))).astype(object), pa.string()),
        pa.ListArray.from_arrays(offsets, pa.array(signals.ravel())),
    ]
    return pa.Table.from_arrays(columns, schema=_schema())


def prepare_model(url: str, store: str, normal: np.ndarray) -> object:
    """Migrate the database, train a small dense model and promote it; returns the detector."""
    from ecgmon.models.autoencoder.detector import AutoencoderDetector
    from ecgmon.models.registry.versions import add_threshold, promote, register_model
    from ecgmon.storage.engine import create_db_engine, upgrade_schema

    engine = create_db_engine(url)
    upgrade_schema(engine)
    detector = AutoencoderDetector.fit(normal[:10_000], architecture="dense", epochs=3, seed=0)
    version = register_model(engine, detector, store)
    add_threshold(engine, version, detector.threshold(), origin="benchmark")
    promote(engine, version)
    return detector


def run_pipeline_child(url: str, store: str, source: str, batch_size: int | None) -> dict:
    """Run the pipeline stage in a child process; its JSON plus the child's peak RSS (MB)."""
    command = [sys.executable, __file__, "--child", source, "--database-url", url]
    command += ["--store", store] + (["--batch-size", str(batch_size)] if batch_size else [])
    env = {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc", **os.environ}  # as `ecgmon` and prefect.yaml
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    sys.stderr.write(done.stderr[-2000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def child_main(args: argparse.Namespace) -> None:
    """The pipeline stage: the score flow's task functions, then a no-op run (nothing new)."""
    os.environ["ECGMON_DATABASE_URL"] = args.database_url
    os.environ["ECGMON_MODEL_STORE"] = args.store
    import ecgmon.models.autoencoder.architectures  # noqa: F401  (Keras/TensorFlow: import time is not throughput)
    from ecgmon.settings import get_settings
    from ecgmon.tasks import scoring  # noqa: F401  (imports Prefect before timing)

    _import_driver(args.database_url)

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", force=True
    )
    overrides = {"batch_size": args.batch_size} if args.batch_size else {}
    settings = get_settings(**overrides)
    import psutil

    machine, process = psutil.cpu_times(), psutil.Process().cpu_times()
    server = _server_cpu()
    faults, switches = resource.getrusage(resource.RUSAGE_SELF), psutil.Process().num_ctx_switches()
    started = time.perf_counter()
    counts = _score_run(settings, args.child, PIPELINE_RUN_ID)
    seconds = time.perf_counter() - started
    machine_after, process_after = psutil.cpu_times(), psutil.Process().cpu_times()
    busy = _busy(machine_after) - _busy(machine)
    cpu = {
        "machine_busy_fraction": busy / (seconds * (os.cpu_count() or 1)),
        "process_cpu_seconds": sum(process_after[:2]) - sum(process[:2]),
        "process_system_seconds": process_after.system - process.system,
        "page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults.ru_minflt,
        "context_switches": sum(psutil.Process().num_ctx_switches()) - sum(switches),
        "other_cpu_seconds": busy - (sum(process_after[:2]) - sum(process[:2])),
        "postgres_cpu_seconds": _server_cpu() - server,
    }
    started = time.perf_counter()
    noop = _score_run(settings, args.child, "bench-run-2")
    noop_seconds = time.perf_counter() - started
    assert noop["n_read"] == 0, noop
    out = {"seconds": seconds, "noop_seconds": noop_seconds, "cpu": cpu, **counts}
    out["batch_size"] = settings.batch_size
    out["peak_rss_mb"] = _own_peak_rss_mb()
    print(json.dumps(out))


def _own_peak_rss_mb() -> float:
    """Peak RSS (MB) of this process since it started its program (``VmHWM``). Not ``ru_maxrss``
    in the parent: Linux carries a child's high-water mark over from the fork (the parent's pages)
    across exec, so a child started after the naive stage reported the parent's gigabytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _import_driver(url: str) -> None:
    """Import the database driver and its SQLAlchemy dialect before timing (0.2 s for psycopg in
    a fresh process; the limit, run in the parent, has it imported already): a throwaway engine
    that never connects."""
    import sqlalchemy as sa

    sa.create_engine(url).dispose()


def _server_cpu() -> float:
    """CPU seconds of the local PostgreSQL server's processes (0 when none runs here); the
    pipeline's backends stay open (pooled) until the stage ends, so their time is all counted."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] == "postgres" and proc.info["cpu_times"] is not None:
            total += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return total


def _busy(times: Any) -> float:
    """CPU seconds a psutil.cpu_times() total spent not idle (nor waiting for I/O)."""
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _score_run(settings: Settings, source: str, run_id: str) -> dict:
    """What flows/score.py runs, as plain functions (no Prefect API needed in the child)."""
    from dataclasses import asdict

    from ecgmon.storage.engine import create_db_engine
    from ecgmon.storage.runs import finish_run, start_run
    from ecgmon.tasks.scoring import resolve_judge, score_new_records

    engine = create_db_engine(settings.database_url_plain)
    start_run(engine, run_id, "score", {"source": source}, source)
    ref = resolve_judge(settings)
    counts = score_new_records(settings, source, None, ref, run_id)
    finish_run(engine, run_id, "completed", model_version=ref.model_version)
    return asdict(counts)


def naive(url: str, folder: Path, detector: AutoencoderDetector) -> float:
    """Seconds of the tutorial-style path: pandas read, Keras predict, pandas to_sql append."""
    import pandas as pd
    import sqlalchemy as sa

    started = time.perf_counter()
    frame = pd.read_parquet(folder)
    x = detector.scaler.transform(np.stack(frame["signal"].to_numpy()))
    recon = detector.model.predict(x, batch_size=1024, verbose=0)
    loss = np.mean(np.abs(recon - x), axis=1)
    threshold = float(detector.threshold().value)
    out = _result_frame(frame, loss, threshold)
    out.to_sql("naive_scores", sa.create_engine(url), if_exists="append", index=False)
    return time.perf_counter() - started


def _result_frame(frame: pd.DataFrame, loss: np.ndarray, threshold: float) -> pd.DataFrame:
    import pandas as pd

    now = pd.Timestamp.now(tz="UTC")
    return pd.DataFrame({
        "record_id": frame["record_id"].to_numpy(), "model_version": 1, "source": "bench",
        "patient_id": frame["patient_id"].to_numpy(), "recorded_at": frame["recorded_at"],
        "loss": loss, "threshold_version": 1, "threshold": threshold,
        "score_ratio": loss / threshold, "baseline": "population", "run_id": "naive",
        "is_anomaly": loss > threshold, "scored_at": now,
    })  # fmt: skip


def limit(url: str, folder: Path, detector: AutoencoderDetector) -> dict[str, float]:
    """Seconds of bare read, bare batched inference and bare bulk load, stage by stage.

    The read yields numpy arrays (ids and patients as object arrays of str, times as
    datetime64, samples as one float32 array per file); the load turns the result columns into
    Arrow arrays for the binary COPY, without pandas."""
    started = time.perf_counter()
    parts = []
    for file in sorted(folder.rglob("*.parquet")):
        t = pq.read_table(file)
        signal = t.column("signal").combine_chunks()
        parts.append(
            {
                "record_id": t.column("record_id").to_numpy(),
                "recorded_at": t.column("recorded_at").to_numpy(),
                "patient_id": t.column("patient_id").to_numpy(),
                "signals": signal.flatten().to_numpy().reshape(len(signal), LENGTH),
            }
        )
    t_read = time.perf_counter() - started
    detector.losses(parts[0]["signals"][:1000])  # trace the compiled function once
    started = time.perf_counter()
    losses = [detector.losses(p["signals"]) for p in parts]
    t_infer = time.perf_counter() - started
    threshold = float(detector.threshold().value)
    from ecgmon.sources.parquet import source_key  # the key the pipeline writes as `source`

    t_load = _bare_load(url, parts, losses, threshold, source_key(folder))
    return {"read": t_read, "infer": t_infer, "load": t_load}


def _bare_load(url: str, parts: list[dict], losses: list, threshold: float, source: str) -> float:
    import sqlalchemy as sa

    from ecgmon.storage.batches import SCORE_COPY_TYPES
    from ecgmon.storage.pg_copy import copy_columns

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {LIMIT_TABLE}")
        create_keyed_limit_table(conn)
    started = time.perf_counter()
    with engine.begin() as conn:
        for part, loss in zip(parts, losses, strict=True):
            columns = _result_columns(part, loss, threshold, source)
            if engine.dialect.name == "postgresql":  # binary COPY, the pipeline's own encoder
                copy_columns(conn, LIMIT_TABLE, RESULT_COLUMNS, columns, SCORE_COPY_TYPES)
            else:
                columns["recorded_at"] = columns["recorded_at"].cast(pa.string())
                columns["scored_at"] = columns["scored_at"].cast(pa.string())
                marks = ", ".join("?" * len(RESULT_COLUMNS))
                values = [pa.array(columns[c]).to_pylist() for c in RESULT_COLUMNS]
                rows = list(zip(*values, strict=True))
                names = ", ".join(RESULT_COLUMNS)
                conn.exec_driver_sql(f"INSERT INTO {LIMIT_TABLE} ({names}) VALUES ({marks})", rows)
    return time.perf_counter() - started


def create_keyed_limit_table(conn: Any) -> None:
    """An empty copy of ``scores`` with its primary key, indexes, collations and defaults (no
    rows): the limit pays for the keys the pipeline has to keep. PostgreSQL: ``LIKE scores
    INCLUDING ALL``; SQLite: the stored DDL of ``scores`` and of its indexes, renamed."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"CREATE TABLE {LIMIT_TABLE} (LIKE scores INCLUDING ALL)")
        return
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'scores' AND sql IS NOT NULL"
        " ORDER BY type = 'index'"  # the table first
    ).scalars()
    for statement in ddl:
        statement = re.sub(r"\bscores\b", LIMIT_TABLE, statement)
        statement = re.sub(r"\b(ix|pk|uq)_scores", rf"\1_{LIMIT_TABLE}", statement)
        conn.exec_driver_sql(statement)


def index_shapes(conn: Any, name: str) -> list[tuple]:
    """The keys of a table, independent of its name: (unique, method, columns) of every index
    (the primary key's too), sorted."""
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            """SELECT i.indisunique, i.indisprimary, am.amname,
                      pg_get_indexdef(i.indexrelid, 0, true)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_am am ON am.oid = c.relam
               WHERE i.indrelid = %s::regclass""",
            (name,),
        ).all()
        # the definition names the index and table: keep what follows "USING"
        return sorted((u, p, m, d.split(" USING ", 1)[1]) for u, p, m, d in rows)
    indexes = conn.exec_driver_sql(f"PRAGMA index_list({name})").all()
    shapes = []
    for _seq, index, unique, origin, _partial in indexes:
        cols = conn.exec_driver_sql(f"PRAGMA index_info('{index}')").all()
        names = tuple("<expression>" if c[2] is None else c[2] for c in cols)  # UTC-day index
        shapes.append((bool(unique), origin, names))
    return sorted(shapes)


def limit_is_keyed(url: str) -> bool:
    """True when the limit's table has exactly the primary key and indexes of ``scores``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            theirs = index_shapes(conn, "scores")
            return bool(theirs) and index_shapes(conn, LIMIT_TABLE) == theirs
    finally:
        engine.dispose()


def _result_columns(part: dict, loss: np.ndarray, threshold: float, source: str) -> dict:
    """The 13 result columns of one part as Arrow arrays (constants repeated): the values the
    pipeline writes, down to its source key and run id, so both load rows of the same width."""
    n = len(loss)
    utc = pa.timestamp("us", tz="UTC")
    now = pa.scalar(datetime.now(UTC), utc)
    return {
        "record_id": pa.array(part["record_id"], pa.string()),
        "model_version": pa.repeat(pa.scalar(1, pa.int32()), n),
        "source": pa.repeat(pa.scalar(source), n),
        "patient_id": pa.array(part["patient_id"], pa.string()),
        "recorded_at": pa.array(part["recorded_at"]).cast(utc),
        "loss": pa.array(loss), "threshold_version": pa.repeat(pa.scalar(1, pa.int32()), n),
        "threshold": pa.repeat(pa.scalar(threshold), n), "score_ratio": pa.array(loss / threshold),
        "baseline": pa.repeat(pa.scalar("population"), n),
        "run_id": pa.repeat(pa.scalar(PIPELINE_RUN_ID), n),
        "is_anomaly": pa.array(loss > threshold), "scored_at": pa.repeat(now, n),
    }  # fmt: skip


def clear_results(url: str) -> None:
    """Empty the tables a score run writes (untimed), so a repeated pipeline run finds the state
    its first run found: nothing scored yet."""
    import sqlalchemy as sa

    tables = ("scores", "anomalies", "rejected_records", "ingest_watermarks", "pipeline_runs")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)}")
            else:
                for name in tables:
                    conn.exec_driver_sql(f"DELETE FROM {name}")
    finally:
        engine.dispose()


def settle(url: str) -> None:
    """Untimed, before each timed stage: the kernel writes back the files written so far, and on
    PostgreSQL the rows the previous stage loaded are vacuumed and checkpointed, so no stage pays
    for the previous one's background work (writeback, autovacuum, checkpoint)."""
    import sqlalchemy as sa

    started = time.perf_counter()
    os.sync()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
                try:
                    conn.exec_driver_sql("CHECKPOINT")
                except sa.exc.DBAPIError:  # a role without the privilege: vacuumed is enough
                    log.info("CHECKPOINT not allowed for this role; skipped")
    finally:
        engine.dispose()
    os.sync()
    log.info("settled in %.1f s (untimed)", time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    """Generate, train, measure the three paths; prints and returns the summary."""
    args = _parser().parse_args(argv)
    if args.child:
        child_main(args)
        return {}
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    from ecgmon.storage.engine import redact_url

    with tempfile.TemporaryDirectory(prefix="ecgmon-bench-") as tmp:
        folder, store = Path(tmp) / "beats", str(Path(tmp) / "models")
        log.info("generating %d beats into %s", args.rows, folder)
        normal = generate(folder, args.rows)
        log.info("training a small dense model")
        detector = prepare_model(args.database_url, store, normal)
        settle(args.database_url)
        log.info("pipeline stage (child process)")
        pipes = [run_pipeline_child(args.database_url, store, str(folder), args.batch_size)]
        if not args.skip_baselines:
            settle(args.database_url)
            log.info("naive stage")
            t_naive = naive(args.database_url, folder, detector)
            limits = []
            for repeat in range(args.repeats):
                if repeat:  # the pipeline again, on empty result tables (its first run's state)
                    clear_results(args.database_url)
                    settle(args.database_url)
                    log.info("pipeline stage, repeat %d", repeat + 1)
                    pipes.append(
                        run_pipeline_child(args.database_url, store, str(folder), args.batch_size)
                    )
                settle(args.database_url)
                log.info("limit stage, run %d", repeat + 1)
                limits.append(limit(args.database_url, folder, detector))
        pipe = min(pipes, key=lambda p: p["seconds"])
        summary = _summary(args, pipe, redact_url(args.database_url))
        log.info("pipeline: %.1f s (%.0f rows/s)", pipe["seconds"], summary["pipeline_rows_per_s"])
        if not args.skip_baselines:
            stages = min(limits, key=lambda stages: sum(stages.values()))
            summary |= _ratios(args.rows, pipe["seconds"], t_naive, stages)
            summary["limit_keyed"] = limit_is_keyed(args.database_url)
            summary["pipeline_seconds_each"] = [p["seconds"] for p in pipes]
            summary["limit_seconds_each"] = [sum(stages.values()) for stages in limits]
    print(json.dumps(summary) if args.json else summary)
    return summary


def _summary(args: argparse.Namespace, pipe: dict, database: str) -> dict:
    return {
        "rows": args.rows,
        "pipeline_seconds": pipe["seconds"],
        "pipeline_rows_per_s": args.rows / pipe["seconds"],
        "noop_run_seconds": pipe["noop_seconds"],
        "n_scored": pipe["n_scored"],
        "n_rejected": pipe["n_rejected"],
        "batch_size": pipe["batch_size"],
        "pipeline_stage_seconds": pipe["stage_seconds"],
        "pipeline_cpu": pipe["cpu"],
        "peak_rss_mb": pipe["peak_rss_mb"],
        "database": database.split(":", 1)[0],
        "database_url": database,
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
    }


def _ratios(rows: int, t_pipe: float, t_naive: float, stages: dict[str, float]) -> dict:
    t_limit = sum(stages.values())
    return {
        "naive_rows_per_s": rows / t_naive,
        "limit_rows_per_s": rows / t_limit,
        "limit_stage_seconds": stages,
        "speedup_vs_naive": t_naive / t_pipe,
        "fraction_of_limit": t_limit / t_pipe,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="pipeline and limit runs, alternated; each reported as its fastest (the machine's "
        "other load only ever slows a run down)",
    )
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main()
