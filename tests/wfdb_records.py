"""Writing small WFDB records for tests (one MLII lead, format 212, 360 Hz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FS = 360.0


def write_record(folder: Path, name: str, signal: np.ndarray, fs: float = FS) -> None:
    """Write ``signal`` (n,) in mV as record ``name`` (``.hea`` + ``.dat``) in ``folder``."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=signal[:, None],
        fmt=["212"],
        adc_gain=[200.0],
        baseline=[0],
        write_dir=str(folder),
    )
