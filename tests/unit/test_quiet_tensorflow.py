"""TensorFlow's GPU probe lines do not reach a CPU user's terminal; every other line does."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796178168.819662   20582 port.cc:153] oneDNN custom operations are on. You may\n"
    "I0000 00:00:1796178168.821042   20582 cudart_stub.cc:31] Could not find cuda drivers on your"
    " machine, GPU will not be used.\n"
    "E0000 00:00:1796178289.844411   20582 cuda_platform.cc:52] failed call to cuInit: INTERNAL:"
    " CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
    "E0000 00:00:1796189888.349238   10567 node_def_util.cc:682] NodeDef mentions attribute"
    " use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; signature="
    "input_dataset:variant> This may be expected if your graph generating binary is newer than"
    " this binary.\n"
)
CHILD = f"""
import os, sys
from ecgmon.cli.quiet import filter_native_stderr
filter_native_stderr()
os.write(2, {PROBE.encode()!r})
os.write(2, b"E0000 real_failure.cc:1] a real native error\\n")
print("a Python warning", file=sys.stderr)
os.write(2, b"last line without newline")
"""


def test_probe_lines_are_dropped_and_other_lines_kept_in_order() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "E0000 real_failure.cc:1] a real native error",
        "a Python warning",
        "last line without newline",
    ]


@pytest.mark.slow
def test_train_from_the_command_line_prints_no_gpu_probe(
    tmp_path, synthetic_set, prefect_harness
) -> None:
    """The real thing: ``ecgmon train`` imports TensorFlow and builds a model."""
    import os

    import numpy as np
    from prefect.settings import PREFECT_API_URL

    data = tmp_path / "beats_TRAIN.tsv"
    beats = synthetic_set.signals[:60]
    np.savetxt(data, np.column_stack([np.ones(len(beats)), beats]), delimiter="\t")
    env = dict(
        os.environ,
        ECGMON_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
        ECGMON_MODEL_STORE=str(tmp_path / "models"),
        PREFECT_API_URL=str(PREFECT_API_URL.value()),  # the session's test server
    )
    ecgmon = [sys.executable, "-m", "ecgmon"]
    subprocess.run([*ecgmon, "db", "upgrade"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [*ecgmon, "train", "--data", str(data), "--architecture", "dense", "--epochs", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for probe in ("cudart_stub", "cuInit", "oneDNN custom operations"):
        assert probe not in done.stderr
