"""Database source: keyset pages, ties, JSON signals, look-back, safe names, no password in keys."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ecgmon.errors import SourceNotFoundError
from ecgmon.sources import open_source
from ecgmon.sources.table import DatabaseSource, db_source_key

T0 = pd.Timestamp("2026-11-05", tz="UTC")


def _wide_table(url: str, n: int, length: int = 4, name: str = "ecg_records", **kw) -> None:
    seconds = kw.get("seconds", np.arange(n) * 60)
    df = pd.DataFrame(
        {
            "record_id": [f"db-{i:05d}" for i in range(n)],
            "recorded_at": T0 + pd.to_timedelta(seconds, unit="s"),
            "patient_id": "p1",
        }
    )
    for j in range(length):
        df[f"s{j:03d}"] = np.arange(n, dtype=float) + j / 10
    df.to_sql(name, sa.create_engine(url), index=False, if_exists=kw.get("if_exists", "fail"))


def _drain(source: DatabaseSource, marks: dict, size: int) -> tuple[list[str], dict]:
    """All ids read past ``marks``; the marks as they would be committed after each page."""
    ids: list[str] = []
    for raw in source.new_batches(marks, size):
        ids += [str(v) for v in raw.record_id]
        p = raw.position
        marks = {p.stream: {"position_time": p.time, "position_key": p.key}}
    return ids, marks


def test_pages_in_keyset_order_and_resume_from_the_watermark(db_url: str) -> None:
    _wide_table(db_url, 25)
    source = DatabaseSource(db_url, "ecg_records")
    batches = list(source.new_batches({}, 10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0].signals.shape == (10, 4)
    assert batches[1].signals[0, 1] == pytest.approx(10.1)
    assert batches[-1].position.key == "db-00024" and batches[-1].position.complete
    assert batches[0].position.time == (T0 + pd.Timedelta(minutes=9)).to_pydatetime()
    ids, marks = _drain(source, {}, 10)
    assert len(set(ids)) == 25
    assert _drain(source, marks, 10)[0] == []


def test_rows_sharing_a_timestamp_are_read_once_across_pages(db_url: str) -> None:
    _wide_table(db_url, 23, seconds=np.repeat([0, 60, 120], [9, 9, 5]))
    ids, marks = _drain(DatabaseSource(db_url, "ecg_records"), {}, 4)
    assert sorted(ids) == [f"db-{i:05d}" for i in range(23)]


def test_json_signal_column_and_bad_rows_reach_validation(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    pd.DataFrame(
        {
            "record_id": ["a", "b", "c"],
            "recorded_at": [T0, T0, T0 + pd.Timedelta(seconds=1)],
            "signal": [json.dumps([1.0, 2.0, 3.0]), "not json", None],
        }
    ).to_sql("beats", engine, index=False)
    (raw,) = list(DatabaseSource(db_url, "beats").new_batches({}, 10))
    assert raw.signals[0] == [1.0, 2.0, 3.0] and raw.signals[1] == "not json"
    assert raw.signals[2] is None
    assert raw.patient_id.tolist() == [None, None, None]


def test_lookback_rereads_late_rows_and_never_moves_the_watermark_back(db_url: str) -> None:
    _wide_table(db_url, 10)
    source = DatabaseSource(db_url, "ecg_records", lookback_seconds=150)
    _, marks = _drain(source, {}, 100)
    late = pd.DataFrame(
        {
            "record_id": ["late-1"],
            "recorded_at": [T0 + pd.Timedelta(minutes=8)],
            "patient_id": ["p1"],
            **{f"s{j:03d}": [0.0] for j in range(4)},
        }
    )
    late.to_sql("ecg_records", sa.create_engine(db_url), index=False, if_exists="append")
    ids, again = _drain(source, marks, 100)
    assert "late-1" in ids and "db-00007" in ids and "db-00006" not in ids
    assert again["ecg_records"]["position_key"] == "db-00009"
    assert _drain(DatabaseSource(db_url, "ecg_records"), marks, 100)[0] == []


def test_table_names_are_never_pasted_into_sql(db_url: str) -> None:
    _wide_table(db_url, 3)
    with pytest.raises(SourceNotFoundError, match="no table"):
        DatabaseSource(db_url, "ecg_records; DROP TABLE ecg_records")
    assert len(list(DatabaseSource(db_url, "ecg_records").new_batches({}, 10))[0]) == 3


def test_keys_and_errors_hide_the_password() -> None:
    url = "postgresql+psycopg://ops:s3cret@127.0.0.1:1/nowhere"
    assert "s3cret" not in db_source_key(url, "ecg_records")
    with pytest.raises(SourceNotFoundError) as caught:
        DatabaseSource(url, "ecg_records")
    assert "s3cret" not in str(caught.value) and caught.value.__cause__ is None


def test_open_source_dispatches_tables_and_env_urls(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    _wide_table(url, 2)
    monkeypatch.setenv("ECG_SOURCE_URL", url)
    assert isinstance(open_source("env:ECG_SOURCE_URL", "ecg_records"), DatabaseSource)
    with pytest.raises(SourceNotFoundError, match="needs a table"):
        open_source(url)


@pytest.mark.parametrize(
    ("columns", "fragment"),
    [
        (["s0", "s1", "s3"], "index 2 is missing"),
        (["s0", "x1"], "several prefixes"),
        (["s0"], "at least 2"),
        (["value"], "neither a 'signal' column"),
    ],
)
def test_sample_columns_follow_the_parquet_layout_rules(
    tmp_path, columns: list[str], fragment: str
) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    df = pd.DataFrame({"record_id": ["a"], "recorded_at": [T0], **{c: [1.0] for c in columns}})
    df.to_sql("ecg_records", sa.create_engine(url), index=False)
    with pytest.raises(SourceNotFoundError, match=fragment):
        DatabaseSource(url, "ecg_records")
