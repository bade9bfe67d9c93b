"""A clinician's list of baseline beats: R-peak sample indices in a text or CSV file.

Format: one beat per line; the first comma-separated field is the R-peak sample index in the
record (an integer, as in WFDB annotations and viewers) or the beat's ``record_id``
(``100:MLII:10452``, as in ``scores`` and ``v_flagged_beats``). Blank lines, lines starting with
``#`` and one header line (e.g. ``sample,note``) are skipped. Listed beats are matched one-to-one
to the detected beats within 150 ms (the tolerance the evaluation uses).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgmon.errors import DataFormatError, SourceNotFoundError
from ecgmon.recordings import MATCH_TOLERANCE_S, match_beats

HINT = "are they R-peak sample indices of this record (sample = seconds × fs), not seconds?"
MAX_UNMATCHED_SHARE = 0.02
"""Listed beats the detector did not find may be at most this share of the list (it misses about
0.3 % of the beats on the shared records); more means a wrong record, lead or unit."""


def read_beat_list(path: Path, record: str, lead: str) -> np.ndarray:
    """Sorted unique R-peak sample indices (int64) listed in ``path`` for ``record``/``lead``."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"no beat list {path}")
    samples: list[int] = []
    first = True
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split(",")[0].strip().strip('"')
        if not text or line.lstrip().startswith("#"):
            continue
        sample = _sample(text, record, lead, f"{path} line {number}")
        header, first = sample is None and first, False
        if header:
            continue
        if sample is None:
            raise DataFormatError(
                f"{path} line {number}: {text!r} is neither an R-peak sample index nor a "
                f"record id {record}:{lead}:SAMPLE"
            )
        samples.append(sample)
    if not samples:
        raise DataFormatError(f"{path} lists no beats (one R-peak sample index per line)")
    return np.unique(np.asarray(samples, dtype=np.int64))


def _sample(text: str, record: str, lead: str, where: str) -> int | None:
    """The sample index of one entry, None when it is not a number or a record id."""
    parts = text.split(":")
    if len(parts) == 3 and parts[2].isdigit():
        if (parts[0], parts[1]) != (record, lead):
            raise DataFormatError(
                f"{where}: beat {text} belongs to {parts[0]}:{parts[1]}, not {record}:{lead}"
            )
        return int(parts[2])
    if text.isdigit():
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return None
    raise DataFormatError(f"{where}: {value:g} is not a whole sample index (seconds × fs)")


def match_listed_beats(
    detected: np.ndarray, listed: np.ndarray, fs: float, source: str
) -> tuple[np.ndarray, int]:
    """Indices into ``detected`` (sorted R peaks, (n,)) of the listed beats (m,) matched within
    150 ms, one-to-one, and how many listed beats matched none. Raises DataFormatError when
    none match, or more than MAX_UNMATCHED_SHARE of them do not (``source`` names the list)."""
    matched = match_beats(detected, listed, int(round(MATCH_TOLERANCE_S * fs)))
    chosen = np.flatnonzero(matched >= 0)
    n_unmatched = int(listed.size - chosen.size)
    if chosen.size == 0:
        raise DataFormatError(
            f"{source}: none of the {listed.size} listed beats is within 150 ms of a detected "
            f"beat; {HINT}"
        )
    if n_unmatched > MAX_UNMATCHED_SHARE * listed.size:
        found = set(listed[matched[chosen]].tolist())
        missing = [int(s) for s in listed if int(s) not in found][:5]
        raise DataFormatError(
            f"{source}: {n_unmatched} of {listed.size} listed beats match no detected beat "
            f"within 150 ms (e.g. samples {', '.join(map(str, missing))}); {HINT}"
        )
    return chosen, n_unmatched
