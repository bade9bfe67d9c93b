"""``ecgmon report [--day D | --days N] --out DIR``: the period's self-contained HTML page.

Days are UTC calendar days; ``--days N`` ends yesterday (the last complete day). The page
(``DIR/index.html``) embeds every picture, so it opens from a file or a mail attachment with no
network. The ``report`` flow (daily deployment in prefect.yaml) writes the same page and publishes
it as the Prefect artifact ``daily-report``.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from ecgmon.settings import get_settings


def cmd_report(args: argparse.Namespace) -> int:
    from ecgmon.clock import utcnow
    from ecgmon.report.period import report_period
    from ecgmon.tasks.report import build_report

    period = report_period(args.day, args.days, utcnow())
    built = build_report(get_settings(), period, Path(args.out))
    if args.json:
        print(json.dumps({"path": str(built.path), "period": str(period), **built.figures}))
    else:
        print(f"report of {period} written to {built.path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="write the self-contained HTML report of UTC days")
    when = report.add_mutually_exclusive_group()
    when.add_argument("--day", type=date.fromisoformat, help="one UTC day, YYYY-MM-DD")
    when.add_argument("--days", type=int, help="the N UTC days ending yesterday (default 1)")
    report.add_argument("--out", required=True, type=Path, help="folder for index.html")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_report)
