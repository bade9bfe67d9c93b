"""``ecgmon baseline``: a patient's own model and thresholds from a baseline strip of the
patient's recording (a time range, or a list of beats a clinician confirmed)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ecgmon.errors import ConfigurationError

if TYPE_CHECKING:  # imported late: the command line starts without Prefect
    from ecgmon.tasks.baseline import Strip

DEFAULT_MINUTES = 10.0


def parse_moment(text: str) -> float | datetime:
    """An offset into the record (``90``, ``90s``, ``5min``, ``00:05:00``) in seconds, or an ISO
    date-time (``2026-11-01T08:00:00``, UTC when no offset is given)."""
    import pandas as pd

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return pd.Timedelta(text).total_seconds()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"{text!r} is neither an offset (90, 90s, 5min, 00:05:00) nor an ISO date-time"
        ) from None


def cmd_baseline(args: argparse.Namespace) -> int:
    from ecgmon.settings import get_settings
    from ecgmon.tasks.baseline import calibrate_patient

    result = calibrate_patient(
        get_settings(),
        Path(args.source),
        args.patient,
        strip_of(args),
        model_version=args.model_version,
        trim=not args.confirmed,
        patient_model=not args.threshold_only,
    )
    print(
        f"patient {result.patient_id}: strip {result.strip}, {result.n_beats} beats"
        + (f" ({result.n_unmatched} listed beats not detected)" if result.n_unmatched else "")
    )
    if result.patient_model_version is not None:
        print(
            f"  patient model version {result.patient_model_version} (shape + RR) from "
            f"{result.patient_model_beats} beats: threshold {result.patient_threshold:.3f}, "
            f"threshold version {result.patient_threshold_version}"
        )
    else:
        print(f"  {result.note}")
    print(
        f"  autoencoder (model version {result.model_version}) threshold for this patient "
        f"{result.threshold:.5f} (population {result.population_threshold:.5f}) from "
        f"{result.n_kept} beats; threshold version {result.threshold_version}"
    )
    print(f"  scores of this patient will say baseline '{result.baseline}'")
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    return 0


def strip_of(args: argparse.Namespace) -> Strip:
    """The baseline strip the arguments name: --beats FILE, --start/--end, or --minutes."""
    from ecgmon.tasks.baseline import Strip

    ranged = args.start is not None or args.end is not None or args.minutes is not None
    if args.beats is not None:
        if ranged:
            raise ConfigurationError("give --beats or a time range (--minutes, --start/--end)")
        return Strip(beats_file=Path(args.beats))
    if (args.start is None) != (args.end is None):
        raise ConfigurationError("give both --start and --end, or neither")
    if args.start is not None and args.minutes is not None:
        raise ConfigurationError("give --minutes or --start/--end, not both")
    if args.start is None:
        return Strip(0.0, 60.0 * (args.minutes if args.minutes is not None else DEFAULT_MINUTES))
    return Strip(parse_moment(args.start), parse_moment(args.end))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``baseline`` sub-command."""
    cmd = sub.add_parser(
        "baseline",
        help="fit a patient's own model and thresholds from a baseline strip of a WFDB record",
        description="The strip is the first --minutes (default 10), a --start/--end range "
        "(outlier beats trimmed unless --confirmed), or --beats FILE: beats a clinician "
        "confirmed, one R-peak sample index (or record id RECORD:LEAD:SAMPLE) per line, matched "
        "to the detected beats within 150 ms and used whole.",
    )
    cmd.add_argument("--source", required=True, type=Path, help="WFDB folder (*.hea + *.dat)")
    cmd.add_argument("--patient", required=True, help="patient id = record name (e.g. 100)")
    cmd.add_argument(
        "--minutes", type=float, help=f"the first N minutes (default {DEFAULT_MINUTES:g})"
    )
    cmd.add_argument("--start", help="strip start: offset (5min, 300) or ISO date-time")
    cmd.add_argument("--end", help="strip end: offset (15min, 900) or ISO date-time")
    cmd.add_argument(
        "--beats",
        type=Path,
        help="text/CSV file of confirmed baseline beats: one R-peak sample index per line",
    )
    cmd.add_argument("--model-version", type=int, help="population model (default: the champion)")
    cmd.add_argument(
        "--confirmed",
        action="store_true",
        help="a clinician confirmed the strip as normal rhythm: do not trim outlier beats",
    )
    cmd.add_argument(
        "--threshold-only",
        action="store_true",
        help="no patient model: only recalibrate the autoencoder's threshold for this patient",
    )
    cmd.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    cmd.set_defaults(func=cmd_baseline)
