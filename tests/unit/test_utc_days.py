"""Analysts' days are UTC days, whatever the session's time zone, and a one-day filter uses an
index (EXPLAIN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine, run_query
from ecgmon.tasks.scoring import resolve_judge, score_new_records

ZONES = ("UTC", "America/New_York", "Asia/Tokyo")


@pytest.fixture
def one_utc_day(ecgmon_env, champion, synthetic_set, tmp_path: Path) -> sa.Engine:
    """40 beats recorded at 02:30 and 40 at 23:30 UTC on 2026-11-12: one UTC day, which a New
    York session would split across two local days and a Tokyo session across two others."""
    signals = synthetic_set.signals[:80].astype(np.float32)
    times = [pd.Timestamp("2026-11-12T02:30:00Z")] * 40 + [
        pd.Timestamp("2026-11-12T23:30:00Z")
    ] * 40
    path = tmp_path / "in" / "date=2026-11-12" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame(
        {
            "record_id": [f"b{i:03d}" for i in range(80)],
            "recorded_at": pd.to_datetime(times, utc=True),
            "patient_id": "p1",
            "signal": list(signals),
        }
    ).to_parquet(path, index=False)
    settings = ecgmon_env
    score_new_records(settings, str(tmp_path / "in"), None, resolve_judge(settings), "run-days")
    return create_db_engine(settings.database_url_plain)


def _days(conn: sa.Connection) -> list[tuple[str, int]]:
    query = "select day, sum(beats_scored) from v_daily_anomaly_rate group by day order by day"
    return [(str(day)[:10], int(n)) for day, n in conn.exec_driver_sql(query)]


def test_daily_rate_gives_utc_days_under_three_session_time_zones(one_utc_day) -> None:
    engine = one_utc_day
    for zone in ZONES:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET TIME ZONE '{zone}'")
            assert _days(conn) == [("2026-11-12", 80)], zone
            drift_days = conn.exec_driver_sql("select count(*) from v_drift").scalar_one()
            assert drift_days == 0  # no drift measured in this run: the view still compiles
            conn.rollback()
    last_day = run_query(engine, "top_flagged_beats_last_day.sql")
    if len(last_day):
        assert {str(t)[:10] for t in pd.to_datetime(last_day["recorded_at"], utc=True)} == {
            "2026-11-12"
        }


def test_a_one_day_filter_uses_the_utc_day_index(one_utc_day) -> None:
    """The plan of a one-day filter on the view names the index of migration 0006."""
    engine = one_utc_day
    query = "select * from v_daily_anomaly_rate where day = '2026-11-12'"
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # a few rows: force the choice
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {query}"))
        else:
            plan = "\n".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
        conn.rollback()
    assert "ix_scores_utc_day" in plan, plan


def test_the_utc_day_migration_goes_down_and_up(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from ecgmon.resources import migrations_dir
    from ecgmon.storage.engine import upgrade_schema

    engine = create_db_engine(db_url)
    upgrade_schema(engine)

    def indexes() -> set[str]:  # the inspector leaves expression indexes out on SQLite
        query = (
            "select indexname from pg_indexes where tablename = 'scores' "
            "and schemaname = current_schema()"
            if engine.dialect.name == "postgresql"
            else "select name from sqlite_master where type = 'index' and tbl_name = 'scores'"
        )
        with engine.connect() as conn:
            return set(conn.exec_driver_sql(query).scalars())

    assert "ix_scores_utc_day" in indexes()
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    assert "ix_scores_utc_day" not in indexes()
    upgrade_schema(engine)
    assert "ix_scores_utc_day" in indexes()
