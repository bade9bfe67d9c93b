"""Read labelled heartbeats from UCR text, TensorFlow-tutorial CSV and Parquet files.

Every reader returns :class:`LabelledBeats`: ``signals`` of shape (n_beats, input_length) as
float32 in the units of the file, and the raw class labels (float64) when the file has them. The
input length always comes from the data. Anything that cannot be read as beats raises
:class:`~ecgmon.errors.DataFormatError` with one sentence naming the file (and the line, row,
column or field); a missing path raises :class:`~ecgmon.errors.SourceNotFoundError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgmon.errors import DataFormatError, SourceNotFoundError
from ecgmon.sources.beat_layout import check_finite, read_parquet_beats

logger = logging.getLogger(__name__)

#: Readable suffixes, in order of preference when a folder holds the same split twice.
SUFFIXES: tuple[str, ...] = (".tsv", ".txt", ".csv", ".parquet")


@dataclass(frozen=True)
class LabelledBeats:
    """Beats of one length with optional raw class labels.

    signals: (n_beats, input_length) float32. labels: (n_beats,) float64 as written in the
    file, or None when the data carries no labels. source: where the beats came from.
    """

    signals: np.ndarray
    labels: np.ndarray | None
    source: str

    def __post_init__(self) -> None:
        if self.signals.ndim != 2:
            raise ValueError(f"signals must be 2-D, got shape {self.signals.shape}")
        if self.labels is not None and self.labels.shape != (self.signals.shape[0],):
            raise ValueError(
                f"labels shape {self.labels.shape} does not match {self.signals.shape[0]} beats"
            )

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    @property
    def input_length(self) -> int:
        """Samples per beat."""
        return int(self.signals.shape[1])

    def normal_mask(self, normal_label: float = 1.0) -> np.ndarray:
        """Bool (n_beats,): beats labelled ``normal_label``; all True when there are no labels."""
        if self.labels is None:
            return np.ones(len(self), dtype=bool)
        return self.labels == normal_label

    def concat(self, other: LabelledBeats) -> LabelledBeats:
        """These beats then ``other``'s: same length, and both or neither labelled."""
        if other.input_length != self.input_length:
            raise DataFormatError(
                f"Cannot pool {other.source} (beats of {other.input_length} samples) with "
                f"{self.source} (beats of {self.input_length} samples)."
            )
        if (self.labels is None) != (other.labels is None):
            raise DataFormatError(
                f"Cannot pool labelled and unlabelled beats ({self.source} and {other.source})."
            )
        labels = None
        if self.labels is not None and other.labels is not None:
            labels = np.concatenate([self.labels, other.labels])
        signals = np.concatenate([self.signals, other.signals])
        return LabelledBeats(signals, labels, f"{self.source}; {other.source}")


def read_beats(path: str | Path) -> LabelledBeats:
    """Read one file; the format follows the suffix (.tsv, .txt, .csv, .parquet)."""
    path = Path(path)
    if not path.exists():
        raise SourceNotFoundError(f"Data file {path} does not exist.")
    if path.is_dir():
        raise DataFormatError(f"{path} is a folder; a single data file is expected here.")
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        beats = _read_text(path, delimiter="\t", label_first=True)
    elif suffix == ".txt":
        beats = _read_text(path, delimiter=None, label_first=True)
    elif suffix == ".csv":
        beats = _read_text(path, delimiter=",", label_first=False)
    elif suffix == ".parquet":
        signals, labels = read_parquet_beats(path)
        beats = LabelledBeats(signals, labels, str(path))
    else:
        raise DataFormatError(
            f"{path} has an unknown suffix {suffix!r}; expected one of {', '.join(SUFFIXES)}."
        )
    logger.info("Read %d beats of %d samples from %s", len(beats), beats.input_length, path)
    return beats


def read_ucr_pair(folder: str | Path) -> tuple[LabelledBeats, LabelledBeats]:
    """(train, test) from the ``*_TRAIN.*`` and ``*_TEST.*`` files of a UCR folder."""
    folder = _existing_folder(folder)
    train_path, test_path = _split_file(folder, "TRAIN"), _split_file(folder, "TEST")
    for split, found in (("TRAIN", train_path), ("TEST", test_path)):
        if found is None:
            raise SourceNotFoundError(f"Folder {folder} holds no *_{split} data file.")
    assert train_path is not None and test_path is not None
    train, test = read_beats(train_path), read_beats(test_path)
    if train.input_length != test.input_length:
        raise DataFormatError(
            f"{train_path} has beats of {train.input_length} samples but {test_path} has "
            f"{test.input_length}."
        )
    return train, test


def read_training_data(path: str | Path) -> LabelledBeats:
    """A file; or a folder's ``*_TRAIN`` file when it has one, else all its data files pooled."""
    path = Path(path)
    if not path.exists():
        raise SourceNotFoundError(f"Data path {path} does not exist.")
    if path.is_file():
        return read_beats(path)
    train_path = _split_file(path, "TRAIN")
    if train_path is not None:
        return read_beats(train_path)
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    )
    if not files:
        raise DataFormatError(f"Folder {path} holds no data files ({', '.join(SUFFIXES)}).")
    pooled = read_beats(files[0])
    for file in files[1:]:
        pooled = pooled.concat(read_beats(file))
    return LabelledBeats(pooled.signals, pooled.labels, str(path))


def _existing_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise SourceNotFoundError(f"Data folder {folder} does not exist.")
    if not folder.is_dir():
        raise DataFormatError(
            f"{folder} is a file; a folder of *_TRAIN and *_TEST files is expected."
        )
    return folder


def _split_file(folder: Path, split: str) -> Path | None:
    """The one readable ``*_<split>.<suffix>`` file in ``folder`` (case-insensitive), or None."""
    found = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in SUFFIXES and p.stem.upper().endswith(f"_{split}")
    ]
    for suffix in SUFFIXES:
        same = sorted(p for p in found if p.suffix.lower() == suffix)
        if len(same) > 1:
            names = ", ".join(p.name for p in same)
            raise DataFormatError(f"Folder {folder} holds several *_{split} files: {names}.")
        if same:
            return same[0]
    return None


# --- text formats -------------------------------------------------------------------------------


def _read_text(path: Path, delimiter: str | None, label_first: bool) -> LabelledBeats:
    """UCR (class first) or tutorial CSV (label last) text, one beat per line."""
    rows, line_numbers = _parse_lines(path, delimiter, allow_header=not label_first)
    if not rows:
        raise DataFormatError(f"{path} holds no beats (the file is empty).")
    table = np.asarray(rows, dtype=np.float64)
    if table.shape[1] - 1 < 2:
        raise DataFormatError(
            f"{path} line {line_numbers[0]} has {table.shape[1] - 1} sample(s) besides the label; "
            "a beat needs at least 2."
        )
    check_finite(table, path, lambda row, col: f"line {line_numbers[row]}, column {col + 1}")
    too_large = np.abs(table) > np.finfo(np.float32).max
    if too_large.any():
        row, col = (int(i) for i in np.argwhere(too_large)[0])
        raise DataFormatError(
            f"{path} line {line_numbers[row]}, column {col + 1}: {table[row, col]:g} is too large."
        )
    label_column = 0 if label_first else table.shape[1] - 1
    labels = table[:, label_column].copy()
    signals = np.delete(table, label_column, axis=1).astype(np.float32)
    return LabelledBeats(signals, labels, str(path))


def _parse_lines(
    path: Path, delimiter: str | None, allow_header: bool
) -> tuple[list[list[float]], list[int]]:
    """Numeric rows of a text file and their 1-based line numbers; blank lines are skipped."""
    rows: list[list[float]] = []
    numbers: list[int] = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                text = line.strip()
                if not text:
                    continue
                fields = text.split(delimiter)
                if allow_header and not rows and _is_header(fields):
                    logger.debug("Skipping header line %d of %s", number, path)
                    allow_header = False
                    continue
                if rows and len(fields) != len(rows[0]):
                    raise DataFormatError(
                        f"{path} line {number} has {len(fields)} values but line {numbers[0]} "
                        f"has {len(rows[0])}; every beat must have the same length."
                    )
                rows.append(_parse_fields(fields, path, number))
                numbers.append(number)
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path} is not a UTF-8 text file ({err.reason}).") from err
    return rows, numbers


def _parse_fields(fields: list[str], path: Path, number: int) -> list[float]:
    try:
        return [float(field) for field in fields]
    except ValueError:
        for column, field in enumerate(fields, start=1):
            if not _is_number(field):
                shown = field if len(field) <= 30 else field[:27] + "..."
                raise DataFormatError(
                    f"{path} line {number}, column {column}: {shown!r} is not a number."
                ) from None
        raise


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _is_header(fields: list[str]) -> bool:
    """Mostly non-numeric names, or the column numbers 0,1,2,... that pandas writes by default."""
    numeric = [_is_number(field) for field in fields]
    if sum(numeric) < len(fields) / 2:
        return True
    if not all(numeric):
        return False
    values = [float(field) for field in fields]
    first = values[0]
    return first in (0.0, 1.0) and values == [first + i for i in range(len(values))]
