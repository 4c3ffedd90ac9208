"""dvc.lock as a graph: which stage produced a path, what a stage was built from, which stages read raw data.

dvc.lock (not dvc.yaml) is the truth for what ran: it holds each stage's resolved cmd, the params values and
the hash of every dep and out at the time of the run. All functions here but `locked_outputs` are pure, on the
parsed YAML.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Outputs under this folder are reports, plots and provenance (metrics with timings, timestamps): never data,
# so they are left out of the data hash.
REPORTS_DIR = "reports"
PROVENANCE_DIR = "reports/provenance"


class LockError(ValueError):
    """A dvc.lock that cannot be read, or a path no stage in it produced; phrased for the user."""


@dataclass(frozen=True)
class Artifact:
    path: str
    md5: str | None


@dataclass(frozen=True)
class LockedStage:
    name: str
    cmd: str
    deps: tuple[Artifact, ...]
    outs: tuple[Artifact, ...]
    # {params file: {dotted key: value}}; values as dvc.lock recorded them.
    params: dict = field(default_factory=dict)


def normalize_path(path: str) -> str:
    """dvc.lock paths are posix and relative to the project root: 'a/./b/' -> 'a/b'."""
    norm = posixpath.normpath(path.replace("\\", "/"))
    return "" if norm == "." else norm


def entry_hash(entry: dict) -> str | None:
    """The content hash of one dep/out entry: DVC 3 names its algorithm in `hash` (md5); DVC 2 wrote `md5`;
    cloud deps carry `etag` or `checksum`."""
    algo = entry.get("hash", "md5")
    for key in (algo, "md5", "etag", "checksum"):
        if entry.get(key):
            return str(entry[key])
    return None


def flatten(obj, prefix: str = "") -> dict:
    """Nested mappings to dotted keys; lists and scalars are leaves."""
    if not isinstance(obj, dict) or (prefix and not obj):
        return {prefix: obj} if prefix else {}
    out: dict = {}
    for key, value in obj.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def parse_lock(text: str, source: str = "dvc.lock") -> dict[str, LockedStage]:
    """Stages of a dvc.lock text, in file order."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise LockError(f"{source}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stages", {}), dict):
        raise LockError(f"{source}: expected a mapping with `stages` (schema 2.0, DVC >= 2); regenerate it with "
                        "`dvc repro`")
    stages = {}
    for name, body in (raw.get("stages") or {}).items():
        body = body or {}
        stages[name] = LockedStage(
            name=name,
            cmd=" && ".join(body["cmd"]) if isinstance(body.get("cmd"), list) else str(body.get("cmd", "")),
            deps=tuple(Artifact(normalize_path(d["path"]), entry_hash(d)) for d in body.get("deps") or []),
            outs=tuple(Artifact(normalize_path(o["path"]), entry_hash(o)) for o in body.get("outs") or []),
            params={file: flatten(values or {}) for file, values in (body.get("params") or {}).items()},
        )
    return stages


def _overlaps(a: str, b: str) -> bool:
    """Same path, or one inside the other (a dir dep that holds another stage's file outs, or a file in a dir out)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def producers(stages: dict[str, LockedStage], path: str, exclude: str | None = None) -> list[str]:
    """Names of the stages (other than `exclude`) with an out that is, holds, or lies inside `path`."""
    path = normalize_path(path)
    return [s.name for s in stages.values() if s.name != exclude and any(_overlaps(path, o.path) for o in s.outs)]


def stage_of(stages: dict[str, LockedStage], path: str) -> str:
    """The stage whose outs hold `path`."""
    found = [s.name for s in stages.values() if any(normalize_path(path) == o.path or
                                                      normalize_path(path).startswith(o.path + "/") for o in s.outs)]
    if not found:
        raise LockError(f"no stage in dvc.lock outputs {path}; give a path relative to the project root that a "
                        "stage writes (e.g. reports/metrics.json), and run `dvc repro` if that stage never ran")
    return found[0]


def upstream(stages: dict[str, LockedStage], name: str) -> list[str]:
    """`name` and every stage it was built from, upstream first (each after all of its producers)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(n: str) -> None:
        if n in order or n in visiting:
            return
        visiting.add(n)
        for dep in stages[n].deps:
            for p in producers(stages, dep.path, exclude=n):
                visit(p)
        visiting.discard(n)
        order.append(n)

    visit(name)
    return order


def source_stages(stages: dict[str, LockedStage]) -> list[str]:
    """Stages that no other stage feeds: the ones that read the raw corpus (and code) directly."""
    return [s.name for s in stages.values() if not any(producers(stages, d.path, exclude=s.name) for d in s.deps)]


def data_hash(stages: dict[str, LockedStage]) -> str:
    """sha256 over the data outs (not reports/) of the source stages.

    The source stages' outs are the first hashed form of the raw corpus the pipeline saw (the generated sample
    corpus, or a scanned root's clip table with content hashes), so the same corpus gives the same hash whatever
    ran downstream; reports/ are left out because they hold timings and timestamps."""
    rows = sorted((name, o.path, o.md5) for name in source_stages(stages) for o in stages[name].outs
                  if not _overlaps(o.path, REPORTS_DIR))
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def output_paths(stages: dict[str, LockedStage]) -> list[str]:
    """Every out of every stage."""
    return [o.path for s in stages.values() for o in s.outs]


def locked_outputs(project) -> list[str]:
    """The outs recorded in `project`/dvc.lock; none when it is missing or unreadable (I/O edge)."""
    lock = Path(project) / "dvc.lock"
    try:
        return output_paths(parse_lock(lock.read_text(), str(lock))) if lock.is_file() else []
    except LockError:
        return []
