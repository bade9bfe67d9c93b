"""A corpus of bad Parquet feeds, shared by the chaos benchmark and the reliability tests.

Each :class:`BadCase` writes one feed folder (a few beats of ``length`` samples, or a
realistic 50,000-beat batch for the size attacks) that is wrong in one way, and states the one
outcome a correct pipeline must give it (``outcome``):

- ``quarantined``: the run completes, conserves its counts (read = scored + rejected), records
  every reason in ``expect`` and scores ``n_scored`` beats (when given);
- ``scored``: the run completes and scores every beat it reads (``n_scored`` when given),
  rejecting none;
- ``nothing``: the run completes having read nothing;
- ``refused``: the run stops with a named :class:`EcgmonError` (a clear message, no traceback).

``max_payload_bytes``, when set, bounds the stored raw payload of every rejection (a size attack
must not flood the quarantine). Any other exception is a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

N_ROWS = 6
DAY = "2026-11-01"
OUTCOMES = ("quarantined", "scored", "nothing", "refused")
BIG_BATCH = 50_000  # the default batch size: size attacks come at realistic scale
#: Bytes a rejection's stored raw payload may take in a size attack (a 140-sample row takes ~3 kB
#: as JSON; an unbounded 1,000,000-sample row took ~20 MB)
PAYLOAD_BOUND = 256_000


@dataclass(frozen=True)
class BadCase:
    """One kind of bad input: ``write(folder, length)`` builds the feed; ``expect`` its reasons.

    ``after_first_batch(folder)``, when set, runs once the first batch is read (to make a file
    disappear mid-read). ``batch_size`` is the batch size the case is scored with.
    """

    name: str
    write: Callable[[Path, int], None]
    expect: tuple[str, ...] = ()
    after_first_batch: Callable[[Path], None] | None = None
    batch_size: int = 100
    tags: tuple[str, ...] = field(default=())
    outcome: str = ""  # quarantined when ``expect`` names reasons, else given explicitly
    n_scored: int | None = None
    max_payload_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", "quarantined" if self.expect else "")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"case {self.name}: no expected outcome ({self.outcome!r})")
        if (self.outcome == "quarantined") != bool(self.expect):
            raise ValueError(f"case {self.name}: quarantined cases, and only they, name reasons")


def good_signals(n: int, length: int, seed: int = 0) -> np.ndarray:
    """(n, length) float32 smooth beats in [-1, 1] plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, length)
    return (np.sin(t)[None, :] + 0.05 * rng.standard_normal((n, length))).astype(np.float32)


def frame(name: str, length: int, n: int = N_ROWS) -> pd.DataFrame:
    """A good feed of ``n`` beats whose ids start with the case ``name``."""
    return pd.DataFrame(
        {
            "record_id": [f"{name}-{i:03d}" for i in range(n)],
            "recorded_at": pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
            "patient_id": "p1",
            "signal": list(good_signals(n, length)),
        }
    )


def part(folder: Path, index: int = 0) -> Path:
    path = folder / f"date={DAY}" / f"part-{index}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save(df: pd.DataFrame, folder: Path, index: int = 0) -> None:
    df.to_parquet(part(folder, index), index=False)


def _table(folder: Path, columns: dict[str, pa.Array]) -> None:
    pq.write_table(pa.table(columns), part(folder))


def _edit(name: str, change: Callable[[pd.DataFrame, int], pd.DataFrame | None]):
    """A case writer: the good frame changed by ``change(df, length)``."""

    def write(folder: Path, length: int) -> None:
        df = frame(name, length)
        out = change(df, length)
        _save(df if out is None else out, folder)

    return write


def _set(column: str, row: int, value: object):
    def change(df: pd.DataFrame, _length: int) -> pd.DataFrame:
        df[column] = df[column].astype(object)
        df.at[row, column] = value
        return df

    return change


def _bytes(name: str, data: bytes | Callable[[bytes], bytes]):
    def write(folder: Path, length: int) -> None:
        path = part(folder)
        if callable(data):
            frame(name, length).to_parquet(path, index=False)
            path.write_bytes(data(path.read_bytes()))
        else:
            path.write_bytes(data)

    return write


def _flip_middle(blob: bytes) -> bytes:
    mid = len(blob) // 2
    return blob[:4] + bytes(b ^ 0xFF for b in blob[4:mid]) + blob[mid:]


def _drop(column: str):
    return lambda df, _l: df.drop(columns=[column])


def _signal_rows(values: list) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def change(df: pd.DataFrame, _length: int) -> pd.DataFrame:
        df["signal"] = values + list(df["signal"][len(values) :])
        return df

    return change


def _times(values: list) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def change(df: pd.DataFrame, _length: int) -> pd.DataFrame:
        df["recorded_at"] = pd.Series(values, dtype=object)
        return df

    return change


def _wide(name: str, width_delta: int = 0, bad_column: bool = False, prefixes: int = 1):
    def write(folder: Path, length: int) -> None:
        signals = good_signals(N_ROWS, length + width_delta)
        data: dict[str, object] = {
            "record_id": [f"{name}-{i}" for i in range(N_ROWS)],
            "recorded_at": [f"{DAY}T00:00:{i:02d}Z" for i in range(N_ROWS)],
        }
        for j in range(signals.shape[1]):
            prefix = "s" if prefixes == 1 or j % 2 else "x"
            data[f"{prefix}{j:03d}"] = signals[:, j]
        if bad_column:
            data["s005"] = ["not a number"] * N_ROWS
        _save(pd.DataFrame(data), folder)

    return write


def _two_files(name: str, same_ids: bool):
    def write(folder: Path, length: int) -> None:
        _save(frame(name, length), folder, 0)
        other = frame(name if same_ids else f"{name}-b", length)
        _save(other, folder, 1)

    return write


def _disappearing(name: str):
    def write(folder: Path, length: int) -> None:
        _save(frame(name, length), folder, 0)
        _save(frame(f"{name}-b", length), folder, 1)

    return write


def _remove_second(folder: Path) -> None:
    part(folder, 1).unlink(missing_ok=True)


def _long_id(df: pd.DataFrame, _l: int) -> pd.DataFrame:
    df.at[2, "record_id"] = "x" * 5000
    return df


def _dup_within(df: pd.DataFrame, _l: int) -> pd.DataFrame:
    df.at[3, "record_id"] = df.at[1, "record_id"]
    return df


def _int_ids(df: pd.DataFrame, _l: int) -> pd.DataFrame:
    df["record_id"] = np.arange(len(df)) + 7_000_000
    return df


def _extra(df: pd.DataFrame, _l: int) -> pd.DataFrame:
    df["site"] = "ward-3"
    df["label"] = 1.0
    df["notes"] = [{"a": 1}] * len(df)
    return df


def _int_signal(df: pd.DataFrame, _l: int) -> pd.DataFrame:
    df["signal"] = [np.round(s * 100).astype(np.int32) for s in df["signal"]]
    return df


def _string_signal(df: pd.DataFrame, _l: int) -> pd.DataFrame:
    df["signal"] = [",".join(f"{v:.3f}" for v in s) for s in df["signal"]]
    return df


def _epoch_times(df: pd.DataFrame, _l: int) -> pd.DataFrame:
    df["recorded_at"] = np.arange(len(df), dtype=np.int64) + 1_790_000_000
    return df


def _zero_rows(name: str):
    return lambda folder, length: _save(frame(name, length).iloc[:0], folder)


def _empty_folder(folder: Path, _length: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)


def _null_type_signal(name: str):
    def write(folder: Path, length: int) -> None:
        df = frame(name, length)
        _table(
            folder,
            {
                "record_id": pa.array(df["record_id"]),
                "recorded_at": pa.array(df["recorded_at"]),
                "signal": pa.nulls(len(df)),
            },
        )

    return write


def _nested_signal(df: pd.DataFrame, length: int) -> pd.DataFrame:
    df["signal"] = [[list(s[: length // 2]), list(s[length // 2 :])] for s in df["signal"]]
    df.at[0, "signal"] = [[1.0], [2.0, 3.0]]
    return df


def corpus() -> list[BadCase]:
    """Every bad-input case (at least 45), in a stable order; each states its outcome."""
    nan_row = lambda length: [np.full(length, np.nan, dtype=np.float32)]  # noqa: E731
    cases = [
        BadCase("not_parquet", _bytes("np", b"record_id,signal\na,1 2 3\n"), ("unreadable_file",)),
        BadCase("empty_file", _bytes("ef", b""), ("unreadable_file",)),
        BadCase("truncated_file", _bytes("tf", lambda b: b[: len(b) // 2]), ("unreadable_file",)),
        BadCase("corrupt_pages", _bytes("cp", _flip_middle), ("truncated_file",)),
        BadCase("zero_rows", _zero_rows("zr"), outcome="nothing"),
        BadCase("empty_folder", _empty_folder, outcome="nothing"),
        BadCase("no_record_id_column", _edit("nr", _drop("record_id")), ("schema_mismatch",)),
        BadCase("no_recorded_at_column", _edit("nt", _drop("recorded_at")), ("schema_mismatch",)),
        BadCase("no_signal_column", _edit("ns", _drop("signal")), ("schema_mismatch",)),
        BadCase("null_record_id", _edit("ni", _set("record_id", 1, None)), ("missing_record_id",)),
        BadCase("empty_record_id", _edit("ei", _set("record_id", 1, "  ")), ("missing_record_id",)),
        BadCase("record_id_too_long", _edit("li", _long_id), ("record_id_too_long",)),
        BadCase("integer_record_ids", _edit("ii", _int_ids), outcome="scored", n_scored=N_ROWS),
        BadCase("duplicate_id_in_batch", _edit("di", _dup_within), ("duplicate_record_id",)),
        BadCase(
            "duplicate_id_across_batches",
            _edit("da", _dup_within),
            ("duplicate_record_id",),
            batch_size=2,
        ),
        BadCase("duplicate_id_across_files", _two_files("df", True), ("duplicate_record_id",)),
        BadCase(
            "null_recorded_at", _edit("nt", _set("recorded_at", 2, None)), ("missing_recorded_at",)
        ),
        BadCase(
            "garbage_recorded_at",
            _edit("gt", _times(["yesterday", "2026-13-45", "", "NaT", "12:00", "x"])),
            ("missing_recorded_at",),
        ),
        BadCase(
            "naive_timestamps",
            _edit("nv", _times([f"{DAY} 00:00:0{i}" for i in range(N_ROWS)])),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "mixed_offsets",
            _edit(
                "mo",
                _times(
                    [
                        f"{DAY}T00:00:00+02:00",
                        f"{DAY}T00:00:01-05:00",
                        f"{DAY}T00:00:02Z",
                        f"{DAY} 00:00:03",
                        f"{DAY}T00:00:04+14:00",
                        f"{DAY}T00:00:05.123456789+05:30",
                    ]
                ),
            ),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "timestamps_out_of_range",
            _edit("tr", _times(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] + [DAY] * 4)),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "epoch_integer_timestamps", _edit("ep", _epoch_times), outcome="scored", n_scored=N_ROWS
        ),
        BadCase(
            "nan_samples", lambda f, n: _edit("na", _signal_rows(nan_row(n)))(f, n), ("non_finite",)
        ),
        BadCase(
            "inf_samples",
            lambda f, n: _edit("in", _signal_rows([np.full(n, np.inf, dtype=np.float32)]))(f, n),
            ("non_finite",),
        ),
        BadCase(
            "wrong_length_everywhere",
            lambda f, n: _save(frame("wl", n - 40), f),
            ("wrong_length",),
        ),
        BadCase(
            "ragged_lengths",
            _edit("rl", _signal_rows([np.zeros(3, dtype=np.float32)])),
            ("wrong_length",),
        ),
        BadCase(
            "empty_arrays",
            _edit("ea", _signal_rows([np.zeros(0, dtype=np.float32)])),
            ("empty_signal",),
        ),
        BadCase("null_signal", _edit("nl", _signal_rows([None])), ("missing_signal",)),
        BadCase("all_null_signal_column", _null_type_signal("an"), ("missing_signal",)),
        BadCase(
            "implausible_amplitude",
            lambda f, n: _edit("ia", _signal_rows([np.full(n, 1e7, dtype=np.float32)]))(f, n),
            ("implausible_amplitude",),
        ),
        BadCase("string_signal", _edit("ss", _string_signal), ("non_numeric_signal",)),
        BadCase("nested_signal", _edit("nn", _nested_signal), ("non_numeric_signal",)),
        BadCase("integer_signal", _edit("is", _int_signal), outcome="scored", n_scored=N_ROWS),
        BadCase("extra_columns", _edit("ex", _extra), outcome="scored", n_scored=N_ROWS),
        BadCase("wide_columns_wrong_count", _wide("ww", width_delta=-3), ("wrong_length",)),
        BadCase("wide_column_not_numeric", _wide("wn", bad_column=True), ("non_numeric_signal",)),
        BadCase("wide_columns_two_prefixes", _wide("wp", prefixes=2), ("schema_mismatch",)),
        BadCase(
            "file_disappears_mid_read",
            _disappearing("fd"),
            ("missing_file",),
            after_first_batch=_remove_second,
            batch_size=3,
        ),
        # size attacks: the row is quarantined, the rest of its batch scored (poison ids: later)
        BadCase(
            "huge_record_id",
            _edit("hi", _set("record_id", 1, "h" * 100_000)),
            ("record_id_too_long",),
        ),  # fmt: skip
        BadCase(
            "huge_signal_row",
            _edit("hs", _signal_rows([np.ones(1_000_000, np.float32)])),
            ("wrong_length",),
        ),  # fmt: skip
    ]
    return cases + later_cases()


# ----------------------------------------------------------------------------- later cases


def _big_frame(name: str, length: int, n: int = BIG_BATCH) -> pd.DataFrame:
    """A good feed of ``n`` beats (a realistic batch), built without a Python object per sample."""
    signals = np.tile(good_signals(1, length), (n, 1))
    return pd.DataFrame(
        {
            "record_id": [f"{name}-{i:06d}" for i in range(n)],
            "recorded_at": pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(np.arange(n), unit="ms"),
            "patient_id": "p1",
            "signal": list(signals),
        }
    )


def _big(name: str, change: Callable[[pd.DataFrame, int], None]):
    """A case writer: a 50,000-beat feed changed in place by ``change(df, length)``."""

    def write(folder: Path, length: int) -> None:
        df = _big_frame(name, length)
        change(df, length)
        _save(df, folder)

    return write


def _put(column: str, rows: range | list[int], value: object):
    def change(df: pd.DataFrame, _length: int) -> pd.DataFrame:
        df[column] = df[column].astype(object)
        for row in rows:
            df.at[row, column] = value
        return df

    return change


def _long_signals(rows: list[int], samples: int):
    """Rows whose signal has ``samples`` samples (a flood of values in one list column)."""

    def change(df: pd.DataFrame, _length: int) -> None:
        long = np.random.default_rng(0).standard_normal(samples).astype(np.float32)
        signals = list(df["signal"])
        for row in rows:
            signals[row] = long
        df["signal"] = signals

    return change


def _arrow_types(name: str, ids: pa.DataType, signal: str):
    """A good feed whose ids are stored as ``ids`` and signal as ``signal`` (large or fixed)."""

    def write(folder: Path, length: int) -> None:
        df = frame(name, length)
        values = pa.array(np.concatenate(list(df["signal"])))
        if signal == "large_list":
            offsets = pa.array(np.arange(len(df) + 1, dtype=np.int64) * length)
            column = pa.LargeListArray.from_arrays(offsets, values)
        else:
            column = pa.FixedSizeListArray.from_arrays(values, length)
        record_ids = pa.array(df["record_id"]).cast(ids)
        times = pa.array(df["recorded_at"])
        _table(folder, {"record_id": record_ids, "recorded_at": times, "signal": column})

    return write


def later_cases() -> list[BadCase]:
    """Cases added with the size attacks and the poison rows (PostgreSQL refuses NUL characters
    and ids longer than their columns; SQLite takes them)."""
    k100 = "x" * 100_000
    return [
        BadCase(
            "patient_id_too_long",
            _edit("pl", _set("patient_id", 2, "p" * 129)),
            ("patient_id_too_long",),
            n_scored=N_ROWS - 1,
        ),
        BadCase(
            "nul_in_record_id",
            _edit("nr0", _set("record_id", 1, "nr0-\x00-1")),
            ("nul_in_id",),
            n_scored=N_ROWS - 1,
        ),
        BadCase(
            "nul_in_patient_id",
            _edit("np0", _set("patient_id", 4, "p\x001")),
            ("nul_in_id",),
            n_scored=N_ROWS - 1,
        ),
        BadCase(
            "record_id_at_its_limit",
            _edit("rl0", _set("record_id", 0, "r" * 256)),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "patient_id_at_its_limit",
            _edit("pl0", _set("patient_id", 0, "p" * 128)),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "unicode_ids",
            _edit("uc", _set("record_id", 3, "uc-\u00e9\u0301-\u05d0-\U0001f600")),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "large_string_ids_large_list_signal",
            _arrow_types("ls", pa.large_string(), "large_list"),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "dictionary_ids_fixed_size_list_signal",
            _arrow_types("dc", pa.dictionary(pa.int32(), pa.string()), "fixed_size_list"),
            outcome="scored",
            n_scored=N_ROWS,
        ),
        BadCase(
            "huge_record_id_in_a_big_batch",
            _big("hr", _put("record_id", [7], k100)),
            ("record_id_too_long",),
            batch_size=BIG_BATCH,
            n_scored=BIG_BATCH - 1,
            max_payload_bytes=PAYLOAD_BOUND,
        ),
        BadCase(
            "huge_patient_id_in_a_big_batch",
            _big("hp", _put("patient_id", [11], k100)),
            ("patient_id_too_long",),
            batch_size=BIG_BATCH,
            n_scored=BIG_BATCH - 1,
            max_payload_bytes=PAYLOAD_BOUND,
        ),
        BadCase(
            "huge_list_row_in_a_big_batch",
            _big("hl", _long_signals([5], 1_000_000)),
            ("wrong_length",),
            batch_size=BIG_BATCH,
            n_scored=BIG_BATCH - 1,
            max_payload_bytes=PAYLOAD_BOUND,
        ),
        BadCase(
            "many_huge_rejected_payloads",
            _big("hm", _long_signals(list(range(0, 10_000, 100)), 50_000)),
            ("wrong_length",),
            batch_size=BIG_BATCH,
            n_scored=BIG_BATCH - 100,
            max_payload_bytes=PAYLOAD_BOUND,
        ),
        BadCase(
            "long_ids_in_a_big_batch",
            _big(
                "lg", lambda df, _l: df.__setitem__("record_id", df["record_id"] + "-" + "y" * 240)
            ),
            outcome="scored",
            batch_size=BIG_BATCH,
            n_scored=BIG_BATCH,
        ),
    ]
