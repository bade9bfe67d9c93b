"""Keep a long score run flat in memory without paying for it in page faults.

A score run allocates and frees the same large buffers (tens of MB per batch) over and over, from
several threads. Left to the defaults, neither allocator returns them: Arrow's mimalloc pool keeps
its segments, and glibc raises its mmap threshold after the first large free, so later batch
arrays come from per-thread heaps that only grow. The opposite extreme, every block over 128 KiB
mapped fresh and unmapped on free, keeps memory flat but costs about one page fault per beat.
So (docs/performance.md, "Memory", has the measurements):

- Arrow allocates from its jemalloc pool, which reuses freed pages and gives them back to the OS
  after ``ARROW_DECAY_MS``: decoded Parquet batches recycle the previous batch's pages;
- glibc's mmap and trim thresholds are fixed at 16 MiB: inference chunks (16,384 beats x 140
  float32 = 9 MB) and other mid-size arrays are reused from the heap, while batch-sized arrays
  (28 MB of samples per 50,000 beats) are still mapped and returned on free.

``ARROW_DEFAULT_MEMORY_POOL=jemalloc`` in the environment (the ``ecgmon`` command and the
deployments set it) makes Arrow use that pool from its first allocation; setting the pool here,
at run time, misses allocations made before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pyarrow as pa

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
THRESHOLD_BYTES = 16 * 1024 * 1024  # glibc's mmap and trim thresholds, kept fixed from now on
ARROW_DECAY_MS = 1_000  # jemalloc returns pages freed longer ago than this
_done = False


def release_freed_buffers() -> None:
    """Once per process: Arrow allocates from jemalloc (the system allocator where the wheel has
    no jemalloc), and glibc's mmap/trim thresholds stay at 16 MiB instead of its dynamic ones
    (which earlier large frees raise)."""
    global _done
    if _done:
        return
    _done = True
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(ARROW_DECAY_MS)
    except NotImplementedError:  # pyarrow built without jemalloc
        pa.set_memory_pool(pa.system_memory_pool())
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name) if libc_name else None
        ok = libc is not None and all(
            libc.mallopt(option, THRESHOLD_BYTES) == 1
            for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc (musl, macOS): the Arrow part still applies
        ok = False
    log.debug("fixed glibc mmap threshold: %s", ok)
