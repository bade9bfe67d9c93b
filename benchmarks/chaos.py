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
import itertools
import json
import logging
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import pandas as pd
import psutil
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
    from ecgmon.storage.batches import BatchWrite
    from tests.live_prefect import LivePrefect

log = logging.getLogger("chaos")
T = TypeVar("T")
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
        bad_rows, payload = conn.execute(
            sa.text(
                "select sum(case when reason is null or reason = '' or detail is null"
                " then 1 else 0 end), max(length(raw_payload))"
                " from rejected_records where run_id = :r"
            ),
            {"r": run_id},
        ).one()
    problems = [] if not crashed else ["crashed"]
    if not crashed:
        problems = outcome_problems(case, run, reasons, refused, int(payload or 0))
    problems += [f"{bad_rows} rejections without reason or detail"] if bad_rows else []
    handled = not problems
    if not handled and not detail:
        detail = f"{'; '.join(problems)} (run={tuple(run) if run else None}, refused={refused})"
    return CaseOutcome(case.name, handled, crashed, refused, reasons, detail)


def outcome_problems(
    case: BadCase, run: sa.Row | None, reasons: list[str], refused: str | None, payload: int
) -> list[str]:
    """How a run's result differs from the case's expected outcome (empty when it matches)."""
    if case.outcome == "refused":
        return [] if refused is not None else ["expected a named error, the run completed"]
    if refused is not None or run is None:
        return [f"expected {case.outcome}, the run was refused: {refused}"]
    problems = [] if run.n_read == run.n_scored + run.n_rejected else ["counts not conserved"]
    if case.outcome == "nothing" and run.n_read:
        problems.append(f"expected nothing to read, read {run.n_read}")
    if case.outcome == "scored" and (run.n_rejected or not run.n_scored):
        problems.append(f"expected every beat scored, {run.n_rejected} rejected ({reasons})")
    missing = sorted(set(case.expect) - set(reasons))
    problems += [f"reasons {missing} not recorded"] if missing else []
    if case.n_scored is not None and run.n_scored != case.n_scored:
        problems.append(f"scored {run.n_scored}, expected {case.n_scored}")
    if case.max_payload_bytes is not None and payload > case.max_payload_bytes:
        problems.append(f"a raw payload of {payload} bytes (bound {case.max_payload_bytes})")
    return problems


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


def child_run(
    kind: str,
    url: str,
    store: str,
    feed: str,
    batch_size: int,
    ready: Event,
    pause_at: int | None = None,
    marker: str | None = None,
) -> None:
    """One score or backfill run, the task functions called directly (no Prefect engine).

    With ``pause_at``, the run's batch number ``pause_at`` (0-based) stops inside its commit:
    the writer's test-only hook records the batch in ``marker`` and sleeps, so the parent's
    SIGKILL provably lands between the batch's writes and its commit.
    """
    settings = settings_for(url, Path(store), batch_size)
    from ecgmon.tasks.scoring import resolve_judge, score_new_records

    if pause_at is not None and marker is not None:
        from ecgmon.storage import batches

        batches.before_commit_hook = pause_inside_commit(pause_at, Path(marker))
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


def pause_inside_commit(pause_at: int, marker: Path) -> Callable[[BatchWrite], None]:
    """The writer hook of a child: at batch ``pause_at``, record the batch and sleep."""
    from ecgmon.storage.pg_copy import as_arrow

    seen = itertools.count()

    def hook(write: BatchWrite) -> None:
        if next(seen) != pause_at:
            return
        ids = as_arrow(write.scored.beats.record_id).to_pylist() if write.scored else []
        batch = {
            "run_id": write.run_id,
            "record_ids": ids,
            "rejected_keys": [r.record_key for r in write.rejections],
            "stream": write.position.stream,
            "offset": write.position.offset,
        }
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(batch))
        tmp.rename(marker)  # appears whole, then the writer waits for its SIGKILL
        time.sleep(600)

    return hook


def forkserver() -> multiprocessing.context.BaseContext:
    """Children forked from one server that imported TensorFlow and the tasks once (~5 s)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["tensorflow", "keras", "ecgmon.tasks.scoring", "ecgmon.tasks.backfill"]
    )
    return context


@dataclass(frozen=True)
class Target:
    """Where children run: the database, its model store, the feed, the batch size."""

    url: str
    store: Path
    feed: Path
    batch_size: int


def spawn(
    context: BaseContext,
    kind: str,
    target: Target,
    pause_at: int | None = None,
    marker: Path | None = None,
) -> tuple[BaseProcess, Event]:
    ready = context.Event()
    args = (kind, target.url, str(target.store), str(target.feed), target.batch_size, ready)
    child = context.Process(
        target=child_run, args=(*args, pause_at, str(marker) if marker else None), daemon=True
    )
    child.start()
    return child, ready


def run_to_end(context: BaseContext, kind: str, target: Target) -> None:
    child, _ready = spawn(context, kind, target)
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


def kill_inside_commit(child: BaseProcess, marker: Path, timeout: float = 180) -> dict | None:
    """SIGKILL the child once its writer waits inside a commit (the marker is written); returns
    the batch it was committing, or None when the run ended before reaching that batch."""
    deadline = time.monotonic() + timeout
    while not marker.exists() and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    inside = marker.exists() and child.is_alive()
    child.kill()  # SIGKILL
    child.join()
    return json.loads(marker.read_text()) if inside else None


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


def visible_after_kill(engine: sa.Engine, batch: dict, feed: Path) -> int:
    """Rows, rejections and watermark of a batch killed inside its commit that are visible
    afterwards (must be 0: the transaction rolled back whole)."""
    from ecgmon.sources.parquet import source_key

    ids, keys = batch["record_ids"], batch["rejected_keys"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select count(*) from scores where record_id in :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": ids or [""]},
        ).scalar_one()
        rejected = conn.execute(
            sa.text("select count(*) from rejected_records where record_key in :k").bindparams(
                sa.bindparam("k", expanding=True)
            ),
            {"k": keys or [""]},
        ).scalar_one()
        mark = conn.execute(
            sa.text(
                "select position_offset from ingest_watermarks where source = :s and stream = :t"
            ),
            {"s": source_key(feed), "t": batch["stream"]},
        ).scalar()
    return rows + rejected + int(mark is not None and mark >= batch["offset"])


def double_processed(engine: sa.Engine) -> dict[str, int]:
    """Committed ``n_scored`` summed over every run minus the distinct scored rows: beats a run
    scored although an earlier run had committed them already (0 when each is scored once)."""
    with engine.connect() as conn:
        committed = conn.execute(
            sa.text("select coalesce(sum(n_scored), 0) from pipeline_runs")
        ).scalar_one()
        distinct = conn.execute(
            sa.text("select count(*) from (select distinct record_id, model_version from scores) d")
        ).scalar_one()
    return {
        "double_processed": int(committed) - int(distinct),
        "committed_n_scored": int(committed),
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


def kill_phase(args: argparse.Namespace, target: Target, context: BaseContext) -> dict:
    """SIGKILL score (and, with --backfill-share, backfill) children: at random points, and at
    a random batch inside its commit; a new feed day after each attempt."""
    rng = random.Random(args.seed)
    engine = create_db_engine(target.url)
    kills, attempts, ahead, window, inside, visible = 0, 0, 0, 2.0, 0, 0
    phases: dict[str, int] = {}
    while (kills < args.kills or inside < args.commit_kills) and attempts < 3 * args.kills:
        attempts += 1
        if inside < args.commit_kills and attempts % 3 == 1:
            marker = target.store.parent / f"inside-{attempts}.json"
            child, _ready = spawn(context, "score", target, rng.randrange(6), marker)
            batch = kill_inside_commit(child, marker)
            phase = "score_inside_commit" if batch else "score_finished"
            if batch is not None:
                inside += 1
                visible += visible_after_kill(engine, batch, target.feed)
        else:
            kind = "backfill" if rng.random() < args.backfill_share else "score"
            child, ready = spawn(context, kind, target)
            phase = f"{kind}_{kill_at_random(child, ready, rng, window)}"
            window = window * 0.7 if phase.endswith("finished") else min(window * 1.15, 8.0)
        phases[phase] = phases.get(phase, 0) + 1
        kills += not phase.endswith("finished")
        ahead += watermark_ahead(engine, target.feed)
        log.info("attempt %d: %s (kills %d, inside commit %d)", attempts, phase, kills, inside)
        write_feed_day(target.feed, args.days + attempts - 1, args.beats_per_day, args.seed)
    return {"kills": kills, "kill_attempts": attempts, "kill_phases": phases,
            "kills_inside_commit": inside, "inside_commit_visible": visible,
            "watermark_ahead": ahead, "days": args.days + attempts}  # fmt: skip


def engine_phase(args: argparse.Namespace, target: Target, tmp: Path, first_day: int) -> dict:
    """SIGKILL flow-run processes that a real Prefect worker started from the ``score``
    deployment of the packaged prefect.yaml, then let the next deployment run finish: that run
    is the one ordinary score run after all the kills."""
    from tests.live_prefect import LivePrefect

    rng = random.Random(args.seed + 1)
    env = {
        **os.environ,
        "ECGMON_DATABASE_URL": target.url,
        "ECGMON_MODEL_STORE": str(target.store),
        "ECGMON_BATCH_SIZE": str(target.batch_size),
        "ECGMON_PROJECT_DIR": str(tmp),
    }
    engine = create_db_engine(target.url)
    kills, states, day = 0, [], first_day
    with LivePrefect(tmp / "prefect-home", args.prefect_port, poll_seconds=1.0) as live:
        live.create_pool()
        live.deploy(["score"], env=env, project_dir=tmp)
        live.start_worker(env=env)
        log.info("Prefect server on port %d, worker and score deployment up", args.prefect_port)
        for _ in range(args.engine_kills):
            for _ in range(3):  # enough new beats that the kill lands while batches commit
                write_feed_day(target.feed, day, args.beats_per_day, args.seed)
                day += 1
            flow_run = patient(live.run_deployment, "score/score", {"source": str(target.feed)})
            killed = kill_flow_run(live, engine, flow_run, rng)
            state = wait_final(live, flow_run, timeout=300)
            states.append(state)
            kills += killed and state != "COMPLETED"
            log.info("engine kill: killed=%s, flow run state %s", killed, state)
        write_feed_day(target.feed, day, args.beats_per_day, args.seed)
        final = patient(live.run_deployment, "score/score", {"source": str(target.feed)})
        final_state = wait_final(live, final, timeout=900)
        if final_state != "COMPLETED":
            raise RuntimeError(f"the deployment run after the kills ended {final_state}")
    log.info("next deployment run after the engine kills: %s", final_state)
    return {"engine_kills": kills, "engine_killed_states": states,
            "engine_next_run_state": final_state, "days": day + 1}  # fmt: skip


def kill_flow_run(live: LivePrefect, engine: sa.Engine, flow_run: str, rng: random.Random) -> bool:
    """SIGKILL the flow run's engine process once its first batch committed (plus a random
    0-0.5 s); False when the run ended first."""
    from tests.live_prefect import FINAL_STATES, flow_run_pid

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        pid = flow_run_pid(flow_run)
        if pid is not None and _committed_reads(engine, flow_run) > 0:
            time.sleep(rng.uniform(0.0, 0.5))
            try:
                process = psutil.Process(pid)
                process.kill()  # SIGKILL
            except psutil.NoSuchProcess:
                return False
            try:
                process.wait(timeout=30)
            except psutil.TimeoutExpired:
                return False
            return True
        if patient(live.state, flow_run) in FINAL_STATES:
            return False
        time.sleep(0.05)
    return False


def patient(call: Callable[..., T], *args: object, attempts: int = 12) -> T:
    """``call(*args)`` retried while the Prefect server is too busy to answer (a 503 or a
    dropped connection on a loaded machine), waiting 1, 2, 4 ... up to 10 s between tries."""
    for attempt in range(attempts):
        try:
            return call(*args)
        except (httpx.TransportError, httpx.HTTPStatusError, RuntimeError) as err:
            busy = isinstance(err, httpx.TransportError) or " 503" in str(err) or "503 " in str(err)
            if not busy or attempt == attempts - 1:
                raise
            log.info("Prefect server busy (%s); retrying", str(err)[:80])
            time.sleep(min(2**attempt, 10))
    raise AssertionError("unreachable")


def wait_final(live: LivePrefect, flow_run: str, timeout: float) -> str | None:
    """The flow run's final state type (None if it has none after ``timeout`` s)."""
    from tests.live_prefect import FINAL_STATES

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = patient(live.state, flow_run)
        if state in FINAL_STATES:
            return state
        time.sleep(0.5)
    return None


def _committed_reads(engine: sa.Engine, run_id: str) -> int:
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("select n_read from pipeline_runs where run_id = :r"), {"r": run_id}
        ).scalar()
    return int(n or 0)


def measure(context: BaseContext, target: Target, ref: Target) -> dict:
    """After the one ordinary score run: the reference gets one uninterrupted score run over the
    same feed; loss and double processing are measured before anything could repair them; then
    a full backfill of the chaos database (the repair) and the comparison again."""
    engine = create_db_engine(target.url)
    run_to_end(context, "score", ref)
    reference = snapshot(create_db_engine(ref.url))
    before = compare(snapshot(engine), reference)
    doubled = double_processed(engine)
    ahead = watermark_ahead(engine, target.feed)
    run_to_end(context, "backfill", target)
    after = compare(snapshot(engine), reference)
    return {
        "lost_before_repair": before["lost"],
        "duplicated_before_repair": before["duplicated"],
        "mismatched_before_repair": before["mismatched"],
        **doubled,
        **after,
        "watermark_ahead_final": ahead,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=21, help="SIGKILLs of forked children")
    parser.add_argument("--commit-kills", type=int, default=7, help="of them inside a commit")
    parser.add_argument("--engine-kills", type=int, default=3, help="of Prefect flow runs")
    parser.add_argument("--prefect-port", type=int, default=4311)
    parser.add_argument("--database-url", help="PostgreSQL base URL (default: SQLite files)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=3, help="days in the feed before the kills")
    parser.add_argument("--beats-per-day", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--backfill-share", type=float, default=0.0)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="ecgmon-chaos-"))
    urls, cleanup = database_urls(args.database_url, tmp)
    feed = tmp / "var" / "incoming"
    target = Target(urls[0], tmp / "store-chaos", feed, args.batch_size)
    try:
        detector = train_tiny(args.seed)
        for url, name in zip(urls, ("store-chaos", "store-ref", "store-bad"), strict=True):
            prepare_database(url, tmp / name, detector)
        for index in range(args.days):
            write_feed_day(feed, index, args.beats_per_day, args.seed)
        context = forkserver()
        kills = kill_phase(args, target, context)
        try:
            engine = engine_phase(args, target, tmp, kills["days"])
        except Exception as err:  # reported: the engine kills are then 0 and the bar fails
            log.exception("engine phase failed; one ordinary score run instead")
            engine = {"engine_kills": 0, "engine_error": str(err)[-500:]}
            run_to_end(context, "score", target)
        measured = measure(
            context, target, Target(urls[1], tmp / "store-ref", feed, args.batch_size)
        )
        from ecgmon.tasks.scoring import load_judge, resolve_judge

        bad_settings = settings_for(urls[2], tmp / "store-bad")
        judge = load_judge(bad_settings, resolve_judge(bad_settings))
        outcomes = bad_input_phase(bad_settings, judge, tmp / "bad")
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        **kills,
        **engine,
        "child_kills": kills["kills"],
        "kills": kills["kills"] + engine["engine_kills"],
        **measured,
        "bad_input_cases": len(outcomes),
        "bad_inputs_handled": sum(o.handled for o in outcomes),
        "bad_inputs_refused": sum(o.refused is not None for o in outcomes),
        "crashes": sum(o.crashed for o in outcomes),
        "not_handled": [o.name for o in outcomes if not o.handled],
        "backend": make_url(urls[0]).get_backend_name(),
        "harness": "forkserver children calling the task functions (random and inside-commit "
        "kills); a local Prefect server, process worker and the score deployment (engine kills)",
        "seconds": round(time.perf_counter() - started, 1),
    }
    if not args.json:
        print(f"kills {result['kills']} ({result['kills_inside_commit']} inside a commit, "
              f"{result['engine_kills']} of Prefect flow runs), lost before repair "
              f"{result['lost_before_repair']}, double processed {result['double_processed']}, "
              f"bad inputs handled {result['bad_inputs_handled']}/{result['bad_input_cases']}, "
              f"crashes {result['crashes']}")  # fmt: skip
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
