"""Evaluate one clip: generate it, paste the faces back into the full frames, and score every row.

Rows: `ground_truth` (the original crops through the same paste-back and measuring code),
`copy_reference` (the identity reference copied unchanged: what a generator that ignores the audio
would output) and the trained generator's method. Identity references follow one fixed schedule for all
rows: frame t uses frame (t + N/2) mod N of the same clip (for `stabilized`, G_S's closed-lip version of
the nearest cached reference frame), so no row sees its own target mouth.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from lipforge import metrics as M
from lipforge.face.clipmeta import read_clip_meta
from lipforge.face.framestore import FrameStore
from lipforge.face.geometry import landmarks_to_crop
from lipforge.face.measure import landmarks_in_boxes
from lipforge.losses import cosine_similarity
from lipforge.media import read_audio, read_video_frames
from lipforge.train.data import WINDOW, Clip, count_windows, mask_lower_half, to_float
from models.experts import lower_half


def reference_schedule(n: int) -> np.ndarray:
    return (np.arange(n) + n // 2) % n


def window_starts(n: int) -> list[int]:
    """Non-overlapping 5-frame windows covering n frames (the last one shifted back to end at n)."""
    starts = list(range(0, n - WINDOW + 1, WINDOW))
    if starts[-1] + WINDOW < n:
        starts.append(n - WINDOW)
    return starts


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float in [0, 1] -> (..., H, W, 3) uint8."""
    return (x.clamp(0, 1).movedim(-3, -1).numpy() * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def generate(gen: torch.nn.Module, clip: Clip, crops: np.ndarray, refs: np.ndarray, audio_offset: int = 0) -> np.ndarray:
    """(N, H, W, 3) generated crops; refs[t] is frame t's identity reference (N, H, W, 3); `audio_offset`: the
    generator's mel-window offset (`Clip.frame_mels`, from its model file)."""
    n = len(refs)
    out = np.zeros_like(crops[:n])
    for s in window_starts(n):
        gt = torch.from_numpy(to_float(crops[s:s + WINDOW]))[None]
        ref = torch.from_numpy(to_float(refs[s:s + WINDOW]))[None]
        mels = torch.from_numpy(clip.frame_mels(s, audio_offset))[None, :, None]
        out[s:s + WINDOW] = to_uint8(gen(mels, mask_lower_half(gt), ref)[0])
    return out


def paste_back(frames: np.ndarray, crops: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
    """Full frames with each (resized) crop written back at its crop box."""
    out = frames.copy()
    for t, (crop, (x1, y1, x2, y2)) in enumerate(zip(crops, crop_boxes.astype(int))):
        out[t, y1:y2, x1:x2] = cv2.resize(crop, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
    return out


def pasted_landmarks(backend, crops: np.ndarray, full: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """The crops pasted back into their full frames, and the 68 landmarks found there inside the clip's face
    boxes: how every row's mouth and face are measured."""
    n = len(crops)
    pasted = paste_back(full[:n], crops, meta["crop_boxes"][:n])
    return pasted, landmarks_in_boxes(backend, pasted, meta["boxes"][:n])


@torch.no_grad()
def sync_embeddings(expert: torch.nn.Module, clip: Clip, crops: np.ndarray, n_windows: int):
    """Per window start: (video, audio) embeddings of the judge, for syncnet_python's offset search."""
    starts = range(n_windows)
    faces = lower_half(torch.from_numpy(to_float(np.stack([crops[s:s + WINDOW] for s in starts]))))
    mels = torch.from_numpy(np.stack([clip.sync_mel(s) for s in starts]))[:, None]
    return expert.encode_face(faces).numpy(), expert.encode_audio(mels).numpy()


def score_row(name: str, crops: np.ndarray, gt_crops: np.ndarray, full: np.ndarray, meta: dict, clip: Clip,
              n_windows: int, expert, landmark_backend, gt_landmarks: np.ndarray | None, gt_mouth: np.ndarray | None,
              vshift: int) -> tuple[dict, dict]:
    """Metrics of one row of one clip, and per-frame arrays (mouth opening) for pooled statistics."""
    n = len(crops)
    img_size = crops.shape[1]
    pasted, lms = pasted_landmarks(landmark_backend, crops, full, meta)
    lms_crop = np.stack([landmarks_to_crop(lms[t], meta["crop_boxes"][t], img_size) for t in range(n)])
    video_emb, audio_emb = sync_embeddings(expert, clip, crops, n_windows)
    lse = M.lse_scores(video_emb, audio_emb, vshift=vshift)
    sims = cosine_similarity(torch.from_numpy(video_emb), torch.from_numpy(audio_emb)).numpy()
    opening = M.mouth_opening(lms)
    row = {
        "row": name, "clip_id": clip.clip_id, "frames": n,
        "psnr": M.video_psnr(crops, gt_crops), "ssim": M.video_ssim(crops, gt_crops),
        "ifc": M.inter_frame_consistency(crops, gt_crops),
        "lse_d": lse["lse_d"], "lse_c": lse["lse_c"], "lse_offset": lse["offset"],
        "sync_similarity": float(sims.mean()),
        "m_lmd": M.landmark_distance(lms_crop, gt_landmarks, "mouth") if gt_landmarks is not None else None,
        "f_lmd": M.landmark_distance(lms_crop, gt_landmarks, "face") if gt_landmarks is not None else None,
        "mouth_opening": float(opening.mean()),
    }
    frames = {"mouth_opening": opening}
    if gt_mouth is not None:
        m = min(len(gt_mouth), n)
        row["mouth_opening_error_px"] = float(np.abs(opening[:m] - gt_mouth[:m]).mean())
        row["mouth_opening_corr"] = M.correlation(opening[:m], gt_mouth[:m])
        frames["gt_mouth_opening"] = gt_mouth[:m]
    return row, {"landmarks": lms_crop, "pasted": pasted, **frames}


@functools.lru_cache(maxsize=1)
def _networks(generator_path: str, eval_expert_path: str, stamp: tuple) -> tuple:
    """Generator, judge and landmark backend, loaded once per Ray worker process (not once per clip).
    `stamp` (the files' mtimes and sizes) makes a rewritten model file load again."""
    from lipforge.face.detectors import load_backend
    from lipforge.train.artifacts import load_expert
    from lipforge.train.generator_loop import load_generator

    return load_generator(generator_path), load_expert(eval_expert_path)[0], load_backend("dlib")


def _file_stamp(*paths: str) -> tuple:
    return tuple((os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths)


def evaluate_clip(row: dict, ctx: dict) -> dict:
    """Ray task: all rows of one clip. ctx: generator/expert files, paths and settings (see stages.evaluate)."""
    torch.set_num_threads(1)
    paths = (ctx["generator_path"], ctx["eval_expert_path"])
    gen, expert, backend = _networks(*paths, _file_stamp(*paths))

    face_dir = Path(ctx["face_dir"])
    store = FrameStore.open(face_dir / row["frames_path"])
    crops = store.read_all()
    meta = read_clip_meta(face_dir / row["meta_path"])
    mel = np.load(row["mel_path"])
    n_windows = count_windows(len(crops), mel.shape[1])
    n = n_windows + WINDOW - 1
    clip = Clip(row["clip_id"], store, mel, n_windows)
    full = read_video_frames(row["video_path"], ctx["fps"])[:n]
    schedule = reference_schedule(n)
    raw_refs = crops[schedule]
    if ctx["method"] == "stabilized":
        pool = np.load(row["silent_refs_path"])
        idx = np.asarray(json.loads(row["silent_frame_indices"]))
        refs = pool[np.abs(idx[None, :] - schedule[:, None]).argmin(axis=1)]
    else:
        refs = raw_refs
    candidates = {"ground_truth": crops[:n], "copy_reference": raw_refs,
                  ctx["method"]: generate(gen.net, clip, crops, refs, gen.audio_offset)}

    gt_mouth = None
    if row.get("gt_path"):
        gt_mouth = np.asarray(json.loads(Path(row["gt_path"]).read_text())["mouth"]["mouth_open_px"], dtype=float)
    results, per_frame, gt_landmarks = [], {}, None
    for name, out in candidates.items():
        scored, arrays = score_row(name, out, crops[:n], full, meta, clip, n_windows, expert, backend,
                                   gt_landmarks, gt_mouth, ctx["vshift"])
        if name == "ground_truth":
            gt_landmarks = arrays["landmarks"]
            scored["m_lmd"] = scored["f_lmd"] = 0.0
        results.append(scored)
        per_frame[name] = {k: v for k, v in arrays.items() if k in ("mouth_opening", "gt_mouth_opening")}
        if name == ctx["method"]:
            per_frame[name]["crops"] = out
            if ctx.get("video_out"):
                from lipforge.media import write_video

                audio = read_audio(row["audio_path"] or row["video_path"], ctx["sample_rate"])
                write_video(ctx["video_out"], arrays["pasted"], int(round(ctx["fps"])),
                            audio[: int(n / ctx["fps"] * ctx["sample_rate"])], ctx["sample_rate"])
    per_frame["ground_truth"]["crops"] = crops[:n]
    return {"rows": results, "per_frame": per_frame}
