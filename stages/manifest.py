"""Stage manifest: merge the per-root scans into one manifest with identity-disjoint splits.

Outputs data/manifest/manifest.parquet (one row per usable clip), data/manifest/rejects.parquet (one row
per unusable file, with a reason) and reports/manifest.json (counts by split and by reject reason).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lipforge.manifest.splits import SPLITS, assign_splits
from lipforge.params import Params
from lipforge.progress import summary
from lipforge.stage import StageError, stage_main
from stages.scan_corpus import PARTS_DIR

MANIFEST = Path("data/manifest/manifest.parquet")
REJECTS = Path("data/manifest/rejects.parquet")
REPORT = Path("reports/manifest.json")
REJECT_COLUMNS = ["clip_id", "path", "reason", "detail", "root"]


def merge_parts(oks: list[pd.DataFrame], rejects: list[pd.DataFrame], val_fraction: float,
                test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pure merge: first root wins a duplicate clip id; splits from lists or speaker hash."""
    ok = pd.concat([d for d in oks if len(d)], ignore_index=True) if any(len(d) for d in oks) else pd.DataFrame()
    rej = pd.concat([d for d in rejects if len(d)], ignore_index=True) if any(len(d) for d in rejects) else \
        pd.DataFrame(columns=REJECT_COLUMNS)
    extra_rejects = []
    if len(ok):
        dup = ok.duplicated("clip_id", keep="first")
        for r in ok[dup].to_dict("records"):
            first = ok[(ok.clip_id == r["clip_id"]) & ~dup].iloc[0]
            extra_rejects.append({"clip_id": r["clip_id"], "path": r["video_path"], "reason": "duplicate_clip_id",
                                  "detail": f"already in root {first['root']} ({first['video_path']})",
                                  "root": r["root"]})
        ok = ok[~dup].reset_index(drop=True)
        splits, conflicts = assign_splits(ok.to_dict("records"), val_fraction, test_fraction)
        ok["split"] = splits
        for r in ok[ok.split == ""].to_dict("records"):
            extra_rejects.append({"clip_id": r["clip_id"], "path": r["video_path"], "reason": "split_conflict",
                                  "detail": f"speaker {r['speaker']} is listed in more than one split list",
                                  "root": r["root"]})
        ok = ok[ok.split != ""].sort_values("clip_id").reset_index(drop=True)
        ok = ok.drop(columns=["stat_key", "listed_split"], errors="ignore")
    if extra_rejects:
        rej = pd.concat([rej, pd.DataFrame(extra_rejects)], ignore_index=True)
    rej = rej.drop(columns=["stat_key"], errors="ignore").reindex(columns=REJECT_COLUMNS)
    rej = rej.sort_values(["root", "path", "reason"]).reset_index(drop=True)
    return ok, rej


def run(params: Params, parts_dir: Path = PARTS_DIR, manifest_path: Path = MANIFEST, rejects_path: Path = REJECTS,
        report_path: Path = REPORT) -> dict:
    oks, rejects = [], []
    for root in params.manifest.roots:
        ok_path = parts_dir / f"{root.name}.parquet"
        if not ok_path.exists():
            raise StageError(f"{ok_path} is missing: run `dvc repro` (or python -m stages.scan_corpus {root.name}) "
                             f"so root {root.name!r} is scanned first")
        oks.append(pd.read_parquet(ok_path))
        rejects.append(pd.read_parquet(parts_dir / f"{root.name}.rejects.parquet"))
    split = params.manifest.split
    manifest, rej = merge_parts(oks, rejects, split.val_fraction, split.test_fraction)
    if manifest.empty:
        raise StageError(f"no usable clip in any corpus root ({len(rej)} rejected; see {rejects_path}). "
                         f"Check params.yaml manifest.roots paths and layouts")
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest.to_parquet(manifest_path, index=False)
    rej.to_parquet(rejects_path, index=False)
    report = {
        "clips": int(len(manifest)),
        "rejected": int(len(rej)),
        "speakers": int(manifest.speaker.nunique()),
        "hours": round(float(manifest.duration_s.sum()) / 3600, 4),
        "by_split": {s: int((manifest.split == s).sum()) for s in SPLITS},
        "speakers_by_split": {s: int(manifest[manifest.split == s].speaker.nunique()) for s in SPLITS},
        "rejects_by_reason": {k: int(v) for k, v in sorted(rej.reason.value_counts().items())},
    }
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    reasons = ", ".join(f"{k} {v}" for k, v in report["rejects_by_reason"].items()) or "none"
    summary("manifest", f"{report['clips']} clips ({report['by_split']['train']} train / {report['by_split']['val']} "
            f"val / {report['by_split']['test']} test, {report['speakers']} speakers), "
            f"{report['rejected']} rejected ({reasons})")
    return report


def main() -> None:
    stage_main(run)


if __name__ == "__main__":
    main()
