"""Lineage of a report: the chain of stages from the raw corpus to it, and what differs between two such chains.

For every stage on the chain: cmd, params values and dep/out hashes (dvc.lock), the git commit, host, CPU and Ray
cluster it ran on (reports/provenance/<stage>.json), and the backends and weight files its own JSON reports
name. Everything here is pure: files are read through a `read_text(path) -> str | None` callable, so the same
code describes the working tree or any git revision.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from lipforge.dvclock import (PROVENANCE_DIR, LockedStage, LockError, data_hash, normalize_path, parse_lock, producers,
                              stage_of, upstream)
from lipforge.gitinfo import is_revision, resolve_revision, show_file
from lipforge.provenance import cpu_name, provenance_path, read_record

SCHEMA = 1
# A key of a stage report whose name holds one of these words records which backend or weight file made the
# output (face_crop.json `backend`/`weights`, align.json `backend_resolved`, expert `model_sha256`,
# metrics.json `backends`): collected generically, so a new report needs no change here.
PROVENANCE_WORDS = frozenset({"backend", "backends", "weights", "sha256", "provenance"})
# Provenance fields that say what made an output; the others (timestamps, durations, Ray's GCS port) change on
# every run and would make every re-run stage look different.
COMPARED_PROVENANCE = ("git_commit", "git_dirty", "host", "machine", "versions", "ray_clusters")
COMPARED_CLUSTER_KEYS = ("address", "ray_version", "nodes", "cpus", "gpus")
ABSENT = "<absent>"

ReadText = Callable[[str], "str | None"]


def _is_provenance_key(key: str) -> bool:
    return bool(PROVENANCE_WORDS & set(str(key).lower().split("_")))


def collect_backends(report, path: str = "") -> dict:
    """{dotted key: value} of every backend/weights/sha256/provenance entry of a report, found recursively.

    A nested mapping that holds such a key (a `{network, weights, file, sha256}` record) is kept whole, so a
    weight file's hash stays next to its name; at the top level of a report each key stands alone."""
    out: dict = {}
    if isinstance(report, dict):
        for key, value in report.items():
            sub = f"{path}.{key}" if path else str(key)
            if _is_provenance_key(key):
                out[sub] = value
            elif isinstance(value, dict) and any(_is_provenance_key(k) for k in value):
                out[sub] = value
            else:
                out.update(collect_backends(value, sub))
    elif isinstance(report, list):
        for i, value in enumerate(report):
            out.update(collect_backends(value, f"{path}.{i}" if path else str(i)))
    return out


def _is_provenance_out(path: str) -> bool:
    return path.startswith(PROVENANCE_DIR + "/")


def _stage_provenance(stage: LockedStage, read_text: ReadText) -> dict | None:
    """The stage's provenance record, with `matches_lock`: whether the file is the one dvc.lock recorded (False:
    the stage ran again outside DVC, or the lock is older than the file, so the record may describe another run;
    None: dvc.lock does not list the file)."""
    declared = {o.path: o.md5 for o in stage.outs if _is_provenance_out(o.path)}
    # The declared out is authoritative (scan_corpus@0 writes scan_corpus@sample.json); the name is a fallback.
    for path in list(declared) or [provenance_path(stage.name).as_posix()]:
        text = read_text(path)
        record = read_record(text)
        if record is not None:
            locked = declared.get(path)
            record["matches_lock"] = None if locked is None else hashlib.md5(text.encode()).hexdigest() == locked
            return record
    return None


def _stage_backends(stage: LockedStage, read_text: ReadText) -> dict:
    backends = {}
    for out in stage.outs:
        if not out.path.endswith(".json") or _is_provenance_out(out.path):
            continue
        text = read_text(out.path)
        if text is None:
            continue
        try:
            report = json.loads(text)
        except json.JSONDecodeError:
            continue
        found = collect_backends(report)
        if found:
            backends[out.path] = found
    return backends


def build_lineage(stages: dict[str, LockedStage], target: str, read_text: ReadText,
                  source: str = "working tree") -> dict:
    """The lineage record of `target` (a path some stage outputs), upstream stages first."""
    final = stage_of(stages, target)
    chain = upstream(stages, final)
    records, sources = [], {}
    for name in chain:
        stage = stages[name]
        deps = []
        for d in stage.deps:
            made_by = producers(stages, d.path, exclude=name)
            deps.append({"path": d.path, "md5": d.md5, "from": made_by})
            if not made_by:
                sources[d.path] = d.md5
        records.append({
            "name": name, "cmd": stage.cmd,
            "params": {k if file == "params.yaml" else f"{file}:{k}": v
                       for file, values in stage.params.items() for k, v in values.items()},
            "deps": deps,
            "outs": [{"path": o.path, "md5": o.md5} for o in stage.outs],
            "provenance": _stage_provenance(stage, read_text),
            "backends": _stage_backends(stage, read_text),
        })
    target_md5 = next((o.md5 for o in stages[final].outs if o.path == target), None)
    return {"schema": SCHEMA, "target": target, "target_md5": target_md5, "stage": final, "source": source,
            # The chain's stages that read the raw corpus (no upstream stage), and the corpus hash of the run
            # history (`lipforge.dvclock.data_hash`), so a lineage and a history row can be matched.
            "source_stages": [r["name"] for r in records if not any(d["from"] for d in r["deps"])],
            "data_hash": data_hash(stages),
            "stages": records, "sources": [{"path": p, "md5": h} for p, h in sorted(sources.items())]}


# ---- diff ------------------------------------------------------------------------------------------------

def _changes(old: dict, new: dict) -> dict:
    """{key: [old, new]} for keys whose values differ (a missing key reads ABSENT)."""
    out = {}
    for key in list(old) + [k for k in new if k not in old]:
        a, b = old.get(key, ABSENT), new.get(key, ABSENT)
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out[key] = [a, b]
    return out


def _compared_provenance(record: dict | None) -> dict:
    if not record:
        return {}
    out = {k: record.get(k) for k in COMPARED_PROVENANCE if k in record}
    if "ray_clusters" in out:
        out["ray_clusters"] = [{k: c.get(k) for k in COMPARED_CLUSTER_KEYS} for c in out["ray_clusters"] or []]
    if record.get("training_workers"):
        out["training_worker_machines"] = _distinct_worker_machines(record["training_workers"])
    return out


def _comparable(a: dict, b: dict) -> tuple[dict, dict]:
    """Drop the worker machines from both sides unless both recorded them: a record from before they were kept
    says nothing about them, which is not a change."""
    if "training_worker_machines" in a and "training_worker_machines" in b:
        return a, b
    drop = lambda d: {k: v for k, v in d.items() if k != "training_worker_machines"}  # noqa: E731
    return drop(a), drop(b)


def _distinct_worker_machines(runs: list[dict]) -> list[dict]:
    """The distinct machines the training workers ran on, in a fixed order. Their hosts, ranks and steps are left
    out: a cluster hands out other nodes on every run, and only the machine type can change the trained weights."""
    machines = {json.dumps(worker.get("machine"), sort_keys=True): worker.get("machine")
                for run in runs for attempt in run.get("attempts") or [] for worker in attempt.get("workers") or []}
    return [machines[key] for key in sorted(machines)]


def _flat_backends(stage: dict) -> dict:
    return {f"{report}:{key}": value for report, found in stage.get("backends", {}).items()
            for key, value in found.items()}


def diff_stage(old: dict, new: dict) -> dict:
    """What differs between two lineage records of one stage; {} when nothing does."""
    out: dict = {}
    if old["cmd"] != new["cmd"]:
        out["cmd"] = [old["cmd"], new["cmd"]]
    sections = {
        "params": (old["params"], new["params"]),
        "deps": ({d["path"]: d["md5"] for d in old["deps"]}, {d["path"]: d["md5"] for d in new["deps"]}),
        # Provenance files change on every run (timestamps): their content is compared below instead.
        "outs": ({o["path"]: o["md5"] for o in old["outs"] if not _is_provenance_out(o["path"])},
                 {o["path"]: o["md5"] for o in new["outs"] if not _is_provenance_out(o["path"])}),
        "backends": (_flat_backends(old), _flat_backends(new)),
        "provenance": _comparable(_compared_provenance(old.get("provenance")),
                                  _compared_provenance(new.get("provenance"))),
    }
    for section, (a, b) in sections.items():
        changed = _changes(a, b)
        if changed:
            out[section] = changed
    return out


def diff_lineage(old: dict, new: dict, old_label: str = "A", new_label: str = "B") -> dict:
    """Per stage, what changed from `old` to `new`; unchanged stages are left out."""
    a = {s["name"]: s for s in old["stages"]}
    b = {s["name"]: s for s in new["stages"]}
    changed = {}
    for name in [n for n in b if n in a]:
        d = diff_stage(a[name], b[name])
        if d:
            changed[name] = d
    # A git revision has no reports/ when they are not committed (this project ignores them): say so, since then
    # backends and provenance cannot differ in the diff.
    blind = [label for label, side in ((old_label, a), (new_label, b))
             if not any(s.get("provenance") or s.get("backends") for s in side.values())]
    return {"a": old_label, "b": new_label, "target": [old["target"], new["target"]],
            "added": [n for n in b if n not in a], "removed": [n for n in a if n not in b], "stages": changed,
            "without_reports": blind}


# ---- text and Mermaid -------------------------------------------------------------------------------------

def _short(h: str | None, n: int = 8) -> str:
    return (h or "-")[:n] + (".dir" if h and h.endswith(".dir") else "")


def _cluster_text(c: dict) -> str:
    num = lambda v: f"{v:g}" if isinstance(v, (int, float)) else str(v)  # noqa: E731
    return f"{c.get('address')} (ray {c.get('ray_version')}, {c.get('nodes')} node(s), {num(c.get('cpus'))} CPU, " \
           f"{num(c.get('gpus'))} GPU)"


def _machine_text(machine: dict | None) -> str:
    """The text after the host name: "(CPU model, torch CPU capability, GPU)" of a provenance machine record, or
    nothing for runs recorded without one. The CPU type matters: on a CPU it decides the trained weights."""
    if not machine:
        return ""
    parts = [cpu_name(machine)]
    if machine.get("torch_cpu_capability"):
        parts.append(f"torch {machine['torch_cpu_capability']}")
    if machine.get("gpu"):
        parts.append(machine["gpu"])
    return f" ({', '.join(parts)})"


def _training_worker_lines(runs: list[dict]) -> list[str]:
    """One line per attempt of each training run: from which step, on which workers (rank, host, machine)."""
    lines = []
    for run in runs:
        for attempt in run.get("attempts") or []:
            workers = "; ".join(f"rank {w.get('rank')} {w.get('host')}{_machine_text(w.get('machine'))}"
                                for w in attempt.get("workers") or [])
            lines.append(f"  trained from step {attempt.get('from_step')}: {workers or 'no workers recorded'}")
    return lines


def format_lineage(lineage: dict) -> str:
    lines = [f"lineage of {lineage['target']} (md5 {lineage['target_md5']}), made by stage {lineage['stage']}; "
             f"from {lineage['source']}",
             f"raw corpus read by: {', '.join(lineage['source_stages'])} (data hash {lineage['data_hash'][:12]})"]
    if lineage.get("target_note"):
        lines.append(f"note: {lineage['target_note']}")
    for s in lineage["stages"]:
        lines += ["", f"stage {s['name']}", f"  cmd: {s['cmd']}"]
        prov = s.get("provenance")
        if prov:
            dirty = " (uncommitted changes)" if prov.get("git_dirty") else ""
            commit = f"git {prov['git_commit']}" if prov.get("git_commit") else "no git commit"
            lines.append(f"  ran: {commit}{dirty} on "
                         f"{prov.get('host')}{_machine_text(prov.get('machine'))} at {prov.get('started_at')}, "
                         f"{prov.get('seconds')} s")
            if prov.get("matches_lock") is False:
                lines.append("  warning: this provenance file is not the one dvc.lock records (the stage ran "
                             "again outside `dvc repro`?); it may describe another run")
            clusters = prov.get("ray_clusters") or []
            lines.append("  ray: " + ("; ".join(_cluster_text(c) for c in clusters) if clusters else "not used"))
            lines += _training_worker_lines(prov.get("training_workers") or [])
        else:
            lines.append("  ran: no provenance file (stage ran before provenance was recorded)")
        if s["params"]:
            lines.append("  params:")
            lines += [f"    {k}: {json.dumps(v, default=str)}" for k, v in s["params"].items()]
        lines.append("  deps:")
        lines += [f"    {d['md5']}  {d['path']}" + (f"  <- {', '.join(d['from'])}" if d["from"] else "")
                  for d in s["deps"]]
        lines.append("  outs:")
        lines += [f"    {o['md5']}  {o['path']}" for o in s["outs"]]
        for report, found in s["backends"].items():
            lines.append(f"  backends and weights ({report}):")
            lines += [f"    {k}: {json.dumps(v, default=str)}" for k, v in found.items()]
    lines += ["", "sources (read by the chain, made by no stage):"]
    lines += [f"  {src['md5']}  {src['path']}" for src in lineage["sources"]]
    return "\n".join(lines)


def format_diff(diff: dict) -> str:
    lines = [f"lineage diff {diff['a']} -> {diff['b']}"]
    if diff["target"][0] != diff["target"][1]:
        lines.append(f"  target: {diff['target'][0]} -> {diff['target'][1]}")
    lines += [f"stage added: {n}" for n in diff["added"]] + [f"stage removed: {n}" for n in diff["removed"]]
    if not (diff["stages"] or diff["added"] or diff["removed"]):
        lines.append("no differences")
    for label in diff.get("without_reports", []):
        lines.append(f"note: {label} has no provenance or backend records (reports/ not in that git revision, or "
                     "stages that ran before provenance was recorded): only cmd, params and hashes are compared")
    fmt = lambda v: v if isinstance(v, str) else json.dumps(v, default=str)  # noqa: E731
    for name, d in diff["stages"].items():
        lines += ["", f"stage {name}"]
        if "cmd" in d:
            lines.append(f"  cmd: {d['cmd'][0]} -> {d['cmd'][1]}")
        for section in ("params", "deps", "outs", "backends", "provenance"):
            for key, (a, b) in d.get(section, {}).items():
                lines.append(f"  {section} {key}: {fmt(a)} -> {fmt(b)}")
    return "\n".join(lines)


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid(lineage: dict) -> str:
    """A Mermaid `graph TD` of the chain: one node per stage (name + its first out's short hash), edges labelled
    with the path that links two stages, the target report last."""
    ids = {s["name"]: f"s{i}" for i, s in enumerate(lineage["stages"])}
    lines = ["graph TD"]
    for s in lineage["stages"]:
        first = next((o for o in s["outs"] if not _is_provenance_out(o["path"])), None)
        out = f"<br/>{first['path']} {_short(first['md5'])}" if first else ""
        lines.append(f'  {ids[s["name"]]}["{_label(s["name"])}{_label(out)}"]')
    for s in lineage["stages"]:
        for d in s["deps"]:
            for src in d["from"]:
                if src in ids:
                    lines.append(f'  {ids[src]} -->|"{_label(d["path"])}"| {ids[s["name"]]}')
    lines.append(f'  target(["{_label(lineage["target"])} {_short(lineage["target_md5"])}"])')
    lines.append(f"  {ids[lineage['stage']]} --> target")
    return "\n".join(lines)


def mermaid_document(lineage: dict) -> str:
    return (f"# Lineage of {lineage['target']}\n\nWritten by `lipforge lineage --mermaid` from {lineage['source']} "
            f"(dvc.lock). Stage nodes show their first output's md5.\n\n```mermaid\n{mermaid(lineage)}\n```\n")


# ---- I/O edges: the working tree, a git revision, a lineage JSON file ---------------------------------------

def working_tree_reader(project: Path) -> ReadText:
    def read(path: str) -> str | None:
        p = project / path
        return p.read_text() if p.is_file() else None
    return read


def revision_reader(project: Path, rev: str) -> ReadText:
    return lambda path: show_file(project, rev, path)


def target_note(project: Path, lineage: dict) -> str | None:
    """Why the lineage may not describe the file on disk: a report edited or rewritten since dvc.lock."""
    path, locked = project / lineage["target"], lineage["target_md5"]
    if not path.is_file():
        return f"{lineage['target']} is not on disk; the lineage describes the version dvc.lock records"
    if locked and not locked.endswith(".dir") and hashlib.md5(path.read_bytes()).hexdigest() != locked:
        return (f"{lineage['target']} on disk differs from the version in dvc.lock (md5 {locked}); the lineage "
                f"describes that version. Run `dvc status` / `dvc repro` to bring them in line")
    return None


def lineage_at(project: Path, target: str, rev: str | None = None) -> dict:
    """The lineage of `target` in the working tree (rev None) or at a git revision."""
    target = normalize_path(str(Path(target).resolve().relative_to(project.resolve()))
                            if Path(target).is_absolute() else target)
    if rev is None:
        lock = project / "dvc.lock"
        if not lock.is_file():
            raise LockError(f"{lock} not found; run `dvc repro` first (lineage reads the hashes it records)")
        lineage = build_lineage(parse_lock(lock.read_text(), str(lock)), target, working_tree_reader(project))
        lineage["target_note"] = target_note(project, lineage)
        return lineage
    text = show_file(project, rev, "dvc.lock")
    if text is None:
        raise LockError(f"dvc.lock is not in git revision {rev}; commit it with the run it belongs to")
    commit = resolve_revision(project, rev)
    try:
        return build_lineage(parse_lock(text, f"{rev}:dvc.lock"), target, revision_reader(project, rev),
                             source=f"git revision {rev} ({commit[:12]})")
    except LockError as err:
        raise LockError(f"at git revision {rev}: {err}") from None


def load_side(project: Path, spec: str, target: str) -> tuple[dict, str]:
    """One side of `--diff`: a lineage JSON file (from `lipforge lineage --json`) or a git revision."""
    path = Path(spec)
    if path.is_file():
        try:
            lineage = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise LockError(f"{spec}: not JSON ({err.msg}); write lineage files with `lipforge lineage --json > FILE`")
        if not isinstance(lineage, dict) or "stages" not in lineage:
            raise LockError(f"{spec}: not a lineage file (no `stages`); write one with "
                            "`lipforge lineage --json > FILE`")
        return lineage, spec
    if is_revision(project, spec):
        return lineage_at(project, target, rev=spec), spec
    raise LockError(f"{spec}: neither a lineage JSON file nor a git revision of {project.resolve()}")
