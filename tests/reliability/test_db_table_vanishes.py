"""A source table dropped between two pages: a clear ecgmon error, pages before it stay readable."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ecgmon.errors import SourceNotFoundError
from ecgmon.sources.table import DatabaseSource


def test_table_dropped_mid_read_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    engine = sa.create_engine(url)
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i:03d}" for i in range(30)],
            "recorded_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(range(30), "s"),
        }
    )
    for j in range(8):
        frame[f"s{j:03d}"] = np.linspace(0, 1, 30) + j
    frame.to_sql("ecg_records", engine, index=False)

    pages = DatabaseSource(url, "ecg_records").new_batches({}, batch_size=10)
    first = next(pages)
    assert list(first.record_id[:2]) == ["r000", "r001"] and len(first) == 10
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE ecg_records")
    with pytest.raises(SourceNotFoundError, match="cannot read"):
        next(pages)
    engine.dispose()
