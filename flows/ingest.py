"""Nightly ingestion report: which clips under each corpus root are new compared with the current manifest.

DVC already notices new files (every scan_corpus@<i> stage depends on its root folder); this makes the
ingestion explicit in the nightly run's log. `discover_clip_ids` lists the roots (I/O, no file is opened),
`new_clips_per_root` compares (pure).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from lipforge.manifest.discover import discover
from lipforge.params import CorpusRoot

MANIFEST = Path("data/manifest/manifest.parquet")
REJECTS = Path("data/manifest/rejects.parquet")


def discover_clip_ids(project: Path, roots: list[CorpusRoot]) -> dict[str, list[str] | None]:
    """Clip ids found under each root; None for a root that does not exist (yet: the sample corpus root is
    written by the pipeline's first stage)."""
    found: dict[str, list[str] | None] = {}
    for root in roots:
        path = Path(root.path) if Path(root.path).is_absolute() else project / root.path
        try:
            candidates, _ = discover(path, root.layout)
        except FileNotFoundError:
            found[root.name] = None
            continue
        found[root.name] = sorted(c["clip_id"] for c in candidates)
    return found


def read_known_clips(project: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, rejects) of the last pipeline run, empty when the manifest stage never ran."""
    empty = pd.DataFrame(columns=["clip_id", "root"])
    manifest = pd.read_parquet(project / MANIFEST, columns=["clip_id", "root"]) \
        if (project / MANIFEST).exists() else empty
    rejects = pd.read_parquet(project / REJECTS, columns=["clip_id", "root"]) \
        if (project / REJECTS).exists() else empty
    return manifest, rejects


def new_clips_per_root(discovered: dict[str, list[str] | None], manifest: pd.DataFrame,
                       rejects: pd.DataFrame) -> dict[str, dict]:
    """Per root: clips found, already known (in the manifest or rejected before), new, and gone (in the
    manifest but no longer under the root)."""
    report = {}
    for root, clip_ids in discovered.items():
        in_manifest = set(manifest.loc[manifest["root"] == root, "clip_id"])
        rejected = set(rejects.loc[rejects["root"] == root, "clip_id"])
        if clip_ids is None:
            report[root] = {"exists": False, "found": 0, "known": 0, "new": 0, "gone": len(in_manifest)}
            continue
        found = set(clip_ids)
        report[root] = {"exists": True, "found": len(found), "known": len(found & (in_manifest | rejected)),
                        "new": len(found - in_manifest - rejected), "gone": len(in_manifest - found)}
    return report


def describe_ingest(report: dict[str, dict]) -> str:
    lines = []
    for root, r in report.items():
        if not r["exists"]:
            lines.append(f"root {root}: folder not there yet (a pipeline stage may create it)")
        else:
            lines.append(f"root {root}: {r['new']} new clip(s), {r['known']} known, {r['gone']} gone "
                         f"({r['found']} found)")
    return "\n".join(lines)
