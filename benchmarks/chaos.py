"""Fault injection: SIGKILLed score runs must leave the tables of an uninterrupted run; bad input
must be quarantined with a reason or refused with a clear error, never crash.

    python benchmarks/chaos.py [--kills N] [--database-url URL] [--seed S] --json

Design. The parent trains one tiny detector and registers it in two databases: the *reference*
(scored once, uninterrupted) and the *chaos* one. Killed runs are child processes
(``chaos.py --child``) that call the score path's task functions directly (start_run ->
score_new_records -> finish_run, the same code the Prefect ``score`` flow runs, without the
Prefect engine, to keep a child at ~5 s of TensorFlow import). Each child is SIGKILLed after a
random delay, mostly while it commits batches. After every kill the chaos tables are checked
against the feed: each stream's watermark equals its committed rows (never ahead, never
behind). Between kills a new day is added to the feed. Finally one child runs to completion and
the chaos tables are compared with the reference: ``lost`` rows (in the reference, not in chaos)
and ``duplicated`` rows (more than once, or not in the reference). Then each bad-input case of
:mod:`tests.badinput` is scored in this process. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ecgmon.errors import EcgmonError
from ecgmon.settings import Settings
from ecgmon.storage.engine import create_db_engine, upgrade_schema
from ecgmon.storage.runs import finish_run, start_run
from ecgmon.storage.watermarks import read_watermarks
from tests.badinput import BadCase, corpus

if TYPE_CHECKING:  # imported late: a child process starts without TensorFlow
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess
    from multiprocessing.synchronize import Event

    from ecgmon.models.autoencoder.detector import AutoencoderDetector
    from ecgmon.models.scoring import Judge

log = logging.getLogger("chaos")
LENGTH = 140


@dataclass
class CaseOutcome:
    """How one bad-input case went: handled, and why not when it was not."""

    name: str
    handled: bool
    crashed: bool
    refused: str | None
    reasons: list[str]
    detail: str


def settings_for(url: str, store: Path, batch_size: int = 100) -> Settings:
    return Settings(database_url=url, model_store=str(store), batch_size=batch_size)


# ----------------------------------------------------------------------------- bad input


def _hooked(batches: Iterator, hook: Callable[[Path], None] | None, folder: Path) -> Iterator:
    for i, batch in enumerate(batches):
        yield batch
        if i == 0 and hook is not None:
            hook(folder)


def run_bad_case(case: BadCase, settings: Settings, judge: Judge, workdir: Path) -> CaseOutcome:
    """Score one bad feed like the score flow does; never raises."""
    from ecgmon.sources import open_source
    from ecgmon.tasks.scoring import score_batches

    engine = create_db_engine(settings.database_url_plain)
    folder = workdir / case.name
    run_id = f"bad-{case.name}-{uuid.uuid4().hex[:8]}"
    crashed, refused, detail = False, None, ""
    try:
        case.write(folder, LENGTH)
        start_run(engine, run_id, "score", {"source": str(folder)}, str(folder))
        source = open_source(str(folder))
        batches = source.new_batches(read_watermarks(engine, source.key), case.batch_size)
        score_batches(
            settings, source, judge, run_id, _hooked(batches, case.after_first_batch, folder)
        )
        finish_run(engine, run_id, "completed")
    except EcgmonError as err:
        refused = str(err)
        finish_run(engine, run_id, "failed", error=refused)
    except Exception:  # a crash is what this counts
        crashed, detail = True, traceback.format_exc(limit=3)
    return _judge_case(case, engine, run_id, folder, crashed, refused, detail)


def _judge_case(
    case: BadCase,
    engine: sa.Engine,
    run_id: str,
    folder: Path,
    crashed: bool,
    refused: str | None,
    detail: str,
) -> CaseOutcome:
    with engine.connect() as conn:
        run = conn.execute(
            sa.text("select n_read, n_scored, n_rejected from pipeline_runs where run_id = :r"),
            {"r": run_id},
        ).first()
        reasons = sorted(
            r
            for (r,) in conn.execute(
                sa.text("select distinct reason from rejected_records where run_id = :r"),
                {"r": run_id},
            )
        )
        bad_rows = conn.execute(
            sa.text(
                "select count(*) from rejected_records where run_id = :r and "
                "(reason is null or reason = '' or detail is null)"
            ),
            {"r": run_id},
        ).scalar_one()
    conserved = run is not None and run.n_read == run.n_scored + run.n_rejected
    missing = sorted(set(case.expect) - set(reasons))
    handled = not crashed and (refused is not None or (conserved and not missing)) and bad_rows == 0
    if not handled and not detail:
        detail = f"conserved={conserved} run={tuple(run) if run else None} missing={missing}"
    return CaseOutcome(case.name, handled, crashed, refused, reasons, detail)


def bad_input_phase(settings: Settings, judge: Judge, workdir: Path) -> list[CaseOutcome]:
    """Every corpus case, each in its own feed folder."""
    outcomes = []
    for case in corpus():
        case_settings = settings.model_copy(update={"batch_size": case.batch_size})
        outcome = run_bad_case(case, case_settings, judge, workdir)
        log.info(
            "bad input %-28s handled=%s reasons=%s", case.name, outcome.handled, outcome.reasons
        )
        if not outcome.handled:
            log.warning("bad input %s NOT handled: %s", case.name, outcome.detail)
        outcomes.append(outcome)
    return outcomes


# ----------------------------------------------------------------------------- model set-up


def prepare_database(url: str, store: Path, detector: AutoencoderDetector) -> int:
    """Migrate ``url`` and register, calibrate and promote ``detector``; returns its version."""
    from ecgmon.models.registry.versions import add_threshold, promote, register_model

    engine = create_db_engine(url)
    upgrade_schema(engine)
    version = register_model(engine, detector, str(store))
    add_threshold(engine, version, detector.threshold(), origin="chaos")
    promote(engine, version)
    return version


def train_tiny(seed: int) -> AutoencoderDetector:
    """A dense detector trained for 3 epochs on 300 synthetic normal beats of 140 samples."""
    from ecgmon.models.autoencoder.detector import AutoencoderDetector
    from ecgmon.synthetic import synthetic_beats

    beats = synthetic_beats(400, LENGTH, 0.25, seed=seed)
    normal = beats.signals[beats.normal_mask()]
    return AutoencoderDetector.fit(normal, architecture="dense", epochs=3, seed=seed)


# ----------------------------------------------------------------------------- the feed

DAY0 = pd.Timestamp("2026-10-01", tz="UTC")


def write_feed_day(feed: Path, index: int, beats: int, seed: int) -> Path:
    """Day ``index`` of the feed: ``beats`` beats, every 37th one NaN (a rejection)."""
    from ecgmon.synthetic import synthetic_beats

    day = DAY0 + pd.Timedelta(days=index)
    signals = synthetic_beats(beats, LENGTH, 0.2, seed=seed + index).signals.astype(np.float32)
    signals[::37] = np.nan
    path = feed / f"date={day.date().isoformat()}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pd.DataFrame(
        {
            "record_id": [f"d{index:03d}-{i:05d}" for i in range(beats)],
            "recorded_at": day + pd.to_timedelta(np.arange(beats), unit="s"),
            "patient_id": f"p{index % 3}",
            "signal": list(signals),
        }
    ).to_parquet(tmp, index=False)
    tmp.rename(path)  # a day appears whole, as a feed writer should publish it
    return path


# ----------------------------------------------------------------------------- children


def child_run(kind: str, url: str, store: str, feed: str, batch_size: int, ready: Event) -> None:
    """One score or backfill run, the task functions called directly (no Prefect engine)."""
    settings = settings_for(url, Path(store), batch_size)
    from ecgmon.tasks.scoring import resolve_judge, score_new_records

    engine = create_db_engine(settings.database_url_plain)
    ref = resolve_judge(settings)
    ready.set()
    run_id = f"{kind}-{uuid.uuid4().hex[:12]}"
    start_run(engine, run_id, kind, {"source": feed}, feed)
    if kind == "score":
        score_new_records(settings, feed, None, ref, run_id)
    else:
        from datetime import date

        from ecgmon.sources import open_source
        from ecgmon.tasks.backfill import backfill_day, days_in_range

        for day in days_in_range(open_source(feed), date(2000, 1, 1), date(2100, 1, 1)):
            backfill_day(settings, feed, None, day, ref, run_id)
    finish_run(engine, run_id, "completed")


def forkserver() -> multiprocessing.context.BaseContext:
    """Children forked from one server that imported TensorFlow and the tasks once (~5 s)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["tensorflow", "keras", "ecgmon.tasks.scoring", "ecgmon.tasks.backfill"]
    )
    return context


def spawn(
    context: BaseContext, kind: str, url: str, store: Path, feed: Path, batch_size: int
) -> tuple[BaseProcess, Event]:
    ready = context.Event()
    child = context.Process(
        target=child_run, args=(kind, url, str(store), str(feed), batch_size, ready), daemon=True
    )
    child.start()
    return child, ready


def run_to_end(
    context: BaseContext, kind: str, url: str, store: Path, feed: Path, batch_size: int
) -> None:
    child, _ready = spawn(context, kind, url, store, feed, batch_size)
    child.join(timeout=600)
    if child.exitcode != 0:
        raise RuntimeError(f"{kind} child failed with exit code {child.exitcode}")


def kill_at_random(child: BaseProcess, ready: Event, rng: random.Random, window: float) -> str:
    """SIGKILL the child at a random point; returns the phase it was killed in."""
    if rng.random() < 0.15:  # during start-up (judge resolution, run record)
        time.sleep(rng.uniform(0.0, 1.0))
        phase = "startup"
    else:
        if not ready.wait(timeout=120):
            child.kill()
            raise RuntimeError(f"child did not start (exit code {child.exitcode})")
        time.sleep(rng.uniform(0.0, window))
        phase = "scoring"
    if not child.is_alive():
        phase = "finished"
    child.kill()  # SIGKILL
    child.join()
    return phase


# ----------------------------------------------------------------------------- checks


def _row_id(record_key: str) -> str:
    return record_key.rsplit(":", 1)[-1]


def snapshot(engine: sa.Engine) -> dict:
    """The tables a run writes, as comparable Python values."""
    with engine.connect() as conn:
        scores = conn.execute(
            sa.text("select record_id, model_version, loss, is_anomaly from scores")
        ).all()
        rejected = conn.execute(sa.text("select record_key, reason from rejected_records")).all()
        anomalies = conn.execute(sa.text("select record_id from anomalies")).scalars().all()
        marks = conn.execute(
            sa.text("select source, stream, position_offset, complete from ingest_watermarks")
        ).all()
        runs = conn.execute(
            sa.text("select flow, n_read, n_scored, n_rejected, status from pipeline_runs")
        ).all()
    return {
        "scores": [(r[0], int(r[1]), float(r[2]), bool(r[3])) for r in scores],
        "rejected": [(r[0], r[1]) for r in rejected],
        "anomalies": list(anomalies),
        "marks": {(r[0], r[1]): (int(r[2]), bool(r[3])) for r in marks},
        "runs": [tuple(r) for r in runs],
    }


def watermark_ahead(engine: sa.Engine, feed: Path) -> int:
    """Rows below a stream's watermark that are neither scored nor rejected (must be 0)."""
    from ecgmon.sources.parquet import source_key

    snap = snapshot(engine)
    done = {r[0] for r in snap["scores"]} | {_row_id(k) for k, _ in snap["rejected"]}
    missing = 0
    for (source, stream), (offset, _complete) in snap["marks"].items():
        if source != source_key(feed):
            continue
        ids = pd.read_parquet(feed / stream, columns=["record_id"])["record_id"][:offset]
        missing += int((~ids.isin(done)).sum())
    return missing


def compare(chaos: dict, reference: dict) -> dict[str, int]:
    """Lost, duplicated and mismatched rows of the chaos tables against the reference."""
    c_scores = {(r[0], r[1]): r for r in chaos["scores"]}
    r_scores = {(r[0], r[1]): r for r in reference["scores"]}
    c_rej, r_rej = set(chaos["rejected"]), set(reference["rejected"])
    scored_ids = {k[0] for k in c_scores}
    both = sum(1 for key, _ in c_rej if _row_id(key) in scored_ids)
    lost = len(r_scores.keys() - c_scores.keys()) + len(r_rej - c_rej)
    lost += len(set(reference["anomalies"]) - set(chaos["anomalies"]))
    duplicated = (
        len(chaos["scores"]) - len(c_scores)
        + len(c_scores.keys() - r_scores.keys())
        + len(chaos["rejected"]) - len(c_rej)
        + len(c_rej - r_rej)
        + both
        + len(chaos["anomalies"]) - len(set(chaos["anomalies"]))
        + len(set(chaos["anomalies"]) - set(reference["anomalies"]))
    )  # fmt: skip
    mismatched = sum(
        1
        for key in c_scores.keys() & r_scores.keys()
        if c_scores[key][3] != r_scores[key][3]
        or not np.isclose(c_scores[key][2], r_scores[key][2], rtol=1e-4, atol=1e-7)
    )
    mismatched += sum(1 for k, v in reference["marks"].items() if chaos["marks"].get(k) != v)
    unconserved = sum(1 for r in chaos["runs"] if r[1] != r[2] + r[3])
    return {
        "lost": lost,
        "duplicated": duplicated,
        "mismatched": mismatched,
        "runs_not_conserved": unconserved,
        "rows": len(r_scores) + len(r_rej),
    }


# ----------------------------------------------------------------------------- main


def database_urls(base: str | None, tmp: Path) -> tuple[list[str], callable]:
    """(chaos URL, reference URL, bad-input URL) and a clean-up: SQLite files or PG schemas."""
    if base is None or base.startswith("sqlite"):
        return [f"sqlite:///{tmp / f'{n}.db'}" for n in ("chaos", "ref", "bad")], lambda: None
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    schemas = [f"chaos_{n}_{uuid.uuid4().hex[:8]}" for n in ("chaos", "ref", "bad")]
    with admin.connect() as conn:
        for schema in schemas:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"

    def drop() -> None:
        with admin.connect() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')

    return [f"{base}{sep}options=-csearch_path%3D{s}" for s in schemas], drop


def kill_phase(args: argparse.Namespace, urls: list[str], tmp: Path, feed: Path) -> dict:
    """Kill score and backfill children at random, then finish; compare with the reference."""
    rng = random.Random(args.seed)
    context = forkserver()
    engine = create_db_engine(urls[0])
    store = tmp / "store-chaos"
    day, kills, attempts, ahead, window = args.days, 0, 0, 0, 2.0
    phases: dict[str, int] = {}
    while kills < args.kills and attempts < 3 * args.kills:
        attempts += 1
        kind = "backfill" if rng.random() < args.backfill_share else "score"
        child, ready = spawn(context, kind, urls[0], store, feed, args.batch_size)
        phase = kill_at_random(child, ready, rng, window)
        phases[f"{kind}_{phase}"] = phases.get(f"{kind}_{phase}", 0) + 1
        window = window * 0.7 if phase == "finished" else min(window * 1.15, 8.0)
        kills += phase != "finished"
        ahead += watermark_ahead(engine, feed)
        log.info(
            "attempt %d: %s %s (kills %d, window %.1f s)", attempts, kind, phase, kills, window
        )
        write_feed_day(feed, day, args.beats_per_day, args.seed)
        day += 1
    for url, store_name in ((urls[0], "store-chaos"), (urls[1], "store-ref")):
        run_to_end(context, "score", url, tmp / store_name, feed, args.batch_size)
        run_to_end(context, "backfill", url, tmp / store_name, feed, args.batch_size)
    ahead += watermark_ahead(engine, feed)
    result = compare(snapshot(engine), snapshot(create_db_engine(urls[1])))
    return {"kills": kills, "kill_attempts": attempts, "kill_phases": phases,
            "watermark_ahead": ahead, "days": day, **result}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--database-url", help="PostgreSQL base URL (default: SQLite files)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=3, help="days in the feed before the kills")
    parser.add_argument("--beats-per-day", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--backfill-share", type=float, default=0.3)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="ecgmon-chaos-"))
    urls, cleanup = database_urls(args.database_url, tmp)
    try:
        detector = train_tiny(args.seed)
        for url, name in zip(urls, ("store-chaos", "store-ref", "store-bad"), strict=True):
            prepare_database(url, tmp / name, detector)
        feed = tmp / "feed"
        for index in range(args.days):
            write_feed_day(feed, index, args.beats_per_day, args.seed)
        kills = kill_phase(args, urls, tmp, feed)
        from ecgmon.tasks.scoring import load_judge, resolve_judge

        bad_settings = settings_for(urls[2], tmp / "store-bad")
        judge = load_judge(bad_settings, resolve_judge(bad_settings))
        outcomes = bad_input_phase(bad_settings, judge, tmp / "bad")
    finally:
        cleanup()
    result = {
        **kills,
        "bad_input_cases": len(outcomes),
        "bad_inputs_handled": sum(o.handled for o in outcomes),
        "bad_inputs_refused": sum(o.refused is not None for o in outcomes),
        "crashes": sum(o.crashed for o in outcomes),
        "not_handled": [o.name for o in outcomes if not o.handled],
        "backend": make_url(urls[0]).get_backend_name(),
        "harness": "forkserver children (TF, tasks preloaded) calling the task functions directly",
        "seconds": round(time.perf_counter() - started, 1),
    }
    if not args.json:
        print(f"kills {result['kills']}, lost {result['lost']}, duplicated {result['duplicated']}, "
              f"bad inputs handled {result['bad_inputs_handled']}/{result['bad_input_cases']}, "
              f"crashes {result['crashes']}")  # fmt: skip
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
