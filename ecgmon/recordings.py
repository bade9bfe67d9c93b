"""Continuous WFDB recordings to beats: R-peak detection, cutting, RR context, provenance.

A WFDB folder (``NNN.hea`` + ``NNN.dat``) is read with the ``wfdb`` package. R peaks come from a
2-of-3 vote of NeuroKit2's detectors (Elgendi 2010 and Rodrigues 2021 run by ``ecgmon.qrs``, the
same peaks without NeuroKit2's per-sample loops), refined to the largest deflection of the cleaned
signal, and peaks under an eighth of the preceding peaks' amplitude are dropped as noise; on the
ten shared MIT-BIH records: Se 0.997, +P 0.994 (docs/recordings.md compares library detectors).
Beats are cut around each R peak, resampled to the model's input length and
z-normalised per beat (the layout of ECG5000, which the population models are trained on).

Evaluation helpers read the rdann-style text dumps of the expert annotations and match detected
beats to them; they are never used to decide anything about a beat.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgmon.errors import DataFormatError, SourceNotFoundError

if TYPE_CHECKING:
    import wfdb

log = logging.getLogger(__name__)

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
"""MIT-BIH annotation symbols that mark a beat; every other symbol is a rhythm/noise note."""
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Start time assumed for a record whose header has no base date/time."""
PRE_S, POST_S = 0.25, 0.45
"""Default beat window: seconds before and after the R peak."""
REFRACTORY_S = 0.2
"""No two R peaks closer than this (physiological refractory period)."""
NOISE_FRACTION = 0.125
"""A peak smaller than this share of the median |amplitude| of the 8 peaks before it is noise:
Pan & Tompkins (1985) accept no peak, even in their search-back, under an eighth of the running
signal-peak level (``THRESHOLD I2 = 0.5 * THRESHOLD I1``, ``I1 = NPKI + 0.25 (SPKI - NPKI)``)."""
TAIL_GUARD_S = 1.0
"""Peaks this close to the end of a growing recording are held back until more signal arrives."""
OVERLAP_S = 30.0
"""Signal read again before a record's watermark: the detector's filters settle and the RR context
(median of the last 16 RR intervals) is complete before the first new beat."""
CHUNK_S = 1800.0
"""New signal is read, detected and cut this many seconds at a time (memory follows the chunk)."""
_VOTERS = (
    ("pantompkins1985", "pantompkins1985"),
    ("elgendi2010", "elgendi2010"),
    ("rodrigues2021", "neurokit"),
)  # (detector, cleaning method) pairs


@dataclass(frozen=True)
class Recording:
    """One lead of a WFDB record, or a stretch of it: ``signal`` (n_samples,) float64 in mV at
    ``fs`` Hz whose first sample is sample ``offset`` of the record."""

    name: str
    lead: str
    fs: float
    signal: np.ndarray
    start: datetime
    offset: int = 0


@dataclass(frozen=True)
class RecordingBeats:
    """New beats of one record, in R-peak order.

    ``samples`` (n,) int64 R-peak sample indices; ``record_ids`` f"{record}:{lead}:{sample}";
    ``recorded_at`` (n,) UTC datetimes of the R peaks; ``signals`` (n, length) float32 z-normalised
    beats; ``rr`` (n, 2) float32 RR before/after relative to the running median RR; ``watermark``
    the last R-peak sample emitted (unchanged when nothing is new).
    """

    record: str
    lead: str
    samples: np.ndarray
    record_ids: list[str]
    recorded_at: list[datetime]
    signals: np.ndarray
    rr: np.ndarray
    watermark: int

    def __len__(self) -> int:
        return int(self.samples.size)


def choose_lead(names: list[str]) -> int:
    """Index of the lead to use: MLII when the record has it, else the first lead."""
    return names.index("MLII") if "MLII" in names else 0


def _base(path: Path) -> Path:
    base = Path(path).with_suffix("") if Path(path).suffix == ".hea" else Path(path)
    if not base.with_suffix(".hea").is_file():
        raise SourceNotFoundError(f"no WFDB header {base.with_suffix('.hea')}")
    return base


def record_size(path: Path) -> tuple[int, float]:
    """Samples per signal and sampling frequency (Hz) of a WFDB record, from its header only."""
    import wfdb

    base = _base(path)
    try:
        header = wfdb.rdheader(str(base))
        return int(header.sig_len), float(header.fs)
    except (ValueError, OSError, TypeError) as err:
        raise DataFormatError(f"cannot read WFDB header {base}: {err}") from err


def read_recording(
    path: Path, lead: str | None = None, sampfrom: int = 0, sampto: int | None = None
) -> Recording:
    """Read one lead of a WFDB record (``path`` without extension, or its ``.hea``), the whole
    record or only samples [``sampfrom``, ``sampto``) (``Recording.offset`` = ``sampfrom``)."""
    import wfdb

    base = _base(path)
    try:
        header = wfdb.rdheader(str(base))
        check_header(base, header)
        channel = header.sig_name.index(lead) if lead else choose_lead(list(header.sig_name))
        record = wfdb.rdrecord(str(base), sampfrom=sampfrom, sampto=sampto, channels=[channel])
    except (ValueError, OSError) as err:
        raise DataFormatError(f"cannot read WFDB record {base}: {err}") from err
    signal = np.nan_to_num(record.p_signal[:, 0].astype(np.float64))
    name, lead_name = base.name, str(header.sig_name[channel])
    return Recording(name, lead_name, float(record.fs), signal, _record_start(header), sampfrom)


#: Bytes per sample of the WFDB storage formats (the data file's size bounds ``sig_len``).
_FORMAT_BYTES = {"8": 1.0, "16": 2.0, "24": 3.0, "32": 4.0, "61": 2.0, "80": 1.0, "160": 2.0,
                 "212": 1.5, "310": 4 / 3, "311": 4 / 3}  # fmt: skip


def check_header(base: Path, header: wfdb.Record | wfdb.MultiRecord) -> None:
    """Refuse a header whose data files lie outside its folder (an absolute path, ``..``) or
    whose ``sig_len`` asks for more samples than its data file holds (raises DataFormatError)."""
    files = list(getattr(header, "file_name", None) or [])
    for name in files:
        if Path(name).is_absolute() or Path(name).name != name:
            raise DataFormatError(
                f"WFDB header {base}.hea names data file {name!r} outside its folder"
            )
    formats = list(getattr(header, "fmt", None) or [])
    if not files or len(formats) != len(files) or header.sig_len is None:
        return
    per_file: dict[str, float] = {}
    for name, fmt in zip(files, formats, strict=True):
        per_file[name] = per_file.get(name, 0.0) + _FORMAT_BYTES.get(str(fmt), 0.0)
    for name, sample_bytes in per_file.items():
        path = base.parent / name
        need = int(header.sig_len * sample_bytes)
        if path.is_file() and need > path.stat().st_size:
            raise DataFormatError(
                f"WFDB header {base}.hea claims {header.sig_len} samples; {name} holds fewer"
            )


def _record_start(header: wfdb.Record | wfdb.MultiRecord) -> datetime:
    """The header's base date/time as UTC, else EPOCH (same day when only the time is known)."""
    if header.base_time is None:
        return EPOCH
    day = header.base_date or EPOCH.date()
    return datetime.combine(day, header.base_time, tzinfo=UTC)


def clean_signal(signal: np.ndarray, fs: float) -> np.ndarray:
    """Baseline wander and powerline removed (NeuroKit2's 'neurokit' cleaning, run by
    ``ecgmon.qrs``), same shape."""
    from ecgmon import qrs

    return np.asarray(qrs.neurokit_clean(signal, fs), dtype=np.float64)


def detect_r_peaks(
    signal: np.ndarray, fs: float, method: str = "vote", cleaned: np.ndarray | None = None
) -> np.ndarray:
    """Sorted R-peak sample indices (int64) of a raw single-lead ECG ``signal`` (n,) at ``fs`` Hz.

    ``vote`` (default): peaks found by at least 2 of 3 NeuroKit2 detectors (Pan-Tompkins, Elgendi,
    Rodrigues, run in numpy by ``ecgmon.qrs``) within 100 ms. ``xqrs`` (wfdb.processing) and
    ``neurokit`` are kept for comparison.
    All are refined to the largest absolute deflection of the cleaned signal within 75 ms.
    ``cleaned``: ``clean_signal(signal, fs)`` when the caller has it (it is not computed twice).
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.size < int(2 * fs):
        return np.zeros(0, dtype=np.int64)
    if cleaned is None:
        cleaned = clean_signal(signal, fs)
    if method == "vote":
        candidates = [_nk_peaks(signal, fs, d, c, cleaned) for d, c in _VOTERS]
        peaks = vote_peaks(candidates, min_votes=2, tolerance=int(0.1 * fs))
    elif method == "xqrs":
        from wfdb import processing

        peaks = processing.xqrs_detect(signal, fs, verbose=False)
    elif method == "neurokit":
        peaks = _nk_peaks(signal, fs, "neurokit", "neurokit", cleaned)
    else:
        raise ValueError(f"unknown R-peak method {method!r}; choose vote, xqrs or neurokit")
    return drop_noise_peaks(cleaned, refine_peaks(cleaned, np.sort(peaks), fs))


def drop_noise_peaks(cleaned: np.ndarray, peaks: np.ndarray, history: int = 8) -> np.ndarray:
    """``peaks`` (sorted int64) without those whose |cleaned| is below NOISE_FRACTION of the
    median |cleaned| of the ``history`` peaks before them (the flat line of a long pause that a
    detector's decaying threshold reaches). Causal: a peak's fate depends only on earlier peaks,
    so a chunk read with OVERLAP_S of earlier signal decides as the whole record does."""
    heights = np.abs(cleaned[peaks])
    if peaks.size < 2:
        return peaks
    padded = np.r_[np.full(history, np.nan), heights[:-1]]
    windows = np.lib.stride_tricks.sliding_window_view(padded, history)[1:]
    reference = np.r_[0.0, np.nanmedian(windows, axis=1)]
    return peaks[heights >= NOISE_FRACTION * reference]


def _nk_peaks(
    signal: np.ndarray, fs: float, detector: str, cleaning: str, cleaned: np.ndarray
) -> np.ndarray:
    """R peaks (int64) of one of NeuroKit2's detectors after its cleaning: the voters run in
    ``ecgmon.qrs`` (the same peaks, without importing NeuroKit2); others (``neurokit``, kept
    for comparison) in NeuroKit2."""
    from ecgmon import qrs

    if cleaning in _BANDS:
        cleaned = qrs.band_clean(signal, fs, *_BANDS[cleaning])
    if detector in _DETECTORS:
        return getattr(qrs, _DETECTORS[detector])(np.asarray(cleaned, dtype=np.float64), fs)
    import neurokit2 as nk

    if cleaning != "neurokit":
        cleaned = nk.ecg_clean(signal, sampling_rate=fs, method=cleaning)
    _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method=detector)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


_DETECTORS = {
    "pantompkins1985": "pantompkins1985_peaks",
    "elgendi2010": "elgendi2010_peaks",
    "rodrigues2021": "rodrigues2021_peaks",
}
_BANDS = {"pantompkins1985": (5, 15, 1), "elgendi2010": (8, 20, 2)}  # (low Hz, high Hz, order)


def vote_peaks(candidates: list[np.ndarray], min_votes: int, tolerance: int) -> np.ndarray:
    """Median positions of groups of peaks (within ``tolerance`` samples of the group's first)
    found by at least ``min_votes`` of the detectors; ``candidates`` one index array each."""
    owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(candidates)])
    points = np.concatenate([np.asarray(c, dtype=np.int64) for c in candidates])
    order = np.argsort(points, kind="stable")
    sorted_points, sorted_owner = points[order].tolist(), owner[order].tolist()
    kept: list[int] = []
    start = 0
    for end in range(1, len(sorted_points) + 1):
        if end == len(sorted_points) or sorted_points[end] - sorted_points[start] > tolerance:
            if len(set(sorted_owner[start:end])) >= min_votes:
                kept.append(int(np.median(sorted_points[start:end])))
            start = end
    return np.asarray(kept, dtype=np.int64)


def refine_peaks(
    cleaned: np.ndarray, peaks: np.ndarray, fs: float, half_window_s: float = 0.075
) -> np.ndarray:
    """Move each peak to the largest |cleaned| within 75 ms; drop peaks closer than 200 ms to a
    larger one. ``cleaned`` (n,) the cleaned signal; returns sorted unique int64 indices."""
    half = max(1, int(half_window_s * fs))
    peaks = np.asarray(peaks, dtype=np.int64)
    if peaks.size == 0:
        return np.zeros(0, dtype=np.int64)
    # windows clipped at the signal's ends repeat the end sample: its first copy wins the argmax
    window = np.clip(peaks[:, None] + np.arange(-half, half + 1), 0, cleaned.size - 1)
    best = np.argmax(np.abs(cleaned[window]), axis=1)
    refined_arr = np.unique(window[np.arange(peaks.size), best])
    keep: list[int] = []
    heights = np.abs(cleaned[refined_arr]).tolist()
    gap = REFRACTORY_S * fs
    last_height = 0.0
    for p, height in zip(refined_arr.tolist(), heights, strict=True):
        if keep and p - keep[-1] < gap:
            if height > last_height:
                keep[-1], last_height = p, height
            continue
        keep.append(p)
        last_height = height
    return np.asarray(keep, dtype=np.int64)


def beat_window(fs: float, pre_s: float = PRE_S, post_s: float = POST_S) -> tuple[int, int]:
    """Samples before and after the R peak that a beat covers."""
    return int(round(pre_s * fs)), int(round(post_s * fs))


def complete_mask(peaks: np.ndarray, n_samples: int, fs: float) -> np.ndarray:
    """Which peaks (n,) have their whole beat window inside a signal of ``n_samples``."""
    pre, post = beat_window(fs)
    return (peaks - pre >= 0) & (peaks + post <= n_samples)


def cut_beats(cleaned: np.ndarray, peaks: np.ndarray, fs: float, length: int) -> np.ndarray:
    """Beats (n, length) float32: PRE_S before to POST_S after each peak, resampled to ``length``.

    Every peak must be complete (see ``complete_mask``); values keep the units of ``cleaned``.
    """
    from scipy.signal import resample

    pre, post = beat_window(fs)
    if peaks.size == 0:
        return np.zeros((0, length), dtype=np.float32)
    if not complete_mask(peaks, cleaned.size, fs).all():
        raise ValueError("cut_beats needs complete beats; filter with complete_mask first")
    windows = np.stack([cleaned[p - pre : p + post] for p in peaks])
    return resample(windows, length, axis=1).astype(np.float32)


def normalise_beats(beats: np.ndarray) -> np.ndarray:
    """Per-beat z-normalisation (ECG5000 layout): (n, length) float32, mean 0 and std 1 per row."""
    beats = np.asarray(beats, dtype=np.float64)
    centred = beats - beats.mean(axis=1, keepdims=True)
    scale = centred.std(axis=1, keepdims=True)
    return (centred / np.where(scale > 1e-9, scale, 1.0)).astype(np.float32)


def rr_features(peaks: np.ndarray, window: int = 16) -> np.ndarray:
    """RR context (n, 2) float32: RR before and after each beat divided by the median of the
    ``window`` RR intervals before it (causal running median). Edges use the nearest values."""
    peaks = np.asarray(peaks, dtype=np.float64)
    if peaks.size < 2:
        return np.ones((peaks.size, 2), dtype=np.float32)
    rr = np.diff(peaks)
    before = np.r_[rr[0], rr]
    after = np.r_[rr, rr[-1]]
    # the median of the RR intervals before the beat's own RR, so a premature beat stands out
    running = np.r_[
        np.full(min(2, peaks.size), np.median(rr[:window])), _running_median(rr, window)
    ]
    return np.c_[before / running, after / running].astype(np.float32)


def _running_median(rr: np.ndarray, window: int) -> np.ndarray:
    """For beats 2..n-1 (n = rr.size + 1): the median of the up to ``window`` RR intervals that
    end before the beat's own RR, i.e. of ``rr[max(0, i - 1 - window) : i - 1]``."""
    n = rr.size + 1
    head = [float(np.median(rr[: i - 1])) for i in range(2, min(n, window + 2))]
    if n <= window + 2:
        return np.asarray(head, dtype=np.float64)
    full = np.median(np.lib.stride_tricks.sliding_window_view(rr, window), axis=1)
    return np.r_[head, full[1 : n - 1 - window]]


def recording_beats(
    recording: Recording, length: int, watermark: int = -1, growing: bool = True
) -> RecordingBeats:
    """Beats of ``recording`` whose R peak is after ``watermark`` and whose window is complete.

    With ``growing`` the peaks in the last TAIL_GUARD_S are held back: the detector may still move
    or add them once more signal arrives. Peaks within REFRACTORY_S after the watermark are the
    already-emitted beat seen again, so they are skipped. Samples, ids and the watermark count
    from the record's start (``recording.offset`` added).
    """
    fs, n, offset = recording.fs, recording.signal.size, recording.offset
    try:
        cleaned = clean_signal(recording.signal, fs)
        local = detect_r_peaks(recording.signal, fs, cleaned=cleaned)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError) as err:
        raise DataFormatError(f"R-peak detection failed on {recording.name}: {err}") from err
    rr = rr_features(local)
    new = complete_mask(local, n, fs) & (local + offset > watermark + REFRACTORY_S * fs)
    if growing:
        new &= local < n - TAIL_GUARD_S * fs
    local, rr = local[new], rr[new]
    signals = normalise_beats(cut_beats(cleaned, local, fs, length))
    peaks = local + offset
    ids = [f"{recording.name}:{recording.lead}:{int(p)}" for p in peaks]
    times = [recording.start + timedelta(seconds=float(p) / fs) for p in peaks]
    mark = int(peaks[-1]) if peaks.size else watermark
    return RecordingBeats(recording.name, recording.lead, peaks, ids, times, signals, rr, mark)


def list_records(folder: Path) -> list[Path]:
    """Headers (``*.hea``) of a WFDB folder, sorted by record name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceNotFoundError(f"no WFDB folder {folder}")
    return sorted(folder.glob("*.hea"))


def is_wfdb_folder(folder: Path) -> bool:
    """True when ``folder`` holds at least one WFDB header (``*.hea``)."""
    return Path(folder).is_dir() and any(Path(folder).glob("*.hea"))


def iter_recording_beats(
    folder: Path, length: int, watermarks: dict[str, int]
) -> Iterator[RecordingBeats]:
    """For each record of a WFDB folder, its beats after ``watermarks[record]`` (-1 when absent).

    One item per record, also when nothing is new (then ``len(item) == 0`` and ``item.watermark``
    is the old one). Store ``item.watermark`` per record once the item's beats are persisted: a
    grown recording then yields only its new beats, and a re-run over the same files yields none.
    """
    for header in list_records(folder):
        for beats in new_recording_beats(header, length, watermarks.get(header.stem, -1)):
            log.info(
                "record %s: %d new beats up to sample %d", beats.record, len(beats), beats.watermark
            )
            yield beats


def new_recording_beats(
    header: Path, length: int, watermark: int = -1, chunk_s: float = CHUNK_S
) -> Iterator[RecordingBeats]:
    """The beats of a (growing) record after ``watermark``, reading only the new signal.

    Each chunk reads from OVERLAP_S before the position reached so far up to ``chunk_s`` of new
    signal (so a run costs what the new part costs, in time and memory) and yields its beats
    (``recording_beats``, growing); at least one item, empty when nothing is new.
    """
    total, fs = record_size(header)
    overlap, step = int(OVERLAP_S * fs), max(1, int(chunk_s * fs))
    position, yielded = max(watermark + 1, 0), False
    while position < total or not yielded:
        start = max(0, position - overlap)
        end = min(total, max(position, start) + step)
        beats = recording_beats(
            read_recording(header, sampfrom=start, sampto=end), length, watermark
        )
        watermark, position, yielded = beats.watermark, end, True
        yield beats
        if end >= total:
            break


@dataclass(frozen=True)
class Annotations:
    """Expert annotations of a record: ``samples`` (n,) int64 and ``symbols`` (n,) str."""

    samples: np.ndarray
    symbols: np.ndarray

    def beats(self) -> Annotations:
        """Only the beat annotations (BEAT_SYMBOLS), in sample order."""
        keep = np.isin(self.symbols, list(BEAT_SYMBOLS))
        return Annotations(self.samples[keep], self.symbols[keep])


def read_annotations(path: Path) -> Annotations:
    """Read an rdann text dump (header line, then ``time sample symbol sub chan num [aux]``)."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"no annotation file {path}")
    samples, symbols = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or (number == 1 and fields[0].lower() == "time"):
            continue
        try:
            samples.append(int(fields[1]))
            symbols.append(fields[2])
        except (IndexError, ValueError) as err:
            raise DataFormatError(
                f"{path} line {number}: expected 'time sample symbol ...'"
            ) from err
    order = np.argsort(np.asarray(samples, dtype=np.int64), kind="stable")
    return Annotations(np.asarray(samples, dtype=np.int64)[order], np.asarray(symbols)[order])


def read_atr(base: Path) -> Annotations:
    """Read a WFDB annotation file ``<base>.atr`` (the PhysioNet layout) with ``wfdb.rdann``."""
    import wfdb

    try:
        notes = wfdb.rdann(str(base), "atr")
    except (ValueError, OSError, IndexError) as err:
        raise DataFormatError(f"cannot read WFDB annotations {base}.atr: {err}") from err
    samples = np.asarray(notes.sample, dtype=np.int64)
    order = np.argsort(samples, kind="stable")
    return Annotations(samples[order], np.asarray(notes.symbol)[order])


def annotation_paths(header: Path) -> list[Path]:
    """Where a record's expert annotations may be, in order of preference: ``<record>.atr`` beside
    the header (PhysioNet), an rdann dump ``<record>annotations.txt`` beside it or in an
    ``annotations`` folder next to the records folder (the layout of ../shared/data/mitbih)."""
    base = Path(header).with_suffix("") if Path(header).suffix == ".hea" else Path(header)
    dump = f"{base.name}annotations.txt"
    return [base.with_suffix(".atr"), base.parent / dump, base.parent.parent / "annotations" / dump]


def find_annotations(header: Path) -> Annotations | None:
    """The record's annotations from the first of ``annotation_paths`` that exists, else None."""
    for path in annotation_paths(header):
        if path.is_file():
            return (
                read_atr(path.with_suffix("")) if path.suffix == ".atr" else read_annotations(path)
            )
    return None


MATCH_TOLERANCE_S = 0.15
"""How far apart (seconds) a detected beat and an annotated or listed beat may be to match."""


def match_beats(detected: np.ndarray, annotated: np.ndarray, tolerance: int) -> np.ndarray:
    """For each detected peak (sorted, (n,)), the index of the annotation matched to it, or -1.

    Each annotation (sorted, (m,)) goes to its nearest unmatched detection within ``tolerance``
    samples; a detection is matched at most once.
    """
    matched = np.full(detected.size, -1, dtype=np.int64)
    positions = np.searchsorted(detected, annotated)
    for k, (pos, sample) in enumerate(zip(positions, annotated, strict=True)):
        near = [
            j
            for j in (pos - 1, pos)
            if 0 <= j < detected.size
            and matched[j] == -1
            and abs(int(detected[j]) - int(sample)) <= tolerance
        ]
        if near:
            matched[min(near, key=lambda j: abs(int(detected[j]) - int(sample)))] = k
    return matched
