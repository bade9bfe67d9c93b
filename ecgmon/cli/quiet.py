"""Keep TensorFlow's GPU probe off a user's terminal on a machine without a GPU.

Importing TensorFlow and placing the first model print lines such as ``Could not find cuda
drivers on your machine`` (``cudart_stub.cc``), ``failed call to cuInit`` (``cuda_platform.cc``)
and the oneDNN notice, from C++ and before its logging is set up (and, on every fit, a harmless
``NodeDef mentions attribute use_unbounded_threadpool`` line of tf.data): ``TF_CPP_MIN_LOG_LEVEL``
does not silence them. They are not errors for a CPU machine. :func:`filter_native_stderr`
routes the process's file descriptor 2 through a thread that drops exactly those lines and passes
every other line on, in order, so real errors still show. ``ecgmon -v`` leaves stderr untouched.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

#: the probe and start-up notices of TensorFlow's native code on a machine without a GPU
PROBE_LINE = re.compile(
    rb"cudart_stub\.cc|cuda_platform\.cc:\d+\] failed call to cuInit|cuda_(dnn|fft|blas)\.cc"
    rb"|oneDNN custom operations are on|All log messages before absl::InitializeLog"
    rb"|cpu_feature_guard\.cc|computation_placer|TF-TRT Warning"
    # tf.data's graph names an attribute this runtime does not know; TensorFlow's own words:
    # "This may be expected ... Unknown attributes will be ignored" (once per fit, as E0000)
    rb"|NodeDef mentions attribute use_unbounded_threadpool"
)


def _pump(source: int, target: int) -> None:
    """Copy lines from ``source`` to ``target`` until end of file, leaving out probe lines."""
    pending = b""
    while chunk := os.read(source, 1 << 16):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = [line + b"\n" for line in lines if not PROBE_LINE.search(line)]
        if kept:
            os.write(target, b"".join(kept))
    if pending and not PROBE_LINE.search(pending):
        os.write(target, pending)
    os.close(source)


def filter_native_stderr() -> None:
    """From now on, drop TensorFlow's GPU probe lines from this process's stderr (fd 2)."""
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, terminal), daemon=True)
    pump.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the pump reads its end
        pump.join(timeout=5)

    atexit.register(restore)
