"""DVC stage face_crop: manifest clips -> tight face crops (img_size px), 68-point landmarks, boxes.

Per clip (a Ray task): decode at 25 fps, detect the largest face (every `detect_every` frames, boxes
interpolated in between), fill gaps, smooth, square crop, landmarks on every frame, store the crops.
Clips with too many faceless frames or an unreadable video become rejects rows; the stage never stops
for one clip. Incremental: a clip is recomputed only when its content, the face_crop params, the
backend's weights or CODE_VERSION change; clips that left the manifest are deleted.

Outputs (paths in index.parquet are relative to the folder holding it):
  data/face_crop/clips/<clip_id>.frames.npy | .frames.jpgs   crops, see lipforge.face.framestore
  data/face_crop/clips/<clip_id>.npz                          boxes, landmarks, face mask, see clipmeta
  data/face_crop/index.parquet, data/face_crop/rejects.parquet, reports/face_crop.json
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd

from lipforge.cache import ClipCache, clip_key
from lipforge.face.clipmeta import META_SUFFIX, read_clip_info, write_clip_meta
from lipforge.face.crop import FacelessClipError, crop_clip
from lipforge.face.detectors import FaceBackendError, backend_provenance, load_backend
from lipforge.face.framestore import FRAMES_SUFFIX, write_frames
from lipforge.media import MediaError, read_video_frames
from lipforge.parallel import TaskFailure, map_tasks, ray_session
from lipforge.params import FaceCropParams, Params
from lipforge.progress import summary
from lipforge.stage import StageError, read_manifest, stage_main

# Bump when a code change alters any output for the same inputs and params: every clip is redone.
CODE_VERSION = "face_crop-1"
STAGE = "face_crop"
FPS = 25.0
DEFAULT_MANIFEST = Path("data/manifest/manifest.parquet")
DEFAULT_OUT = Path("data/face_crop")
DEFAULT_REPORT = Path("reports/face_crop.json")
REQUIRED_COLUMNS = ("clip_id", "video_path", "split", "content_hash")
REJECT_SUFFIX = ".reject.json"
CLIPS_DIR = "clips"
# Clip ids become file paths: letters, digits, _ . - and / between parts, no "..", not absolute.
_SAFE_ID = re.compile(r"^(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")

INDEX_COLUMNS = ["clip_id", "split", "n_frames", "img_size", "codec", "frames_path", "meta_path", "backend",
                 "weights", "faceless_fraction"]


def clip_paths(clips_dir: Path, clip_id: str, codec: str) -> dict[str, Path]:
    base = clips_dir / clip_id
    return {"frames": base.with_name(base.name + FRAMES_SUFFIX[codec]),
            "meta": base.with_name(base.name + META_SUFFIX),
            "reject": base.with_name(base.name + REJECT_SUFFIX)}


def remove_clip_files(clips_dir: Path, clip_id: str) -> None:
    base = clips_dir / clip_id
    for suffix in (*FRAMES_SUFFIX.values(), META_SUFFIX, REJECT_SUFFIX):
        base.with_name(base.name + suffix).unlink(missing_ok=True)


def prune_empty_dirs(clips_dir: Path, clip_id: str) -> None:
    """Remove a departed speaker's now-empty folders (clips/spk/), never clips_dir itself."""
    parent = (clips_dir / clip_id).parent
    while parent != clips_dir and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def crop_one_clip(item: dict, face_params: FaceCropParams, backend_name: str, clips_dir: str) -> dict:
    """Ray task: one clip's video -> its frame store + metadata file, or its reject file.

    Returns {clip_id, status: ok|rejected, reason, n_frames}. Expected failures (unreadable video,
    faceless) are written as reject files so a re-run skips them; anything else raises and is reported
    as a TaskFailure, not cached, so the next run retries it.
    """
    clip_id = item["clip_id"]
    paths = clip_paths(Path(clips_dir), clip_id, face_params.frame_codec)
    remove_clip_files(Path(clips_dir), clip_id)
    try:
        frames = read_video_frames(item["video_path"], fps=FPS)
        clip = crop_clip(frames, load_backend(backend_name), face_params)
    except (MediaError, FacelessClipError) as err:
        reason = f"unreadable video: {err}" if isinstance(err, MediaError) else str(err)
        paths["reject"].parent.mkdir(parents=True, exist_ok=True)
        paths["reject"].write_text(json.dumps({"clip_id": clip_id, "reason": reason}))
        return {"clip_id": clip_id, "status": "rejected", "reason": reason, "n_frames": 0}
    backend = load_backend(backend_name)
    write_frames(paths["frames"], clip.frames, face_params.frame_codec, face_params.jpeg_quality)
    info = {"clip_id": clip_id, "n_frames": int(len(clip.frames)), "img_size": face_params.img_size,
            "codec": face_params.frame_codec, "faceless_fraction": clip.faceless_fraction, "fps": FPS,
            **backend.provenance()}
    write_clip_meta(paths["meta"], clip, info)
    return {"clip_id": clip_id, "status": "ok", "reason": "", "n_frames": info["n_frames"]}


def cached_outcome(paths: dict[str, Path]) -> dict | None:
    """The stored result of a clip whose key is fresh, or None when its files are gone (recompute)."""
    if paths["frames"].exists() and paths["meta"].exists():
        return {"status": "ok"}
    if paths["reject"].exists():
        return {"status": "rejected", "reason": json.loads(paths["reject"].read_text())["reason"]}
    return None


def run(params: Params, manifest_path: str | Path = DEFAULT_MANIFEST, out_dir: str | Path = DEFAULT_OUT,
        report_path: str | Path = DEFAULT_REPORT, project_root: str | Path = ".") -> dict:
    started = time.perf_counter()
    fp = params.face_crop
    out_dir, project_root = Path(out_dir), Path(project_root)
    clips_dir = out_dir / CLIPS_DIR
    manifest = read_manifest(manifest_path, REQUIRED_COLUMNS)
    try:
        provenance = backend_provenance(fp.backend)
    except FaceBackendError as err:
        raise StageError(str(err)) from None
    key_params = {**fp.model_dump(), "resolved_backend": provenance}

    cache = ClipCache(out_dir)
    removed = cache.stale_ids(set(manifest["clip_id"]))
    for clip_id in removed:
        remove_clip_files(clips_dir, clip_id)
        prune_empty_dirs(clips_dir, clip_id)
        cache.forget(clip_id)

    outcomes: dict[str, dict] = {}
    todo, keys = [], {}
    for row in manifest.itertuples(index=False):
        if not _SAFE_ID.match(row.clip_id):
            outcomes[row.clip_id] = {"status": "rejected", "reason": "clip_id is not a safe relative path "
                                     "(letters, digits, _ . - separated by /)"}
            continue
        keys[row.clip_id] = clip_key(row.content_hash, key_params, CODE_VERSION)
        paths = clip_paths(clips_dir, row.clip_id, fp.frame_codec)
        cached = cached_outcome(paths) if cache.is_fresh(row.clip_id, keys[row.clip_id]) else None
        if cached is not None:
            outcomes[row.clip_id] = cached
        else:
            todo.append({"clip_id": row.clip_id, "video_path": str(project_root / row.video_path)})

    results, work_seconds = [], 0.0
    if todo:
        with ray_session(params.ray):
            # frames/s counts the clip work (worker start-up included), not Ray's own start-up.
            work_started = time.perf_counter()
            results = map_tasks(crop_one_clip, todo, params.ray, desc="face crop", face_params=fp,
                                backend_name=provenance["backend"], clips_dir=str(clips_dir))
            work_seconds = time.perf_counter() - work_started
    frames_processed = 0
    for item, res in zip(todo, results):
        if isinstance(res, TaskFailure):
            # Not cached: an unexpected crash may be transient (memory, a node lost); retry next run.
            remove_clip_files(clips_dir, item["clip_id"])
            cache.forget(item["clip_id"])
            outcomes[item["clip_id"]] = {"status": "rejected", "reason": f"face crop failed: {res.error}"}
            continue
        cache.record(item["clip_id"], keys[item["clip_id"]])
        outcomes[item["clip_id"]] = res
        frames_processed += res["n_frames"]
    cache.save()

    index_rows, reject_rows = [], []
    for row in manifest.itertuples(index=False):
        outcome = outcomes[row.clip_id]
        if outcome["status"] != "ok":
            reject_rows.append({"clip_id": row.clip_id, "reason": outcome["reason"]})
            continue
        paths = clip_paths(clips_dir, row.clip_id, fp.frame_codec)
        info = read_clip_info(paths["meta"])
        index_rows.append({
            "clip_id": row.clip_id, "split": row.split, "n_frames": info["n_frames"], "img_size": info["img_size"],
            "codec": info["codec"], "frames_path": paths["frames"].relative_to(out_dir).as_posix(),
            "meta_path": paths["meta"].relative_to(out_dir).as_posix(), "backend": info["backend"],
            "weights": json.dumps(info["weights"], sort_keys=True), "faceless_fraction": info["faceless_fraction"]})
    index = pd.DataFrame(index_rows, columns=INDEX_COLUMNS)
    rejects = pd.DataFrame(reject_rows, columns=["clip_id", "reason"])
    index.to_parquet(out_dir / "index.parquet", index=False)
    rejects.to_parquet(out_dir / "rejects.parquet", index=False)

    seconds = time.perf_counter() - started
    report = {
        "backend": provenance["backend"], "weights": provenance["weights"], "code_version": CODE_VERSION,
        "img_size": fp.img_size, "frame_codec": fp.frame_codec,
        "clips_ok": len(index), "clips_rejected": len(rejects), "clips_processed": len(todo),
        "clips_cached": len(manifest) - len(todo) - sum(not _SAFE_ID.match(c) for c in manifest["clip_id"]),
        "clips_removed": len(removed), "frames_total": int(index["n_frames"].sum()) if len(index) else 0,
        "frames_processed": frames_processed, "seconds": round(seconds, 3),
        "frames_per_second": round(frames_processed / work_seconds, 2) if frames_processed else 0.0,
    }
    report_path = Path(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    summary(STAGE, f"{report['clips_ok']} clips ok, {report['clips_rejected']} rejected "
                   f"({report['clips_processed']} processed, {report['clips_cached']} cached, "
                   f"{report['clips_removed']} removed); {frames_processed} frames in {seconds:.1f} s "
                   f"({report['frames_per_second']:.0f} frames/s); backend {provenance['backend']}")
    return report


if __name__ == "__main__":
    stage_main(run)
