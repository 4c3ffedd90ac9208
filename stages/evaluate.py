"""Stage evaluate: generate every clip of the evaluation split and score it.

Per clip and aggregated: PSNR, SSIM, IFC on the face crops; LSE-D / LSE-C (syncnet_python's offset
search, judged by the separately seeded evaluation expert); M-LMD / F-LMD against the ground-truth row's
landmarks; mouth opening (inner lips, full-frame pixels) against the sample corpus's ground-truth
sidecars. Rows: ground_truth, copy_reference and the trained method, all through the same code.

Outputs reports/metrics.json (dvc metrics), reports/eval_clips.parquet (per clip and row),
reports/eval_mouth_opening.csv (per frame, dvc plots), reports/eval_grid.png and reports/videos/*.mp4.
"""
from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from lipforge import metrics as M
from lipforge.evaluation import evaluate_clip
from lipforge.face.detectors import backend_provenance
from lipforge.parallel import TaskFailure, map_tasks, ray_session
from lipforge.params import Params
from lipforge.progress import summary
from lipforge.stage import StageError, read_manifest, stage_main
from lipforge.train.artifacts import load_model_file, write_json

FACE_DIR = Path("data/face_crop")
MEL_INDEX = Path("data/mel/index.parquet")
MANIFEST = Path("data/manifest/manifest.parquet")
SILENT_INDEX = Path("data/silent_refs/index.parquet")
GENERATOR = Path("data/generator/model.pt")
EVAL_EXPERT = Path("data/experts/eval/model.pt")
REPORTS = Path("reports")
METRICS = ("psnr", "ssim", "ifc", "lse_d", "lse_c", "sync_similarity", "m_lmd", "f_lmd", "mouth_opening",
           "mouth_opening_error_px", "mouth_opening_corr")


def clip_rows(params: Params, face_dir: Path, mel_index: Path, manifest_path: Path, silent_index: Path) -> list[dict]:
    faces = pd.read_parquet(face_dir / "index.parquet")
    faces = faces[faces["split"] == params.evaluate.split]
    manifest = read_manifest(manifest_path, ("clip_id", "video_path", "audio_path"))
    cols = ["clip_id", "video_path", "audio_path"] + [c for c in ("gt_path",) if c in manifest.columns]
    df = faces.merge(pd.read_parquet(mel_index)[["clip_id", "mel_path"]], on="clip_id").merge(manifest[cols], on="clip_id")
    if params.train_generator.method == "stabilized":
        refs = pd.read_parquet(silent_index).rename(columns={"refs_path": "silent_refs_path",
                                                             "frame_indices": "silent_frame_indices"})
        df = df.merge(refs[["clip_id", "silent_refs_path", "silent_frame_indices"]], on="clip_id")
    if df.empty:
        raise StageError(f"no {params.evaluate.split!r} clips with face crops and mel spectrograms to evaluate; "
                         f"check {face_dir / 'index.parquet'} and the manifest split")
    df = df.sort_values("clip_id").reset_index(drop=True)
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in df.to_dict("records")]


def aggregate(table: pd.DataFrame, per_frame: list[dict]) -> dict:
    """Mean over clips of every metric per row, plus the mouth-opening correlation pooled over all frames."""
    out = {}
    for name, group in table.groupby("row", sort=False):
        agg = {m: float(group[m].replace([np.inf], np.nan).mean()) for m in METRICS if m in group and group[m].notna().any()}
        pairs = [(f[name]["mouth_opening"][: len(f[name]["gt_mouth_opening"])], f[name]["gt_mouth_opening"])
                 for f in per_frame if "gt_mouth_opening" in f[name]]
        if pairs:
            agg["mouth_opening_corr_pooled"] = M.correlation(np.concatenate([p[0] for p in pairs]),
                                                             np.concatenate([p[1] for p in pairs]))
        out[name] = {k: (None if isinstance(v, float) and np.isnan(v) else round(v, 5)) for k, v in agg.items()}
    return out


def write_grid(path: Path, per_frame: list[dict], method: str, n_clips: int, n_frames: int) -> None:
    """Ground truth (top) over generated (bottom) for a few frames of the first clips."""
    strips = []
    for f in per_frame[:n_clips]:
        gt, gen = f["ground_truth"]["crops"], f[method]["crops"]
        pick = np.linspace(0, len(gt) - 1, n_frames).round().astype(int)
        strips.append(np.concatenate([np.concatenate(list(gt[pick]), axis=1), np.concatenate(list(gen[pick]), axis=1)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(strips), cv2.COLOR_RGB2BGR))


def write_mouth_csv(path: Path, clip_ids: list[str], per_frame: list[dict], method: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "frame", "ground_truth_sidecar", "ground_truth_measured", "generated"])
        for cid, pf in zip(clip_ids, per_frame):
            if "gt_mouth_opening" not in pf[method]:
                continue
            for t, g in enumerate(pf[method]["gt_mouth_opening"]):
                w.writerow([cid, t, round(float(g), 3), round(float(pf["ground_truth"]["mouth_opening"][t]), 3),
                            round(float(pf[method]["mouth_opening"][t]), 3)])


def video_path(videos: Path, clip_id: str) -> str:
    """Where the generated .mp4 of a clip goes: one flat folder, the clip id's '/' as '_'."""
    return str(videos / f"{clip_id.replace('/', '_')}.mp4")


def clip_context(params: Params, face_dir: Path = FACE_DIR, generator_path: Path = GENERATOR,
                 eval_expert_path: Path = EVAL_EXPERT) -> dict:
    """What `evaluate_clip` needs besides the clip's row (no video written; the stage sets `video_out`)."""
    return {"generator_path": str(generator_path), "eval_expert_path": str(eval_expert_path),
            "method": params.train_generator.method, "face_dir": str(face_dir), "fps": params.manifest.fps,
            "sample_rate": params.manifest.sample_rate, "vshift": params.evaluate.vshift, "video_out": None}


def run(params: Params, face_dir: Path = FACE_DIR, mel_index: Path = MEL_INDEX, manifest_path: Path = MANIFEST,
        silent_index: Path = SILENT_INDEX, generator_path: Path = GENERATOR, eval_expert_path: Path = EVAL_EXPERT,
        reports: Path = REPORTS) -> dict:
    cfg = params.evaluate
    method = params.train_generator.method
    generator = load_model_file(generator_path, "generator")
    if generator["build"]["method"] != method:
        raise StageError(f"{generator_path} holds a {generator['build']['method']} generator but "
                         f"train_generator.method is {method}; re-run train_generator")
    judge = load_model_file(eval_expert_path, "expert")
    rows = clip_rows(params, face_dir, mel_index, manifest_path, silent_index)
    videos = reports / "videos"
    shutil.rmtree(videos, ignore_errors=True)
    ctx = clip_context(params, face_dir, generator_path, eval_expert_path)
    t0 = time.time()
    tasks = [(r, {**ctx, "video_out": video_path(videos, r["clip_id"]) if i < cfg.n_videos else None})
             for i, r in enumerate(rows)]
    with ray_session(params.ray):
        results = map_tasks(_evaluate_task, tasks, params.ray, "evaluate")
    seconds = time.time() - t0
    failed = [(t[0]["clip_id"], r.error) for t, r in zip(tasks, results) if isinstance(r, TaskFailure)]
    if failed:
        raise StageError(f"evaluation failed on {len(failed)} clip(s), first {failed[0][0]}: {failed[0][1]}")
    table = pd.DataFrame([row for r in results for row in r["rows"]])
    per_frame = [r["per_frame"] for r in results]
    clip_ids = [r["clip_id"] for r in rows]
    summary_rows = aggregate(table, per_frame)

    m = summary_rows[method]
    gates = {}
    if "mouth_opening_corr_pooled" in m:
        gates["mouth_opening_corr"] = {"min": cfg.min_mouth_corr, "value": m["mouth_opening_corr_pooled"],
                                       "passed": bool(m["mouth_opening_corr_pooled"] is not None
                                                      and m["mouth_opening_corr_pooled"] >= cfg.min_mouth_corr)}
    gates["lse_c_beats_copy_reference"] = {"value": m["lse_c"], "copy_reference": summary_rows["copy_reference"]["lse_c"],
                                           "passed": bool(m["lse_c"] > summary_rows["copy_reference"]["lse_c"])}
    judge_info = {"file": str(eval_expert_path), "sha256": judge["sha256"], **judge["build"], **judge["info"]}
    report = {
        "split": cfg.split, "clips": len(rows), "method": method, "rows": summary_rows, "gates": gates,
        "backends": {
            "landmarks": backend_provenance("dlib"),
            # Not syncnet_python's syncnet_v2: LSE-D/LSE-C here are judged by lipforge's own evaluation expert.
            "lse_judge": {"network": f"lipforge eval expert ({judge['build']['arch']})", **judge_info},
            "generator": {"file": str(generator_path), "sha256": generator["sha256"], **generator["info"]},
        },
        "notes": {"psnr": "ground_truth PSNR is infinite (identical crops) and reported as null",
                  "lse": "syncnet_python's algorithm with the lipforge evaluation expert as the judge",
                  "lmd": "68-point landmarks of the pasted-back frames, in 96 px crop units, vs the ground_truth row"},
        "eval_seconds": round(seconds, 1), "clips_per_s": round(len(rows) / max(seconds, 1e-9), 3),
    }
    reports.mkdir(parents=True, exist_ok=True)
    write_json(reports / "metrics.json", report)
    table.to_parquet(reports / "eval_clips.parquet", index=False)
    write_mouth_csv(reports / "eval_mouth_opening.csv", clip_ids, per_frame, method)
    write_grid(reports / "eval_grid.png", per_frame, method, cfg.grid_clips, cfg.grid_frames)
    summary("evaluate", f"{len(rows)} {cfg.split} clips in {seconds:.1f} s; {method}: LSE-C {m['lse_c']:.3f} "
            f"(copy reference {summary_rows['copy_reference']['lse_c']:.3f}), mouth-opening corr "
            f"{m.get('mouth_opening_corr_pooled')}")
    return report


def _evaluate_task(task: tuple[dict, dict]) -> dict:
    return evaluate_clip(*task)


if __name__ == "__main__":
    stage_main(run)
