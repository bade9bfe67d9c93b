"""``ecgmon alerts resend|setup``: send what no alert reached, and make the Prefect side of alerts.

``resend`` alerts the flagged beats no alert has reached yet (``anomalies.alert_state`` not
``sent``): of one run, or of every score run (``ecgmon.tasks.alert_resend``). ``setup`` creates
or updates, against the configured Prefect API, the notification blocks of the configured
channels and the Automations of ``automations/`` (``ecgmon.tasks.alert_setup``).
"""

from __future__ import annotations

import argparse
import json

from ecgmon.settings import get_settings

#: outcomes after which something is still waiting for an alert
UNDELIVERED = ("failed", "partial", "unconfigured")


def cmd_resend(args: argparse.Namespace) -> int:
    from ecgmon.tasks.alert_resend import resend_pending

    outcomes = resend_pending(get_settings(), args.run_id)
    for run_id, outcome in outcomes.items():
        print(f"run {run_id}: {outcome.state} ({outcome.detail})")
    if not outcomes:
        print("no flagged beat is waiting for an alert")
    if args.json:
        print(json.dumps({r: o.__dict__ for r, o in outcomes.items()}, sort_keys=True))
    return 1 if any(o.state in UNDELIVERED for o in outcomes.values()) else 0


def cmd_setup(args: argparse.Namespace) -> int:
    from ecgmon.tasks.alert_setup import setup_alerts

    result = setup_alerts(get_settings())
    for ref, block_id in result.blocks.items():
        print(f"notification block {ref} ({block_id})")
    for name, automation_id in result.automations.items():
        verb = "created" if name in result.created else "updated"
        print(f"automation {name!r} {verb} ({automation_id})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ecgmon alerts resend`` and ``ecgmon alerts setup``."""
    alerts = subparsers.add_parser("alerts", help="alerts: resend pending ones, Prefect setup")
    sub = alerts.add_subparsers(dest="alerts_command", required=True)
    resend = sub.add_parser("resend", help="alert flagged beats no alert has reached yet")
    resend.add_argument("--run-id", help="only this run (default: every score run)")
    resend.add_argument("--json", action="store_true")
    resend.set_defaults(func=cmd_resend)
    setup = sub.add_parser(
        "setup", help="create/update the Prefect notification blocks and Automations"
    )
    setup.set_defaults(func=cmd_setup)
