"""Accepted nightly runs: saved under params history.accepted_dir/<run_id>/, and restored on a rejection.

A saved run is what DVC needs to bring its outputs back: its dvc.lock (the hash of every cached output),
its params.yaml, and copies of the outputs DVC does not cache (metrics such as reports/metrics.json, plots,
provenance: `cache: false` in dvc.yaml), at their project-relative paths. accepted.json names the run.
Which run is the last accepted one is the run history's call (lipforge.history.last_accepted); its run id
names the folder.

Restoring = the saved dvc.lock and uncached outputs copied back, then `dvc checkout`: DVC 3 relinks every
cached output from .dvc/cache (or, when the local cache lost them, `dvc pull` fetches them from the remote
the run was pushed to).
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from flows.dvc_cli import DvcResult, dvc_env, run_dvc, tail

RECORD = "accepted.json"
LOCK, PARAMS = "dvc.lock", "params.yaml"


class RestoreError(RuntimeError):
    """The previous accepted run could not be brought back; says what to run by hand."""


def uncached_outputs(project: Path) -> list[str]:
    """Project-relative paths of every stage output declared with `cache: false` (metrics, plots...)."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        paths = {os.path.relpath(out.fs_path, repo.root_dir) for stage in repo.index.stages
                 for out in stage.outs if not out.use_cache}
    return sorted(paths)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def save_accepted(project: Path, run_dir: Path, run_id: str, accepted_at: datetime, extra: dict) -> dict:
    """Copy the run's dvc.lock, params.yaml and uncached outputs into `run_dir`; returns its record."""
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} already exists; run ids are unique, so this is a second save of run "
                              f"{run_id}: remove the folder if it is a leftover")
    files = [LOCK, PARAMS] + [p for p in uncached_outputs(project) if (project / p).exists()]
    for rel in files:
        _copy(project / rel, run_dir / rel)
    record = {"run_id": run_id, "accepted_at": accepted_at.isoformat(), "files": files, **extra}
    (run_dir / RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def load_accepted(run_dir: Path) -> dict:
    """The record of the run saved in `run_dir` (with the folder as `dir`)."""
    record = run_dir / RECORD
    if not record.is_file():
        raise FileNotFoundError(f"{record} not found: the run history names {run_dir.name} as the last accepted "
                                f"run but its saved files are gone; restore {run_dir} from a backup, or record a "
                                f"new accepted run")
    return dict(json.loads(record.read_text()), dir=str(run_dir))


def push(project: Path, remote: str | None) -> DvcResult:
    """`dvc push` of every cached output in dvc.lock, to `remote` or the default remote."""
    return run_dvc(project, "push", *(["-r", remote] if remote else []), env=dvc_env(None))


def restore_accepted(project: Path, record: dict, remote: str | None) -> str:
    """Put the saved run's dvc.lock, uncached outputs and (via DVC) cached outputs back into the workspace."""
    run_dir = Path(record["dir"])
    for rel in record["files"]:
        if rel == PARAMS:
            # params.yaml is the user's configuration: restoring the model must not undo their edits.
            continue
        _copy(run_dir / rel, project / rel)
    checkout = run_dvc(project, "checkout", "--force", env=dvc_env(None))
    if checkout.ok:
        return f"restored run {record['run_id']} (dvc checkout)"
    pull = run_dvc(project, "pull", "--force", *(["-r", remote] if remote else []), env=dvc_env(None))
    if pull.ok:
        return f"restored run {record['run_id']} (dvc pull: the local cache lacked some outputs)"
    raise RestoreError(f"could not restore accepted run {record['run_id']}: dvc checkout and dvc pull failed:\n"
                       f"{tail(checkout.output, 10)}\n{tail(pull.output, 10)}\nThe workspace's dvc.lock is that "
                       f"run's; fix the remote/cache, then run `dvc pull --force`")
