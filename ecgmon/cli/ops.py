"""Operations sub-commands: retrain, recalibrate, backfill, models show|promote|rollback, serve,
deployments."""

from __future__ import annotations

import argparse
import json
import os
from datetime import date

from ecgmon.errors import ConfigurationError
from ecgmon.settings import get_settings

PARAM_OF_METHOD = {"k": "mean_std", "q": "quantile", "fpr": "fpr"}
SOURCE_URL_VARIABLE = "ECGMON_SOURCE_URL"


def secret_free(source: str) -> str:
    """A database URL travels to the in-process flow as ``env:NAME``, so the password never
    reaches Prefect's stored flow-run parameters nor ``pipeline_runs.parameters``."""
    if "://" not in source:
        return source
    os.environ[SOURCE_URL_VARIABLE] = source
    return f"env:{SOURCE_URL_VARIABLE}"


def cmd_retrain(args: argparse.Namespace) -> int:
    from ecgmon.flows.retrain import retrain_flow

    r = retrain_flow(
        data=str(args.data), architecture=args.architecture, epochs=args.epochs, seed=args.seed
    )
    verdict = "promoted to champion" if r["promoted"] else "rejected by the gate"
    print(
        f"model version {r['model_version']} {verdict} ({'; '.join(r['reasons'])}); "
        f"threshold version {r['threshold_version']}"
    )
    return 0


def method_and_param(args: argparse.Namespace) -> tuple[str | None, float | None]:
    """The threshold method and its one parameter from --method/--k/--q/--fpr."""
    given = {
        name: getattr(args, name) for name in PARAM_OF_METHOD if getattr(args, name) is not None
    }
    if len(given) > 1:
        raise ConfigurationError(f"give only one of --k, --q, --fpr (got {', '.join(given)})")
    method = args.method
    if given:
        ((name, value),) = given.items()
        if method is not None and PARAM_OF_METHOD[name] != method:
            raise ConfigurationError(
                f"--{name} belongs to --method {PARAM_OF_METHOD[name]}, not {method}"
            )
        return method or PARAM_OF_METHOD[name], value
    return method, None


def cmd_recalibrate(args: argparse.Namespace) -> int:
    from ecgmon.flows.recalibrate import recalibrate_flow

    method, param = method_and_param(args)
    r = recalibrate_flow(
        model_version=args.model_version,
        method=method,
        param=param,
        data=None if args.data is None else str(args.data),
    )
    what = "is now active" if r["added"] else "unchanged (identical to the active one)"
    print(
        f"model {r['model_version']}: threshold version {r['threshold_version']} "
        f"({r['method']} {r['params']}, value {r['value']:.5f}) {what}"
    )
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from ecgmon.flows.backfill import backfill_flow

    r = backfill_flow(
        source=secret_free(str(args.source)),
        start=args.start,
        end=args.end,
        model_version=args.model_version,
        table=args.table,
        task_runner=args.task_runner,
        dask_address=args.dask_address,
        workers=args.workers,
        batch_size=args.batch_size,
    )
    print(
        f"backfilled {r['days_done']} day(s) of {r['days_in_range']} in range "
        f"({r['days_skipped']} already done), scored {r['n_scored']}, flagged {r['n_flagged']} "
        f"(model {r['model_version']}, threshold version {r['threshold_version']})"
    )
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    from ecgmon.models.registry.versions import get_version
    from ecgmon.storage.engine import create_db_engine

    row = get_version(create_db_engine(get_settings().database_url_plain), args.version)
    row.pop("normal_losses", None)
    print(json.dumps(row, default=str, indent=2, sort_keys=True))
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    from ecgmon.tasks.gate import promote_by_hand

    promote_by_hand(get_settings(), args.version)
    print(f"model version {args.version} is the champion")
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from ecgmon.models.registry.versions import rollback
    from ecgmon.storage.engine import create_db_engine

    version = rollback(create_db_engine(get_settings().database_url_plain))
    print(f"rolled back: model version {version} is the champion again")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ecgmon.flows.serve import serve_all

    serve_all()
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    from ecgmon.resources import prefect_file

    print(prefect_file())
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD") from err


def register(sub: argparse._SubParsersAction) -> None:
    """Add the operations sub-commands to the ``ecgmon`` parser."""
    p = sub.add_parser("retrain", help="train a candidate and promote it only through the gate")
    p.add_argument("--data", required=True, help="curated beats (UCR/CSV/Parquet file or folder)")
    p.add_argument("--architecture")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("recalibrate", help="a new active threshold version, without retraining")
    p.add_argument("--model-version", type=int, help="default: the champion")
    p.add_argument("--method", choices=("mean_std", "quantile", "fpr"))
    p.add_argument("--k", type=float, help="mean_std: mean + k * std")
    p.add_argument("--q", type=float, help="quantile: the q-quantile, 0 < q < 1")
    p.add_argument("--fpr", type=float, help="fpr: share of normal beats flagged, 0 < fpr < 1")
    p.add_argument("--data", help="normal beats to score (default: the stored out-of-fold losses)")
    p.set_defaults(func=cmd_recalibrate)

    p = sub.add_parser("backfill", help="re-score past days of a source, one day at a time")
    p.add_argument("--source", required=True)
    p.add_argument("--table")
    p.add_argument("--start", required=True, type=_day, help="first day, YYYY-MM-DD")
    p.add_argument("--end", required=True, type=_day, help="last day (inclusive), YYYY-MM-DD")
    p.add_argument("--model-version", type=int, help="default: the champion")
    p.add_argument("--task-runner", choices=("threads", "dask"), default="threads")
    p.add_argument("--dask-address", help="scheduler of an existing Dask cluster (tcp://...)")
    p.add_argument("--workers", type=int, default=2, help="threads or local Dask workers")
    p.add_argument("--batch-size", type=int)
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser(
        "serve",
        help="serve the prefect.yaml flows on their schedules (needs "
        "a running `prefect server start`)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "deployments",
        help="print the path of the packaged prefect.yaml "
        "(prefect --no-prompt deploy --all --prefect-file PATH)",
    )
    p.set_defaults(func=cmd_deployments)

    msub = _models_subparsers(sub)
    p = msub.add_parser("show", help="one version's registry row and gate decision")
    p.add_argument("version", type=int)
    p.set_defaults(func=cmd_models_show)
    p = msub.add_parser("promote", help="make a version the champion")
    p.add_argument("version", type=int)
    p.set_defaults(func=cmd_models_promote)
    msub.add_parser("rollback", help="re-promote the previously promoted version").set_defaults(
        func=cmd_models_rollback
    )


def _models_subparsers(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The sub-commands of the existing ``models`` command (argparse keeps them private)."""
    models = sub.choices["models"]
    return next(a for a in models._actions if isinstance(a, argparse._SubParsersAction))
