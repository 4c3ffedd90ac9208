"""Stage silent_refs: the silent-lip generator G_S, and closed-lip identity references made with it.

Stabilized-Sync paper sec. 3.2: G_S has G_L's architecture and is trained on the same data with pixel,
perceptual and GAN losses only (no sync, no triplet loss); run with silent audio it closes the lips of an
identity reference. For every clip, `refs_per_clip` frames (evenly spaced) are passed through G_S with
the mel spectrogram of silence and cached for G_L training and evaluation.

Outputs data/silent_refs/{model.pt, clips/<clip_id>.npy (K, H, W, 3) uint8, index.parquet},
reports/silent_refs.json (mouth opening of the references before and after G_S) and
reports/silent_refs_curve.csv.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lipforge.face.detectors import backend_provenance, load_backend
from lipforge.face.framestore import FrameStore
from lipforge.face.measure import box_in_crop, landmarks_in_boxes
from lipforge.mel import SYNC_MEL_STEP, melspectrogram
from lipforge.metrics import half_abs_errors, mouth_opening
from lipforge.params import Params
from lipforge.progress import summary
from lipforge.stage import stage_main
from lipforge.train import runner
from lipforge.train.artifacts import save_model, write_curve, write_json
from lipforge.train.data import mask_lower_half, to_float
from lipforge.train.generator_config import CODE, generator_config, perceptual_provenance, precision_report
from lipforge.train.generator_loop import build_generator, final_weights, train_generator_loop

FACE_DIR = Path("data/face_crop")
MEL_INDEX = Path("data/mel/index.parquet")
MANIFEST = Path("data/manifest/manifest.parquet")
EXPERT = Path("data/experts/train/model.pt")


def silent_mel(params: Params) -> np.ndarray:
    """(num_mels, 16) mel window of digital silence, through the same mel code as real audio."""
    wav = np.zeros(params.mel.sample_rate, dtype=np.float32)
    return melspectrogram(wav, params.mel)[:, :SYNC_MEL_STEP]


def reference_frames(n_frames: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_frames - 1, min(k, n_frames)).round().astype(int))


@torch.no_grad()
def close_lips(gen: torch.nn.Module, frames: np.ndarray, mel: np.ndarray, chunk: int = 64) -> np.ndarray:
    """G_S on (N, H, W, 3) uint8 frames with silent audio; each frame is its own pose and identity reference."""
    out = []
    for i in range(0, len(frames), chunk):
        x = torch.from_numpy(to_float(frames[i:i + chunk]))[:, None]  # (n, 1, 3, H, W)
        mels = torch.from_numpy(np.broadcast_to(mel, (len(x), 1, 1) + mel.shape).copy())
        y = gen(mels, mask_lower_half(x), x)[:, 0]
        out.append((y.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8))
    return np.concatenate(out)


def reference_errors_by_split(errors: list[dict]) -> dict:
    """Per split, the upper- and lower-half errors of its clips (`half_abs_errors`) averaged over their references."""
    table = pd.DataFrame(errors)
    out = {}
    for split, group in table.groupby("split"):
        weights = group["refs"] / group["refs"].sum()
        out[split] = {half: round(float((group[half] * weights).sum()), 2) for half in ("upper_half", "lower_half")}
    return out


def run(params: Params, face_dir: Path = FACE_DIR, mel_index: Path = MEL_INDEX, expert_path: Path = EXPERT,
        out_dir: Path | None = None, report_path: Path = Path("reports/silent_refs.json"),
        curve_path: Path = Path("reports/silent_refs_curve.csv"), manifest_path: Path = MANIFEST) -> dict:
    cfg = params.silent_refs
    out_dir = Path(out_dir or cfg.out_dir)
    config = generator_config(params, cfg, "silent", expert_path, face_dir, mel_index, seed_offset=101)
    t0 = time.time()
    state = runner.fit(train_generator_loop, config, params.trainer, params.ray, out_dir / "runs",
                       runner.run_key("silent", config, CODE))
    train_seconds = time.time() - t0
    perceptual = perceptual_provenance(config)
    sha = save_model(out_dir / "model.pt", "generator", config["build"], final_weights(state),
                     {"role": "G_S", "steps": state["step"], "perceptual": perceptual,
                      "expert_sha256": config["expert_sha256"]})
    shutil.rmtree(out_dir / "runs", ignore_errors=True)

    gen = build_generator(config["build"])
    gen.load_state_dict(final_weights(state))
    gen.eval()
    mel = silent_mel(params)
    index = pd.read_parquet(face_dir / "index.parquet").sort_values("clip_id")
    manifest = pd.read_parquet(manifest_path).set_index("clip_id") if manifest_path.exists() else None
    backend = load_backend("dlib")
    shutil.rmtree(out_dir / "clips", ignore_errors=True)
    rows, before, after, gt_before, errors = [], [], [], [], []
    for row in index.itertuples():
        frames = FrameStore.open(face_dir / row.frames_path).read_all()
        pick = reference_frames(len(frames), cfg.refs_per_clip)
        closed = close_lips(gen, frames[pick], mel)
        errors.append({"split": row.split, "refs": len(pick), **half_abs_errors(closed, frames[pick])})
        path = out_dir / "clips" / f"{row.clip_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, closed)
        rows.append({"clip_id": row.clip_id, "split": row.split, "refs_path": str(path),
                     "frame_indices": json.dumps(pick.tolist())})
        meta = np.load(face_dir / row.meta_path)
        boxes = np.stack([box_in_crop(meta["boxes"][t], meta["crop_boxes"][t], frames.shape[1]) for t in pick])
        before += mouth_opening(landmarks_in_boxes(backend, frames[pick], boxes, upscale=2)).tolist()
        after += mouth_opening(landmarks_in_boxes(backend, closed, boxes, upscale=2)).tolist()
        if manifest is not None and isinstance(manifest.loc[row.clip_id].get("gt_path"), str):
            mouth = json.loads(Path(manifest.loc[row.clip_id]["gt_path"]).read_text())["mouth"]["mouth_open_px"]
            gt_before += [mouth[t] for t in pick if t < len(mouth)]
    pd.DataFrame(rows).to_parquet(out_dir / "index.parquet", index=False)
    before, after = np.asarray(before), np.asarray(after)
    report = {
        "refs": int(len(before)), "clips": len(rows), "steps": state["step"],
        # Inner-lip opening (mean of three upper/lower inner-lip point distances), in 96 px crop pixels,
        # measured by the same landmark model on the original and on the G_S reference.
        "mouth_opening_original": float(before.mean()), "mouth_opening_silent": float(after.mean()),
        "closed_fraction_original": float((before < 1.0).mean()), "closed_fraction_silent": float((after < 1.0).mean()),
        "gt_mouth_open_px_original": float(np.mean(gt_before)) if gt_before else None,
        # What else G_S changed: grey levels (0-255) of mean absolute difference from the original frame, in the
        # half above the mouth (which G_S should copy from its pose input) and in the lower half, per split.
        "reference_abs_error": reference_errors_by_split(errors),
        "landmarks": backend_provenance("dlib"), "perceptual": perceptual, "model_sha256": sha,
        "train_seconds": round(train_seconds, 1),
        "precision": precision_report(config, state),
    }
    write_json(report_path, report)
    write_curve(curve_path, state["history"])
    summary("silent_refs", f"G_S {state['step']} steps; {len(before)} references of {len(rows)} clips: mean mouth "
            f"opening {report['mouth_opening_original']:.2f} px -> {report['mouth_opening_silent']:.2f} px")
    return report


if __name__ == "__main__":
    stage_main(run)
