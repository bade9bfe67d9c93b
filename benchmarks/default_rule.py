"""The default threshold rule, chosen across datasets on validation folds of training beats only.

    python benchmarks/default_rule.py --data ../shared/data/ecg5000 [--splits ucr tf]
        [--seeds 5] [--epochs 60] --json

For each split and seed, the default architecture is cross-fitted on the normal training beats
with the labelled abnormal training beats scored by the fold models (steps 1-2 of
``models/evaluation/selection.py``); every candidate rule gets its validation F1 and
false-alarm rate over the folds. :func:`choose_default_rule` then picks the one default: the
highest worst-split mean validation F1 among the rules whose mean validation false-alarm rate is
within the budget on every split. No test beat is read. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgmon.models.autoencoder.architectures import DEFAULT_ARCHITECTURE
from ecgmon.models.evaluation.labelled import load_split
from ecgmon.models.evaluation.selection import (
    FALSE_ALARM_BUDGET,
    Candidate,
    choose_default_rule,
    select,
)


def candidate_tables(
    data: Path, splits: list[str], seeds: int, epochs: int
) -> dict[str, list[list[Candidate]]]:
    """``tables[split][seed]``: the default architecture's candidate rules on training folds."""
    tables: dict[str, list[list[Candidate]]] = {}
    for split in splits:
        train, _ = load_split(data, split)  # the test part is never used
        mask = train.normal_mask(1.0)
        for seed in range(seeds):
            chosen = select(
                train.signals[mask],
                train.signals[~mask],
                epochs=epochs,
                seed=seed,
                architectures=(DEFAULT_ARCHITECTURE,),
            )
            tables.setdefault(split, []).append(chosen.candidates)
            print(f"{split} seed {seed} done", file=sys.stderr, flush=True)
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=["ucr", "tf"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="(the JSON line is always printed)")
    args = parser.parse_args(argv)
    tables = candidate_tables(args.data, args.splits, args.seeds, args.epochs)
    chosen, rows = choose_default_rule(tables)
    for row in rows:
        figures = "; ".join(
            f"{d} F1 {row.mean_f1[d]:.4f} (worst seed {row.worst_seed_f1[d]:.4f}) "
            f"false alarms {row.false_alarm_rate[d]:.4f}"
            for d in row.mean_f1
        )
        print(f"{row.method} {row.param:g}: {figures}", file=sys.stderr)
    print(
        json.dumps(
            {
                "architecture": DEFAULT_ARCHITECTURE,
                "splits": args.splits,
                "seeds": args.seeds,
                "false_alarm_budget": FALSE_ALARM_BUDGET,
                "chosen": asdict(chosen),
                "rules": [asdict(r) for r in rows],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
