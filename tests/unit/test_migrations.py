"""Migrations run up, down one step and up again; record ids sort by code point on both
databases (0003) and still join with an analyst's own text columns."""

import sqlalchemy as sa

from ecgmon.resources import migrations_dir
from ecgmon.storage.engine import create_db_engine, current_revision, upgrade_schema, view_files


def _downgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _collations(engine: sa.Engine) -> set[str | None]:
    query = """SELECT collation_name FROM information_schema.columns
        WHERE column_name = 'record_id' AND table_name IN ('scores', 'anomalies')
        AND table_schema = current_schema()"""
    with engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql(query)}


def _insert_scores(engine: sa.Engine, ids: list[str]) -> None:
    rows = [
        {"record_id": i, "model_version": 1, "source": "s", "recorded_at": "2026-01-01 00:00:00",
         "loss": 0.1, "threshold_version": 1, "threshold": 0.2, "score_ratio": 0.5,
         "baseline": "population", "run_id": "r", "is_anomaly": False,
         "scored_at": "2026-01-01 00:00:00"}
        for i in ids
    ]  # fmt: skip
    columns = ", ".join(rows[0])
    marks = ", ".join(f":{c}" for c in rows[0])
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO scores ({columns}) VALUES ({marks})"), rows)


def _primary_key(engine: sa.Engine) -> list[str]:
    return sa.inspect(engine).get_pk_constraint("scores")["constrained_columns"]


def test_down_one_step_and_up_again(db_url: str) -> None:
    engine = create_db_engine(db_url)
    head = upgrade_schema(engine)
    _downgrade(engine, "0002")
    assert current_revision(engine) == "0002"
    if engine.dialect.name == "postgresql":
        assert _collations(engine) == {None}  # the database's default again
    assert _primary_key(engine) == ["record_id", "model_version"]
    assert upgrade_schema(engine) == head
    if engine.dialect.name == "postgresql":
        assert _collations(engine) == {"C"}
    assert _primary_key(engine) == ["record_id", "model_version", "source"]  # 0005
    with engine.connect() as conn:
        for view in view_files():  # dropped for the ALTER, recreated by upgrade_schema
            conn.exec_driver_sql(f"SELECT * FROM {view.stem} WHERE 1 = 0")


def test_record_ids_sort_by_code_point_and_join_with_default_collation(db_url: str) -> None:
    engine = create_db_engine(db_url)
    upgrade_schema(engine)
    ids = ["beat-10", "Beat-2", "beat-9", "bëat-1", "beat-1"]
    _insert_scores(engine, ids)
    with engine.begin() as conn:
        ordered = [r[0] for r in conn.exec_driver_sql("SELECT record_id FROM scores ORDER BY 1")]
        assert ordered == sorted(ids, key=lambda s: s.encode())
        conn.exec_driver_sql("CREATE TABLE my_beats (beat varchar(64))")  # an analyst's table
        conn.exec_driver_sql("INSERT INTO my_beats VALUES ('beat-9'), ('beat-10'), ('other')")
        joined = conn.exec_driver_sql(
            "SELECT s.record_id FROM scores s JOIN my_beats m ON m.beat = s.record_id"
            " WHERE m.beat < 'c' ORDER BY s.record_id"
        )
        assert [r[0] for r in joined] == ["beat-10", "beat-9"]


def test_0007_adds_and_drops_the_calibration_column(db_url: str) -> None:
    engine = create_db_engine(db_url)
    head = upgrade_schema(engine)
    assert head == "0007"
    assert "calibration" in {c["name"] for c in sa.inspect(engine).get_columns("model_versions")}
    _downgrade(engine, "0006")
    assert "calibration" not in {
        c["name"] for c in sa.inspect(engine).get_columns("model_versions")
    }
    assert upgrade_schema(engine) == head
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("model_versions")}
    assert "ux_model_versions_one_champion" in indexes
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM v_model_history WHERE 1 = 0")
