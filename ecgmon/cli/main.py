"""The ``ecgmon`` command line: each command starts a flow or a plain step, with clear errors."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The first start of the local Prefect API migrates its database; on a busy 2-core machine that
# takes longer than Prefect's default wait.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# Arrow takes its default pool when first imported: jemalloc reuses freed batch buffers and
# returns them to the OS after a second (ecgmon.memory; setting it at run time misses some).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

# Imported after the environment above is set: what they import reads it.
from ecgmon.cli.ops import secret_free
from ecgmon.errors import EcgmonError
from ecgmon.settings import get_settings
from ecgmon.storage.engine import redact_url

# Modules that add sub-commands: each has ``register(subparsers)``.
EXTENSIONS: list[str] = [
    "ecgmon.cli.ops",
    "ecgmon.cli.recordings",
    "ecgmon.cli.rejected",
    "ecgmon.cli.baseline",
    "ecgmon.cli.alerts",
    "ecgmon.cli.report",
    "ecgmon.cli.curate",
]


def _print_json(payload: dict) -> None:
    """The last line of stdout: one JSON object."""
    print(json.dumps(payload, default=_jsonable, sort_keys=True))


def _jsonable(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from ecgmon.storage.engine import create_db_engine, upgrade_schema

    settings = get_settings()
    head = upgrade_schema(create_db_engine(settings.database_url_plain))
    print(f"database {redact_url(settings.database_url_plain)} is at schema revision {head}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ecgmon.flows.train import train_flow

    _require_path(args.data)

    result = train_flow(
        data=str(args.data),
        architecture=args.architecture,
        epochs=args.epochs,
        seed=args.seed,
        promote=args.promote,
    )
    state = "promoted to champion" if args.promote else "registered as a candidate"
    print(
        f"model version {result['model_version']} {state}; threshold version "
        f"{result['threshold_version']}"
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ecgmon.flows.score import score_flow
    from ecgmon.tasks.scoring import check_score_inputs, whole_file_warning

    # the errors a user can cause are found before a flow run starts
    check_score_inputs(get_settings(), str(args.source), args.table, args.model_version)

    result = score_flow(
        source=secret_free(str(args.source)),
        table=args.table,
        model_version=args.model_version,
        batch_size=args.batch_size,
    )
    print(
        f"read {result['n_read']}, scored {result['n_scored']}, rejected {result['n_rejected']}, "
        f"flagged {result['n_flagged']} (model {result['model_version']}, threshold "
        f"{result['threshold']:.5f}, run {result['run_id']})"
    )
    for rejected in result["files_rejected"]:
        print(f"ecgmon: warning: {whole_file_warning(rejected)}", file=sys.stderr)
    if args.json:
        _print_json(result)
    return 0


def _require_path(path: Path) -> None:
    from ecgmon.errors import SourceNotFoundError

    if not Path(path).exists():
        raise SourceNotFoundError(f"{path} does not exist")


def cmd_models_list(args: argparse.Namespace) -> int:
    from ecgmon.models.registry.versions import list_versions
    from ecgmon.storage.engine import create_db_engine

    rows = list_versions(create_db_engine(get_settings().database_url_plain))
    if args.json:
        _print_json({"versions": [{k: r[k] for k in _MODEL_COLUMNS} for r in rows]})
        return 0
    print(
        f"{'version':>7}  {'architecture':<19} {'status':<10} {'length':>6} {'train':>6}  "
        f"{'patient':<8} created"
    )
    for r in rows:
        print(
            f"{r['version']:>7}  {r['architecture']:<19} {r['status']:<10} "
            f"{r['input_length']:>6} {r['train_size']:>6}  {r['patient_id'] or '-':<8} "
            f"{r['created_at']}"
        )
    if not rows:
        print("no model versions yet; run `ecgmon train --data PATH --promote`")
    return 0


_MODEL_COLUMNS = (
    "version",
    "architecture",
    "status",
    "input_length",
    "train_size",
    "created_at",
    "promoted_at",
    "artifact_sha256",
    "patient_id",
    "parent_version",
)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ecgmon.models.evaluation.labelled import evaluate

    summary, runs = evaluate(
        Path(args.data),
        args.split,
        args.architecture,
        args.seeds,
        args.epochs,
        args.normal_label,
        args.threshold_method,
        args.threshold_param,
        args.select,
    )
    if args.report:
        from ecgmon.models.evaluation.report import write_report

        path = write_report(Path(args.report), summary, runs)
        print(f"report written to {path}", file=sys.stderr)
    keys = ("auroc", "f1", "precision", "recall", "accuracy", "false_alarm_rate")
    print(
        f"{summary['architecture']}{' (selected)' if args.select else ''} on {args.split} split, "
        f"{args.seeds} seed(s), threshold {', '.join(summary['threshold_rule'])}: "
        + ", ".join(f"{k}={summary[k]:.4f}" for k in keys)
    )
    if args.json:
        _print_json(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ecgmon.flows.demo import run_demo

    run_demo(data=args.data, beats_per_day=args.beats_per_day, epochs=args.epochs, say=print)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgmon", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="create or upgrade tables and views").set_defaults(
        func=cmd_db_upgrade
    )

    train = sub.add_parser("train", help="train and register a model version")
    train.add_argument("--data", required=True, type=Path, help="UCR/CSV/Parquet file or folder")
    train.add_argument("--architecture", help="model architecture (default: the best measured)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--promote", action="store_true", help="make it the champion")
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="score new records of a source")
    score.add_argument("--source", required=True, help="Parquet file or folder, or a database URL")
    score.add_argument("--table", help="table name when --source is a database URL")
    score.add_argument("--model-version", type=int, help="default: the champion")
    score.add_argument("--batch-size", type=int)
    score.add_argument("--json", action="store_true")
    score.set_defaults(func=cmd_score)

    models = sub.add_parser("models", help="the model registry")
    msub = models.add_subparsers(dest="models_command", required=True)
    mlist = msub.add_parser("list", help="list model versions")
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(func=cmd_models_list)

    ev = sub.add_parser("evaluate", help="train and evaluate on labelled beats")
    ev.add_argument("--data", required=True, type=Path)
    ev.add_argument(
        "--split",
        choices=("tf", "ucr", "mitbih"),
        default="tf",
        help="tf: the tutorial's split of ECG5000; ucr: its official files; mitbih: beats of "
        "annotated MIT-BIH records (records/, annotations/), first 5 minutes of each train",
    )
    ev.add_argument("--architecture")
    ev.add_argument("--seeds", type=int, default=1)
    ev.add_argument("--epochs", type=int, default=60)
    ev.add_argument("--normal-label", type=float, default=1.0)
    ev.add_argument("--threshold-method", choices=("mean_std", "quantile", "fpr"))
    ev.add_argument("--threshold-param", type=float, help="k, q or fpr of the method")
    ev.add_argument(
        "--select",
        action="store_true",
        help="choose architecture and threshold rule on validation folds of the training beats "
        "first (docs/results.md); the test beats are scored only after the choice",
    )
    ev.add_argument("--report", type=Path, help="folder for PNG pictures and a summary")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    demo = sub.add_parser("demo", help="run the whole pipeline once on ECG5000 or synthetic beats")
    demo.add_argument("--data", type=Path, help="ECG5000 folder or file (default: found or built)")
    demo.add_argument("--beats-per-day", type=int, default=300)
    demo.add_argument("--epochs", type=int, default=40)
    demo.set_defaults(func=cmd_demo)

    for module in EXTENSIONS:
        __import__(module, fromlist=["register"]).register(sub)
    return parser


#: commands that load TensorFlow in this process, filtered when run from the command line (not
#: when ``main`` is called from Python); ``serve`` is left out (its flow runs may outlive it)
QUIET_TENSORFLOW_COMMANDS = frozenset(
    {"demo", "train", "score", "evaluate", "retrain", "recalibrate", "backfill", "baseline"}
)


class _QuietUserErrors(logging.Filter):
    """Drop the traceback Prefect logs for errors a user caused; the CLI states them in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EcgmonError):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_prefect_tracebacks() -> None:
    for name in (
        "prefect.task_runs",
        "prefect.flow_runs",
        "prefect.task_engine",
        "prefect.flow_engine",
    ):
        logging.getLogger(name).addFilter(_QuietUserErrors())


def _user_error(message: str) -> int:
    print(f"ecgmon: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if argv is None and not args.verbose and args.command in QUIET_TENSORFLOW_COMMANDS:
        from ecgmon.cli.quiet import filter_native_stderr

        filter_native_stderr()
    func: Callable[[argparse.Namespace], int] = args.func
    _quiet_prefect_tracebacks()
    from ecgmon.cli.progress import terminal_progress, wants_bars

    try:
        with terminal_progress(wants_bars(sys.stderr, bool(getattr(args, "json", False)))):
            return func(args)
    except EcgmonError as err:
        return _user_error(str(err))
    except (ValueError, FileNotFoundError) as err:
        if args.verbose:
            raise
        return _user_error(str(err))
    except KeyboardInterrupt:
        return _user_error("interrupted")
    except Exception as err:
        from sqlalchemy.exc import OperationalError

        from ecgmon.storage.engine import describe_connection_error

        if isinstance(err, OperationalError):
            url = redact_url(get_settings().database_url_plain)
            return _user_error(f"cannot use the database {url}: {describe_connection_error(err)}")
        raise


if __name__ == "__main__":
    sys.exit(main())
