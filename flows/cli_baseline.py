"""``ecgmon baseline``: a per-patient threshold from a baseline strip of the patient's recording."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from ecgmon.errors import ConfigurationError

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
    from tasks.baseline import calibrate_patient

    if (args.start is None) != (args.end is None):
        raise ConfigurationError("give both --start and --end, or neither")
    if args.start is not None and args.minutes is not None:
        raise ConfigurationError("give --minutes or --start/--end, not both")
    if args.start is None:
        start, end = 0.0, 60.0 * (args.minutes if args.minutes is not None else DEFAULT_MINUTES)
    else:
        start, end = parse_moment(args.start), parse_moment(args.end)
    result = calibrate_patient(
        get_settings(),
        Path(args.source),
        args.patient,
        start,
        end,
        model_version=args.model_version,
        trim=not args.confirmed,
    )
    print(
        f"patient {result.patient_id}: threshold {result.threshold:.5f} (population "
        f"{result.population_threshold:.5f}) from {result.n_kept} of {result.n_beats} beats in "
        f"{result.start_s:g}..{result.end_s:g} s; threshold version {result.threshold_version} "
        f"of model version {result.model_version}, scores say baseline '{result.baseline}'"
    )
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``baseline`` sub-command."""
    cmd = sub.add_parser(
        "baseline",
        help="store a per-patient threshold from a baseline strip of a WFDB record",
    )
    cmd.add_argument("--source", required=True, type=Path, help="WFDB folder (*.hea + *.dat)")
    cmd.add_argument("--patient", required=True, help="patient id = record name (e.g. 100)")
    cmd.add_argument(
        "--minutes", type=float, help=f"the first N minutes (default {DEFAULT_MINUTES:g})"
    )
    cmd.add_argument("--start", help="strip start: offset (5min, 300) or ISO date-time")
    cmd.add_argument("--end", help="strip end: offset (15min, 900) or ISO date-time")
    cmd.add_argument("--model-version", type=int, help="default: the champion")
    cmd.add_argument(
        "--confirmed",
        action="store_true",
        help="a clinician confirmed the strip as normal rhythm: do not trim outlier beats",
    )
    cmd.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    cmd.set_defaults(func=cmd_baseline)
