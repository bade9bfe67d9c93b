"""``ecgmon rejected list|replay``: look at quarantined rows, and score them again after a fix.

``list`` shows rejected rows (source, key, reason, detail) not yet replayed. ``replay`` runs the
replay flow (``ecgmon.flows.replay``): the rows that kept a raw payload are validated again with
today's code and model, those that now pass are scored and leave quarantine.
"""

from __future__ import annotations

import argparse
import json

from ecgmon.settings import get_settings


def cmd_list(args: argparse.Namespace) -> int:
    from ecgmon.storage.engine import create_db_engine
    from ecgmon.storage.quarantine import rejected_rows

    engine = create_db_engine(get_settings().database_url_plain)
    rows = rejected_rows(
        engine, args.run_id, args.reason, args.source, not args.all, limit=args.limit
    )
    if args.json:
        keep = ("id", "source", "record_key", "reason", "detail", "run_id", "rejected_at")
        print(json.dumps({"rejected": [{k: r[k] for k in keep} for r in rows]}, default=str))
        return 0
    for r in rows:
        print(f"{r['id']:>6}  {r['reason']:<22} {r['record_key'][:60]:<60} {r['detail'][:60]}")
    print(f"{len(rows)} quarantined row(s)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ecgmon.flows.replay import replay_flow
    from ecgmon.tasks.scoring import resolve_judge

    resolve_judge(get_settings())  # no champion: found before a flow run starts
    totals = replay_flow(source=args.source, reason=args.reason)
    print(
        f"replayed {totals['n_replayed']}: scored {totals['n_scored']}, still rejected "
        f"{totals['n_still_rejected']} (run {totals['run_id']})"
    )
    if args.json:
        print(json.dumps(totals, sort_keys=True))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ecgmon rejected list`` and ``ecgmon rejected replay``."""
    rejected = subparsers.add_parser("rejected", help="quarantined input rows")
    sub = rejected.add_subparsers(dest="rejected_command", required=True)
    listing = sub.add_parser("list", help="list quarantined rows not yet replayed")
    listing.add_argument("--run-id")
    listing.add_argument("--reason", help="e.g. non_finite, wrong_length, unreadable_file")
    listing.add_argument("--source", help="source key, e.g. parquet:/data/incoming")
    listing.add_argument("--all", action="store_true", help="include rows already replayed")
    listing.add_argument("--limit", type=int, default=1000)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    again = sub.add_parser("replay", help="validate and score quarantined rows again")
    again.add_argument("--source", help="only this source key")
    again.add_argument("--reason", help="only rows rejected for this reason")
    again.add_argument("--json", action="store_true")
    again.set_defaults(func=cmd_replay)
