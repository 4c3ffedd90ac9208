"""The git facts that provenance, lineage and run history record: commit, dirty flag, a file at a revision."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable

# dvc.lock is rewritten by `dvc repro` after every stage it runs, so counting it would mark every stage but
# the first of a run as dirty; the hashes it holds are recorded by lineage itself.
DIRTY_IGNORES = ("dvc.lock",)


class GitError(RuntimeError):
    """A git revision or file that does not exist, phrased for the user."""


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:  # no git installed: the same answers as outside a repository
        return subprocess.CompletedProcess(["git", *args], 127, "", "git not found")


def commit_and_dirty(cwd: str | Path = ".", outputs: Iterable[str] = ()) -> tuple[str | None, bool | None]:
    """(HEAD commit, uncommitted changes to tracked files?) of the repository at `cwd`; (None, None) outside git
    or before the first commit.

    dvc.lock and `outputs` (the pipeline's outs, relative to `cwd`) do not count: a run rewrites them, and a
    project that commits its reports would otherwise look dirty from its second run on."""
    cwd = Path(cwd)
    head = _git(cwd, "rev-parse", "--verify", "-q", "HEAD")
    if head.returncode != 0:
        return None, None
    excludes = [f":(exclude,literal){p}" for p in (*DIRTY_IGNORES, *outputs)]
    # Tracked files only: during a run DVC and earlier stages create untracked outputs (a data/.gitignore, reports)
    # in projects that do not ignore them, and a new untracked source file is hashed as a DVC dep anyway.
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes)
    return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


def is_revision(cwd: str | Path, rev: str) -> bool:
    return _git(Path(cwd), "rev-parse", "--verify", "-q", f"{rev}^{{commit}}").returncode == 0


def show_file(cwd: str | Path, rev: str, path: str) -> str | None:
    """The text of `path` (relative to `cwd`) at `rev`; None when it is not in that commit."""
    # `rev:./path` is relative to cwd, so a project in a subfolder of the repository works too.
    proc = _git(Path(cwd), "show", f"{rev}:./{path}")
    return proc.stdout if proc.returncode == 0 else None


def resolve_revision(cwd: str | Path, rev: str) -> str:
    proc = _git(Path(cwd), "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
    if proc.returncode != 0:
        raise GitError(f"{rev} is not a git revision of {Path(cwd).resolve()}")
    return proc.stdout.strip()
