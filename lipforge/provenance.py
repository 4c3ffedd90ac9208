"""Provenance of one stage run: which code (git), machine, library versions and Ray clusters made its outputs.

The machine record names the CPU and the vector instructions its float kernels use: on a CPU, torch's kernels
round differently on different instruction sets, and thousands of training steps amplify that, so the same code,
data and params train different models on different CPU types (README, "Results on the sample corpus").

Written by `stage_main` after a successful run to reports/provenance/<stage>.json, declared in dvc.yaml as an
uncached output that nothing depends on (it holds a timestamp, so it changes on every run). `lipforge lineage`
reads it back.
"""
from __future__ import annotations

import copy
import json
import platform
import socket
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path

PROVENANCE_DIR = Path("reports/provenance")
VERSIONED_PACKAGES = ("torch", "ray", "dvc")
# The /proc/cpuinfo flags that decide which float kernels torch and oneDNN pick on x86.
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16")


def stage_name(main_module: str | None, argv: list[str]) -> str:
    """The stage name a stage process runs as: its module's last component ("face_crop"), and for foreach stages,
    which get their item as the first argument, "<module>@<argv[1]>" ("train_expert@eval").

    `main_module` is the `-m` module name (`__main__.__spec__.name`); None when run as a script, then the
    script's file name is used."""
    base = main_module.rsplit(".", 1)[-1] if main_module else Path(argv[0]).stem
    return f"{base}@{argv[1]}" if len(argv) > 1 else base


def provenance_path(name: str, root: Path = PROVENANCE_DIR) -> Path:
    return root / f"{name}.json"


def package_versions(names: tuple[str, ...] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed versions from package metadata (no import: torch alone takes seconds to import)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_description(cpuinfo: str, arch: str) -> dict:
    """{arch, model, kernel_flags} from the text of /proc/cpuinfo (pure). `model` is the first "model name" (None
    when absent, e.g. on some ARM kernels); `kernel_flags` the `KERNEL_FLAGS` the first "flags" line lists."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {"arch": arch, "model": fields.get("model name"), "kernel_flags": [f for f in KERNEL_FLAGS if f in flags]}


def current_machine() -> dict:
    """This machine's CPU (`cpu_description`) and, when the stage imported torch, the CPU capability torch's
    kernels dispatch to ("AVX512", "AVX2", ...) and the GPU it saw."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    machine = cpu_description(cpuinfo, platform.machine())
    if machine["model"] is None:
        machine["model"] = platform.processor() or None
    torch = sys.modules.get("torch")   # never imported here: a preprocessing stage should not pay for it
    if torch is not None:
        machine["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        # this process's device: Ray may show every GPU of a node to each of its workers
        machine["gpu"] = torch.cuda.get_device_name(torch.cuda.current_device()) if torch.cuda.is_available() else None
    return machine


def cpu_name(machine: dict) -> str:
    """The CPU of a `current_machine` record: its model, else its architecture."""
    return machine.get("model") or machine.get("arch") or "unknown CPU"


def machine_label(machine: dict) -> str:
    """One line naming a `current_machine` record: "AMD EPYC [avx2 fma avx512f]", plus " + <GPU>" when it saw one."""
    label = f"{cpu_name(machine)} [{' '.join(machine.get('kernel_flags', []))}]"
    return f"{label} + {machine['gpu']}" if machine.get("gpu") else label


def worker_record(rank: int) -> dict:
    """What one training worker records of itself: its rank, host, `current_machine` (called inside the worker,
    after torch is imported, so the record has torch's CPU capability and the worker's GPU) and whether glibc kept
    its freed memory (`lipforge.cpu_allocator`, applied by the worker's setup hook or the stage's driver; speed
    only, the arithmetic is the same either way)."""
    from lipforge.cpu_allocator import allocator_status

    return {"rank": rank, "host": current_host(), "machine": current_machine(),
            "keep_freed_memory": allocator_status()}


# The workers of every training run this process drove, in order (one entry per run): `runner.fit` records
# what its run's checkpoint says, and the stage's provenance names them. Process-global, as `clusters_used`.
_TRAINING_WORKERS: list[dict] = []


def record_training_workers(run: str, attempts: list[dict]) -> None:
    """Note the workers of training run `run`: one {"from_step", "workers": [worker_record, ...]} per attempt (the
    first run and each resume after an interruption, which may land on other machines)."""
    _TRAINING_WORKERS.append({"run": run, "attempts": copy.deepcopy(attempts)})


def training_workers() -> list[dict]:
    """Copies of the training runs recorded by `record_training_workers` in this process, oldest first."""
    return copy.deepcopy(_TRAINING_WORKERS)


def forget_training_workers() -> None:
    """Empty the record (`stage_main` does, before its stage runs: a process may run several stages)."""
    _TRAINING_WORKERS.clear()


def last_worker_machine(record: dict | None) -> dict | None:
    """The machine of rank 0 in the last attempt of the last training run a provenance record names (where the
    delivered model finished training), or None when it names none (an older record, or a stage that trains
    nothing)."""
    for run in reversed((record or {}).get("training_workers") or []):
        for attempt in reversed(run.get("attempts") or []):
            for worker in sorted(attempt.get("workers") or [], key=lambda w: w.get("rank", 0)):
                if worker.get("machine"):
                    return worker["machine"]
    return None


def build_record(name: str, dvc_stage: str | None, git_commit: str | None, git_dirty: bool | None, host: str,
                 versions: dict, started_at: datetime, seconds: float, ray_clusters: list[dict],
                 machine: dict | None = None, training_workers: list[dict] | None = None) -> dict:
    """The provenance record (pure: every fact is passed in). `machine` is the stage process's (the driver's);
    `training_workers` (the function of that name) those of the Ray Train workers that trained, which on a
    cluster are other machines."""
    return {
        "stage": name,
        # DVC's own name for the stage (DVC_STAGE, set by `dvc repro`): differs for list foreach stages
        # (scan_corpus@0 runs as scan_corpus@sample); None when the stage ran outside DVC.
        "dvc_stage": dvc_stage,
        "git_commit": git_commit,
        "git_dirty": git_dirty,
        "host": host,
        "machine": machine,
        "versions": versions,
        "started_at": started_at.isoformat(),
        "seconds": round(seconds, 3),
        "ray_clusters": ray_clusters,
        "training_workers": training_workers or [],
    }


def current_host() -> str:
    return socket.gethostname()


def write_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


def read_record(text: str | None) -> dict | None:
    """A provenance file's content; None when absent or unreadable (older runs have none)."""
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None
