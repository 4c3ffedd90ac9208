"""Stage scan_corpus@<i>: scan one corpus root into a part of the manifest (clips + rejects).

Usage: python -m stages.scan_corpus <root name>   (roots are listed in params.yaml manifest.roots)

Every file under the root ends up either as a clip row or as a rejects row with a reason. Files whose
size and mtime match the previous scan are not probed or hashed again.
"""
from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path

import pandas as pd

from lipforge.hashing import obj_sha256
from lipforge.manifest.discover import discover
from lipforge.manifest.validate import validate_candidate
from lipforge.parallel import TaskFailure, map_tasks, ray_session
from lipforge.params import Params
from lipforge.progress import summary
from lipforge.stage import StageError, stage_main

PARTS_DIR = Path("data/manifest/roots")
# Bump when validation rules change, so cached rows are re-checked.
CODE_VERSION = "1"


def _stat_key(cand: dict, rules: dict) -> str:
    files = [cand[k] for k in ("video_path", "audio_path", "transcript_path", "gt_path") if cand[k]]
    stats = []
    for f in files:
        try:
            st = os.stat(f)
            stats.append((f, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((f, None, None))
    return obj_sha256({"files": stats, "rules": rules, "code": CODE_VERSION})


def _read_previous(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    df = pd.read_parquet(path)
    return {r["stat_key"]: r for r in df.to_dict("records")}


def run(params: Params, root_name: str, parts_dir: Path = PARTS_DIR) -> dict:
    roots = {r.name: r for r in params.manifest.roots}
    if root_name not in roots:
        raise StageError(f"no corpus root named {root_name!r} in params.yaml manifest.roots "
                         f"(known: {', '.join(roots)})")
    root = roots[root_name]
    m = params.manifest
    rules = dict(target_fps=m.fps, target_sr=m.sample_rate, min_fps=m.min_fps, max_fps=m.max_fps,
                 min_seconds=m.min_seconds, max_seconds=m.max_seconds)
    try:
        cands, rejects = discover(Path(root.path), root.layout)
    except FileNotFoundError as err:
        raise StageError(str(err)) from None

    parts_dir.mkdir(parents=True, exist_ok=True)
    ok_path, rej_path = parts_dir / f"{root_name}.parquet", parts_dir / f"{root_name}.rejects.parquet"
    prev_ok, prev_rej = _read_previous(ok_path), _read_previous(rej_path)
    keys = [_stat_key(c, rules) for c in cands]
    todo = [c for c, k in zip(cands, keys) if k not in prev_ok and k not in prev_rej]

    with ray_session(params.ray) if todo else nullcontext():
        results = map_tasks(validate_candidate, todo, params.ray, f"scan {root_name}", **rules)
    fresh = {}
    for cand, res in zip(todo, results):
        if isinstance(res, TaskFailure):
            res = {"reject": {"clip_id": cand["clip_id"], "path": cand["video_path"], "reason": "unreadable",
                              "detail": res.error}}
        fresh[cand["clip_id"]] = res
    ok_rows, rej_rows = [], [dict(r, stat_key="", root=root_name) for r in rejects]
    for cand, key in zip(cands, keys):
        if key in prev_ok:
            ok_rows.append(prev_ok[key])
            continue
        if key in prev_rej:
            rej_rows.append(prev_rej[key])
            continue
        res = fresh[cand["clip_id"]]
        if "ok" in res:
            ok_rows.append(dict(res["ok"], stat_key=key, root=root_name))
        else:
            rej_rows.append(dict(res["reject"], stat_key=key, root=root_name))
    pd.DataFrame(ok_rows).to_parquet(ok_path, index=False)
    pd.DataFrame(rej_rows, columns=["clip_id", "path", "reason", "detail", "stat_key", "root"]).to_parquet(
        rej_path, index=False)
    summary(f"scan_corpus@{root_name}", f"{len(cands) + len(rejects)} files -> {len(ok_rows)} clips, "
            f"{len(rej_rows)} rejected ({len(todo)} probed, {len(cands) - len(todo)} unchanged)")
    return {"clips": len(ok_rows), "rejected": len(rej_rows), "probed": len(todo)}


def main() -> None:
    if len(sys.argv) != 2:
        print("usage: python -m stages.scan_corpus <root name from params.yaml manifest.roots>", file=sys.stderr)
        sys.exit(2)
    stage_main(lambda p: run(p, sys.argv[1]))


if __name__ == "__main__":
    main()
