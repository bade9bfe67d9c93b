"""Where the time of scoring a long WFDB recording goes; prints one JSON object.

    .venv/bin/python benchmarks/recording_speed.py --hours 24 --json [--cli]

A two-lead record of ``--hours`` hours is written the way ``../shared/acceptance/12-growing`` writes
its Holter day (the MIT-BIH records of ``../shared/data/mitbih`` end to end, repeated; format 16).
Measured, in CPU seconds of this process (``resource.getrusage``), the machine being shared:

- ``signal``: reading, detecting and cutting the whole record chunk by chunk
  (``new_recording_beats``, 30 minutes at a time), with reading and detection also on their own;
  ``realtime_factor_cpu`` = recorded seconds / these CPU seconds;
- ``fixed``: each heavy import in a fresh interpreter (CPU seconds), and the temporary Prefect
  server that a CLI run without ``PREFECT_API_URL`` starts (wall seconds to start and stop);
- with ``--cli``: ``ecgmon db upgrade``, a 3-epoch dense champion, then ``ecgmon score --source``
  on the record and once more with nothing new (a run's fixed cost alone), each with its CPU
  seconds (the process and its children) and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MITBIH = ROOT / ".." / "shared" / "data" / "mitbih" / "records"
IMPORTS = ("prefect", "keras", "neurokit2", "wfdb", "ecgmon.flows.score")


def cpu(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (or of its waited-for children)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def write_holter(folder: Path, hours: float) -> tuple[Path, float]:
    """A two-lead 360 Hz record ``holter`` of at least ``hours`` hours; its header and seconds."""
    import wfdb

    names = sorted(p.stem for p in MITBIH.glob("*.hea"))
    parts = [wfdb.rdrecord(str(MITBIH / n)).p_signal[:, :2].astype("float32") for n in names]
    count = math.ceil(hours * 3600 / (650000 / 360))
    signal = np.concatenate([parts[i % len(parts)] for i in range(count)]).astype("float64")
    wfdb.wrsamp("holter", fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=signal,
                fmt=["16", "16"], adc_gain=[200.0, 200.0], baseline=[0, 0],
                write_dir=str(folder))  # fmt: skip
    return folder / "holter.hea", signal.shape[0] / 360.0


def signal_costs(header: Path, seconds: float) -> dict:
    """CPU seconds of reading, detecting and cutting the whole record, 30 minutes at a time."""
    from ecgmon import recordings as rec

    start = cpu()
    beats = sum(len(item) for item in rec.new_recording_beats(header, 140))
    total = cpu() - start
    total_samples, fs = rec.record_size(header)
    step, read_s, detect_s = int(rec.CHUNK_S * fs), 0.0, 0.0
    for begin in range(0, total_samples, step):
        t0 = cpu()
        part = rec.read_recording(header, sampfrom=max(0, begin - int(rec.OVERLAP_S * fs)),
                                  sampto=min(total_samples, begin + step))  # fmt: skip
        t1 = cpu()
        rec.detect_r_peaks(part.signal, fs, cleaned=rec.clean_signal(part.signal, fs))
        read_s, detect_s = read_s + t1 - t0, detect_s + cpu() - t1
    return {
        "beats": beats,
        "cpu_seconds": round(total, 2),
        "read_cpu_seconds": round(read_s, 2),
        "detect_cpu_seconds": round(detect_s, 2),
        "cut_and_rest_cpu_seconds": round(total - read_s - detect_s, 2),
        "realtime_factor_cpu": round(seconds / total, 1),
    }


def import_costs() -> dict:
    """CPU seconds of each heavy import in a fresh interpreter (alone, not in addition)."""
    code = "import resource, sys; import {m}; u = resource.getrusage(resource.RUSAGE_SELF); print(u.ru_utime + u.ru_stime)"  # noqa: E501
    out = {}
    for module in IMPORTS:
        done = subprocess.run([sys.executable, "-c", code.format(m=module)], capture_output=True,
                              text=True, check=True)  # fmt: skip
        out[module] = round(float(done.stdout.strip().splitlines()[-1]), 2)
    bare = subprocess.run([sys.executable, "-c", code.format(m="os")], capture_output=True,
                          text=True, check=True)  # fmt: skip
    out["python_itself"] = round(float(bare.stdout.strip()), 2)
    return out


def temporary_server_seconds(home: Path) -> float:
    """Wall seconds to start and stop Prefect's temporary (ephemeral) server."""
    code = ("from prefect.server.api.server import SubprocessASGIServer as S; s = S(); "
            "import time; t = time.perf_counter(); s.start(); s.stop(); "
            "print(time.perf_counter() - t)")  # fmt: skip
    env = dict(os.environ, PREFECT_HOME=str(home))
    env.pop("PREFECT_API_URL", None)
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # as the CLI sets
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)  # fmt: skip
    return round(float(done.stdout.strip().splitlines()[-1]), 2)


def cli_costs(work: Path, header: Path, seconds: float) -> dict:
    """``ecgmon score`` on the record from scratch, then again with nothing new."""
    ecgmon = str(Path(sys.executable).with_name("ecgmon"))
    env = dict(os.environ, ECGMON_DATABASE_URL=f"sqlite:///{work / 'h.db'}")
    env |= {"ECGMON_MODEL_STORE": str(work / "models"), "PREFECT_HOME": str(work / "prefect")}
    train = ROOT / ".." / "shared" / "data" / "ecg5000" / "ECG5000_TRAIN.tsv"
    for args in (["db", "upgrade"], ["train", "--data", str(train), "--architecture", "dense",
                                     "--epochs", "3", "--promote"]):  # fmt: skip
        subprocess.run([ecgmon, *args], env=env, check=True, capture_output=True)
    runs = {}
    for name in ("from_scratch", "nothing_new"):
        c0, t0 = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([ecgmon, "score", "--source", str(header.parent)], env=env, check=True,
                       capture_output=True)  # fmt: skip
        wall, used = time.perf_counter() - t0, cpu(resource.RUSAGE_CHILDREN) - c0
        runs[name] = {"cpu_seconds": round(used, 1), "wall_seconds": round(wall, 1)}
    scratch = runs["from_scratch"]
    scratch["realtime_factor_cpu"] = round(seconds / scratch["cpu_seconds"], 1)
    scratch["realtime_factor_wall"] = round(seconds / scratch["wall_seconds"], 1)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--cli", action="store_true", help="also time full `ecgmon score` runs")
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecgmon-recording-speed-") as tmp:
        work = Path(tmp)
        (work / "rec").mkdir()
        header, seconds = write_holter(work / "rec", args.hours)
        result = {"hours": round(seconds / 3600, 2), "load_average": os.getloadavg()[0]}
        result["signal"] = signal_costs(header, seconds)
        result["fixed"] = {
            "import_cpu_seconds": import_costs(),
            "temporary_prefect_server_wall_seconds": temporary_server_seconds(work / "ph"),
        }
        if args.cli:
            result["cli"] = cli_costs(work, header, seconds)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
