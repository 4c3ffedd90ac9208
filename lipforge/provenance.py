"""Provenance of one stage run: which code (git), machine, library versions and Ray clusters made its outputs.

Written by `stage_main` after a successful run to reports/provenance/<stage>.json, declared in dvc.yaml as an
uncached output that nothing depends on (it holds a timestamp, so it changes on every run). `lipforge lineage`
reads it back.
"""
from __future__ import annotations

import json
import platform
import socket
from datetime import datetime
from importlib import metadata
from pathlib import Path

PROVENANCE_DIR = Path("reports/provenance")
VERSIONED_PACKAGES = ("torch", "ray", "dvc")


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


def build_record(name: str, dvc_stage: str | None, git_commit: str | None, git_dirty: bool | None, host: str,
                 versions: dict, started_at: datetime, seconds: float, ray_clusters: list[dict]) -> dict:
    """The provenance record (pure: every fact is passed in)."""
    return {
        "stage": name,
        # DVC's own name for the stage (DVC_STAGE, set by `dvc repro`): differs for list foreach stages
        # (scan_corpus@0 runs as scan_corpus@sample); None when the stage ran outside DVC.
        "dvc_stage": dvc_stage,
        "git_commit": git_commit,
        "git_dirty": git_dirty,
        "host": host,
        "versions": versions,
        "started_at": started_at.isoformat(),
        "seconds": round(seconds, 3),
        "ray_clusters": ray_clusters,
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
