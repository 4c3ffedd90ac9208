"""DVC stage `align`: phone timelines and per-frame phoneme tracks for every manifest clip.

Per clip (a Ray task): read the audio track at 16 kHz, force-align the transcript, build the 25 fps
frame track. Incremental: a clip is re-aligned only when its content hash, the align params or
CODE_VERSION changed; clips that left the manifest are dropped. A clip that fails is a rejects row.
When ground-truth sidecars exist (the sample corpus), boundary errors against them gate the stage
(reported as pass/fail, never a crash).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lipforge.align import AlignError, align, boundary_errors, frame_phoneme_track, resolve_backend
from lipforge.align.metrics import summarize_errors
from lipforge.cache import ClipCache, clip_key
from lipforge.media import read_audio
from lipforge.parallel import TaskFailure, map_tasks, ray_session
from lipforge.params import AlignParams, Params
from lipforge.phonemes import PHONEME_TABLE, phone_id
from lipforge.progress import summary
from lipforge.stage import StageError, read_manifest, stage_main

CODE_VERSION = "align-2"  # bump when alignment output changes for the same input
SAMPLE_RATE = 16000


def align_clip(clip: dict, align_cfg: dict, project_root: str) -> dict:
    """Ray task: one manifest row -> {"clip_id", "backend", "phones", "frames"}; raises AlignError/MediaError."""
    audio = read_audio(Path(project_root) / (clip.get("audio_path") or clip["video_path"]), SAMPLE_RATE)
    result = align(audio, clip["transcript"], backend=align_cfg["backend"], mfa_dictionary=align_cfg["mfa_dictionary"],
                   mfa_acoustic_model=align_cfg["mfa_acoustic_model"])
    phones = [p.to_dict() for p in result.phones]
    track = frame_phoneme_track(phones, int(clip["n_frames"]), float(clip["fps"]))
    return {"clip_id": clip["clip_id"], "backend": result.backend, "phones": phones,
            "frames": {"phone_id": track.phone_id.tolist(), "phone_idx": track.phone_idx.tolist(),
                       "duration_frames": track.duration_frames.tolist()}}


def _clip_json_path(clips_dir: Path, clip_id: str) -> Path:
    return clips_dir / f"{clip_id}.json"


def _load_gt(project_root: Path, gt_path: str) -> list[dict] | None:
    if not gt_path:
        return None
    path = Path(gt_path) if Path(gt_path).is_absolute() else project_root / gt_path
    if not path.exists():
        return None
    return json.loads(path.read_text())["phones"]


def _gt_report(manifest: pd.DataFrame, aligned: dict[str, dict], project_root: Path) -> dict | None:
    per_split: dict[str, list[float]] = {}
    every: list[float] = []
    n_clips = 0
    for row in manifest.itertuples(index=False):
        gt = _load_gt(project_root, getattr(row, "gt_path", "") or "")
        if gt is None or row.clip_id not in aligned:
            continue
        errs = boundary_errors(gt, aligned[row.clip_id]["phones"]).errors_ms
        n_clips += 1
        every += errs
        per_split.setdefault(str(row.split), []).extend(errs)
    if n_clips == 0:
        return None
    return {"clips": n_clips, **summarize_errors(every),
            "per_split": {s: summarize_errors(e) for s, e in sorted(per_split.items())}}


def _write_tables(manifest: pd.DataFrame, aligned: dict[str, dict], out_dir: Path) -> None:
    phone_rows, frame_rows = [], []
    for clip_id in manifest["clip_id"]:
        rec = aligned.get(clip_id)
        if rec is None:
            continue
        for idx, p in enumerate(rec["phones"]):
            phone_rows.append((clip_id, idx, p["phone"], phone_id(p["phone"]), p["start"], p["end"], rec["backend"]))
        f = rec["frames"]
        for k in range(len(f["phone_id"])):
            frame_rows.append((clip_id, k, f["phone_id"][k], f["phone_idx"][k], f["duration_frames"][k]))
    pd.DataFrame(phone_rows, columns=["clip_id", "idx", "phone", "phone_id", "start", "end", "backend"]).astype(
        {"idx": "int32", "phone_id": "int16", "start": "float64", "end": "float64"}).to_parquet(
        out_dir / "phones.parquet", index=False)
    pd.DataFrame(frame_rows, columns=["clip_id", "frame", "phone_id", "phone_idx", "duration_frames"]).astype(
        {"frame": "int32", "phone_id": "int16", "phone_idx": "int32", "duration_frames": "int32"}).to_parquet(
        out_dir / "frame_phonemes.parquet", index=False)
    (out_dir / "phoneme_table.json").write_text(json.dumps(
        {"phones": list(PHONEME_TABLE), "ids": {p: i for i, p in enumerate(PHONEME_TABLE)}}, indent=1))


def run(params: Params, manifest_path: str | Path = "data/manifest/manifest.parquet",
        out_dir: str | Path = "data/align", report_path: str | Path = "reports/align.json",
        project_root: str | Path = ".") -> dict:
    cfg: AlignParams = params.align
    manifest_path, out_dir, report_path = Path(manifest_path), Path(out_dir), Path(report_path)
    project_root = Path(project_root).resolve()
    manifest = read_manifest(manifest_path, ("clip_id", "video_path", "transcript", "content_hash", "n_frames", "fps",
                                              "split"))
    try:
        backend = resolve_backend(cfg.backend)
    except AlignError as err:
        raise StageError(str(err)) from None

    clips_dir = out_dir / "clips"
    cache = ClipCache(clips_dir)
    # The resolved backend is part of the key: installing MFA later re-aligns clips under `auto`.
    stage_params = {**cfg.model_dump(exclude={"max_boundary_error_ms"}), "resolved_backend": backend}
    task_cfg = {**cfg.model_dump(), "backend": backend}
    keys = {r.clip_id: clip_key(r.content_hash, stage_params, CODE_VERSION) for r in manifest.itertuples(index=False)}
    for stale in cache.stale_ids(set(keys)):
        _clip_json_path(clips_dir, stale).unlink(missing_ok=True)
        cache.forget(stale)
    todo = [row for row in manifest.to_dict("records")
            if not (cache.is_fresh(row["clip_id"], keys[row["clip_id"]])
                    and _clip_json_path(clips_dir, row["clip_id"]).exists())]

    rejects: list[tuple[str, str]] = []
    if todo:
        with ray_session(params.ray):
            results = map_tasks(align_clip, todo, params.ray, "align", align_cfg=task_cfg, project_root=str(project_root))
        for row, res in zip(todo, results):
            path = _clip_json_path(clips_dir, row["clip_id"])
            if isinstance(res, TaskFailure):
                rejects.append((row["clip_id"], res.error))
                path.unlink(missing_ok=True)
                cache.forget(row["clip_id"])
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(res))
            cache.record(row["clip_id"], keys[row["clip_id"]])
    cache.save()

    aligned = {cid: json.loads(_clip_json_path(clips_dir, cid).read_text()) for cid in manifest["clip_id"]
               if cache.is_fresh(cid, keys[cid]) and _clip_json_path(clips_dir, cid).exists()}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_tables(manifest, aligned, out_dir)
    pd.DataFrame(rejects, columns=["clip_id", "reason"]).to_parquet(out_dir / "rejects.parquet", index=False)

    gt = _gt_report(manifest, aligned, project_root)
    gate = "no_ground_truth"
    if gt is not None and gt["mean_ms"] is not None:
        gate = "pass" if gt["mean_ms"] <= cfg.max_boundary_error_ms else "fail"
    backends_used = sorted({rec["backend"] for rec in aligned.values()})
    report = {"backend_requested": cfg.backend, "backend_resolved": backend, "backends_used": backends_used,
              "clips_ok": len(aligned), "clips_rejected": len(rejects), "clips_processed": len(todo),
              "clips_cached": int(len(manifest)) - len(todo), "ground_truth": gt,
              "max_boundary_error_ms": cfg.max_boundary_error_ms, "gate": gate}
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=1))

    text = (f"{len(aligned)}/{len(manifest)} clips aligned with {', '.join(backends_used) or backend} "
            f"({len(todo)} computed, {len(rejects)} rejected)")
    if gt is not None and gt["mean_ms"] is not None:
        text += (f"; boundary error vs ground truth mean {gt['mean_ms']:.1f} ms, median {gt['median_ms']:.1f}, "
                 f"p95 {gt['p95_ms']:.1f} on {gt['clips']} clips")
        if gate == "fail":
            text += f" — GATE FAIL: mean above max_boundary_error_ms={cfg.max_boundary_error_ms:g}"
    summary("align", text)
    return report


def main() -> None:
    stage_main(run)


if __name__ == "__main__":
    main()
