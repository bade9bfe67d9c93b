"""Locate the shared real data (../shared/data beside the repository) for tests that need it.

Tests import this module directly (``from tests.shared_data import ...``), so it does not rely on
any conftest. Set ``ECGMON_SHARED_DATA`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_VARIABLE = "ECGMON_SHARED_DATA"


def shared_data_dir() -> Path | None:
    """The shared data folder (env ECGMON_SHARED_DATA or <repo>/../shared/data), None if absent."""
    configured = os.environ.get(ENV_VARIABLE)
    candidate = Path(configured) if configured else REPO_ROOT / ".." / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None


def shared_dataset(name: str) -> Path | None:
    """The folder ``name`` (e.g. "ecg5000") inside the shared data folder, None if absent."""
    root = shared_data_dir()
    if root is None or not (root / name).is_dir():
        return None
    return root / name


def missing_reason(name: str) -> str:
    """Why a test needing dataset ``name`` is skipped."""
    where = os.environ.get(ENV_VARIABLE) or str(REPO_ROOT / ".." / "shared" / "data")
    return f"shared dataset {name!r} not found under {where} (set {ENV_VARIABLE} to its parent)"


def copy_record_start(records: Path, name: str, seconds: float, folder: Path) -> Path:
    """Write the first ``seconds`` of MIT-BIH record ``name`` (from ``records``, a folder of
    ``*.hea``/``*.dat``) into ``folder`` as a WFDB record of the same name; returns ``folder``."""
    import wfdb

    stop = int(wfdb.rdheader(str(records / name)).fs * seconds)
    source = wfdb.rdrecord(str(records / name), sampto=stop, physical=False)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=source.fs,
        units=source.units,
        sig_name=source.sig_name,
        d_signal=source.d_signal,
        fmt=source.fmt,
        adc_gain=source.adc_gain,
        baseline=source.baseline,
        write_dir=str(folder),
    )
    return folder
