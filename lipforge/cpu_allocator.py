"""Keep freed memory inside the process instead of handing it back to the OS (glibc malloc only).

Why: a generator step on the CPU allocates and frees tensors of 10-120 MB (activations of 80 frames of 96 px, VGG
features). glibc serves every allocation above its mmap threshold (32 MB at most) with a fresh mmap and unmaps it
on free, and a thread other than the main one (Ray Train runs the training loop in one) allocates from its own
arena of mmapped heaps, which it also hands back; so every step page-faults and zeroes each large tensor again.
On the 2-core sample-corpus machine that was about a quarter of a G_L step's time
(`python benchmarks/allocator.py`). With mmap off, one arena for every thread and the heap's top trimmed only past
2 GiB, freed blocks are reused. Nothing
else changes: the same kernels run on the same values (the benchmark checks that the trained weights are identical
byte for byte). The cost: a process keeps its peak heap until it exits, and its threads share one arena's lock.
A thread keeps the arena it first used, so a process whose threads have started (a Ray worker, whose training loop
runs in a thread) gets the same settings from the environment glibc reads at start-up (`worker_env`; `ray_session`
passes it to every worker of the job); `keep_freed_memory` sets them in a running process (a stage's driver).

`LIPFORGE_KEEP_FREED_MEMORY=0` switches it off (e.g. to compare, or where many small processes share little memory).
"""
from __future__ import annotations

import ctypes
import os
import platform

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
TRIM_THRESHOLD_BYTES = 2 ** 31 - 1   # mallopt takes an int: the largest it accepts
OPT_OUT = "LIPFORGE_KEEP_FREED_MEMORY"

_status: str | None = None


def opted_out() -> bool:
    return os.environ.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off")


def worker_env() -> dict[str, str]:
    """The same settings as environment variables, for processes about to start (glibc reads them before any
    thread exists); empty when opted out."""
    if opted_out():
        return {}
    return {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES), "MALLOC_ARENA_MAX": "1"}


def keep_freed_memory() -> str:
    """Tell glibc malloc to keep freed memory (see the module doc); idempotent, once per process.

    Returns what happened, for the provenance: "on", "off (LIPFORGE_KEEP_FREED_MEMORY=0)", or
    "unavailable (<why>)" where the C library is not glibc."""
    global _status
    if _status is not None:
        return _status
    if opted_out():
        return f"off ({OPT_OUT}=0)"
    libc_name, _ = platform.libc_ver()
    if libc_name != "glibc":
        _status = f"unavailable (C library {libc_name or 'unknown'}, not glibc)"
        return _status
    libc = ctypes.CDLL(None)
    # mallopt returns 1 on success, 0 on error
    ok = all(libc.mallopt(option, value) == 1 for option, value in
             ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (M_ARENA_MAX, 1)))
    _status = "on" if ok else "unavailable (mallopt refused)"
    return _status


def allocator_status() -> str:
    """What `keep_freed_memory` did in this process, without doing it (for records): its status, or
    "not applied in this process" where nothing called it (opted out reads as such either way)."""
    if _status is not None:
        return _status
    if opted_out():
        return f"off ({OPT_OUT}=0)"
    return "not applied in this process"
