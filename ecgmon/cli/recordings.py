"""``ecgmon evaluate-recordings``: per-patient baselines measured on annotated WFDB recordings."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def cmd_evaluate_recordings(args: argparse.Namespace) -> int:
    from ecgmon.models.evaluation.recordings import evaluate_folder

    result = evaluate_folder(
        Path(args.data),
        args.baseline_minutes,
        seed=args.seed,
        report_dir=args.report,
        detector=args.detector,
        baseline=args.baseline,
    )
    print(format_table(result))
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    return 0


def format_table(result: dict) -> str:
    """The per-record table (markdown) and the mean, as printed and as in docs/recordings.md."""
    cols = (
        "auroc",
        "f1",
        "false_alarm_rate",
        "n_baseline",
        "n_normal",
        "n_abnormal",
        "n_detected",
        "n_annotated",
        "sensitivity",
        "ppv",
    )
    lines = ["| record | " + " | ".join(cols) + " | in mean |", "|---" * (len(cols) + 2) + "|"]
    for name, row in result["per_record"].items():
        cells = [_cell(row.get(col)) for col in cols]
        used = "yes" if row["included"] else f"no ({row['reason']})"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {used} |")
    n_used = len(result["records_in_mean"])
    lines.append("")
    lines.append(
        f"mean AUROC {_cell(result['mean_auroc'], 4)} over {n_used} records; "
        f"detector sensitivity {result['sensitivity']:.4f}, PPV {result['ppv']:.4f}"
    )
    return "\n".join(lines + ["", format_aami(result)])


def format_aami(result: dict) -> str:
    """The AAMI EC57 table: per record (paced ones marked) and gross, and the false alarms."""
    cols = ("VEB Se", "VEB +P", "VEB TP/FN/FP", "SVEB Se", "SVEB +P", "SVEB TP/FN/FP")
    lines = ["| record | " + " | ".join(cols) + " | false alarms |", "|---" * 8 + "|"]
    rows = [(n, r) for n, r in result["per_record"].items() if r.get("aami")]
    rows.append(("gross", {"aami": result["aami"], "false_alarm_rate": result["false_alarm_mean"]}))
    for name, row in rows:
        cells = []
        for key in ("veb", "sveb"):
            a = row["aami"][key]
            cells += [_cell(a["se"]), _cell(a["ppv"]), f"{a['tp']}/{a['fn']}/{a['fp']}"]
        label = f"{name} (paced, excluded)" if row.get("paced") else name
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_cell(row['false_alarm_rate'])} |")
    worst = result["false_alarm_worst"]
    excluded = ", ".join(f"{n} ({why})" for n, why in result["aami"]["excluded"].items())
    lines += [
        "",
        f"AAMI gross over {', '.join(result['aami']['records'])}; excluded: {excluded or 'none'}. "
        "False alarms (share of normal-class beats flagged): "
        f"mean {_cell(result['false_alarm_mean'])}"
        + (f", worst {worst['record']} {worst['rate']:.3f}" if worst else ""),
    ]
    return "\n".join(lines)


def _cell(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def cmd_evaluate_scores(args: argparse.Namespace) -> int:
    from ecgmon.models.evaluation.stored_scores import evaluate_scores, read_scores
    from ecgmon.settings import get_settings
    from ecgmon.sources.wfdb_folder import wfdb_source_key
    from ecgmon.storage.engine import create_db_engine

    engine = create_db_engine(get_settings().database_url_plain)
    source = wfdb_source_key(args.source) if args.source is not None else None
    result = evaluate_scores(read_scores(engine, source), Path(args.data), args.after_minutes)
    cols = ("n_scored", "n_normal", "n_abnormal", "auroc", "f1", "false_alarm_rate", "recall")
    lines = ["| record | judged by | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for name, row in result["per_record"].items():
        cells = [_cell(row[col]) for col in cols]
        lines.append(f"| {name} | {', '.join(row['judged_by'])} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"mean AUROC {_cell(result['mean_auroc'], 4)}, mean false-alarm rate "
        f"{_cell(result['mean_false_alarm_rate'], 4)} over {len(result['records_in_mean'])} "
        f"records with >= 5 abnormal beats after minute {args.after_minutes:g}",
    ]
    print("\n".join(lines))
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate-recordings`` and ``evaluate-scores`` sub-commands."""
    ev = sub.add_parser(
        "evaluate-recordings",
        help="per-patient baselines on annotated WFDB recordings (records/, annotations/)",
    )
    ev.add_argument(
        "--data", required=True, type=Path, help="folder with records/ and annotations/"
    )
    ev.add_argument("--baseline-minutes", type=float, default=10.0)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument(
        "--baseline",
        choices=("labelled", "unlabelled"),
        default="labelled",
        help="baseline strip: the annotated normal-class beats of the window (a confirmed strip), "
        "or every beat of the window as it comes (trimmed fit)",
    )
    ev.add_argument(
        "--detector", choices=("vote", "xqrs", "neurokit"), default="vote", help="R-peak method"
    )
    ev.add_argument("--report", type=Path, help="folder for PNG pictures of top flagged beats")
    ev.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    ev.set_defaults(func=cmd_evaluate_recordings)

    es = sub.add_parser(
        "evaluate-scores",
        help="measure stored scores of WFDB sources against annotations (records/, annotations/)",
    )
    es.add_argument(
        "--data", required=True, type=Path, help="folder with records/ and annotations/"
    )
    es.add_argument("--source", type=Path, help="only the scores of this WFDB folder")
    es.add_argument(
        "--after-minutes", type=float, default=10.0, help="measure beats after the baseline"
    )
    es.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    es.set_defaults(func=cmd_evaluate_scores)
