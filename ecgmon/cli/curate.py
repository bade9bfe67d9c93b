"""``ecgmon curate normal-beats``: export the normal beats the retrain deployment trains on.

From a labelled file (``--labelled``: the beats labelled normal) or from scored data
(``--scored SOURCE``: the beats the champion judged normal with a margin), to
``var/curated/normal_beats.parquet`` by default, the path ``prefect.yaml``'s retrain reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ecgmon.settings import get_settings
from ecgmon.sources.curated import CURATED_NORMAL_BEATS, DEFAULT_QUANTILE


def cmd_normal_beats(args: argparse.Namespace) -> int:
    from ecgmon.sources.curated import (
        loss_margin,
        normal_from_labelled,
        normal_from_scores,
        write_curated,
    )

    if args.labelled is not None:
        table = normal_from_labelled(args.labelled, args.normal_label)
    else:
        from ecgmon.models.registry.versions import (
            champion_version,
            get_version,
            normal_reference_losses,
        )
        from ecgmon.storage.engine import create_db_engine

        engine = create_db_engine(get_settings().database_url_plain)
        version = args.model_version if args.model_version is not None else champion_version(engine)
        get_version(engine, version)  # a clear error for a version that does not exist
        max_loss = loss_margin(normal_reference_losses(engine, version), args.quantile)
        table = normal_from_scores(engine, args.scored, version, max_loss)
    out = write_curated(table, args.out)
    length = len(table["signal"][0]) if table.num_rows else 0
    print(f"{table.num_rows} normal beats of {length} samples written to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ecgmon curate normal-beats``."""
    curate = subparsers.add_parser("curate", help="curated data for retraining")
    sub = curate.add_subparsers(dest="curate_command", required=True)
    normal = sub.add_parser(
        "normal-beats", help="export normal beats (from labels or scores) for the retrain"
    )
    origin = normal.add_mutually_exclusive_group(required=True)
    origin.add_argument(
        "--labelled", type=Path, help="labelled file (UCR .tsv/.txt, .csv, .parquet with label)"
    )
    origin.add_argument(
        "--scored", type=Path, help="a Parquet source already scored (file or folder)"
    )
    normal.add_argument("--normal-label", type=float, default=1.0, help="with --labelled")
    normal.add_argument("--model-version", type=int, help="with --scored (default: champion)")
    normal.add_argument(
        "--quantile",
        type=float,
        default=DEFAULT_QUANTILE,
        help="with --scored: keep beats with a loss at most this quantile of the model's "
        f"held-out normal losses (default {DEFAULT_QUANTILE}: their median)",
    )
    normal.add_argument("--out", type=Path, default=CURATED_NORMAL_BEATS)
    normal.set_defaults(func=cmd_normal_beats)
