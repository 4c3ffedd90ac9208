"""Stage mel: 16 kHz audio -> Wav2Lip-compatible 80-bin mel spectrogram per clip.

Outputs data/mel/clips/<clip_id>.npy (float32, (num_mels, T), 80 frames/s), data/mel/index.parquet,
data/mel/rejects.parquet and reports/mel.json. Incremental: unchanged clips are not recomputed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lipforge.cache import ClipCache, clip_key
from lipforge.media import MediaError, read_audio
from lipforge.mel import mel_frames_per_second, melspectrogram, usable_frames
from lipforge.parallel import TaskFailure, map_tasks, ray_session
from lipforge.params import MelParams, Params
from lipforge.progress import summary
from lipforge.stage import read_manifest, stage_main

MANIFEST = Path("data/manifest/manifest.parquet")
OUT_DIR = Path("data/mel")
REPORT = Path("reports/mel.json")
CODE_VERSION = "1"


def compute_clip(row: dict, mel_cfg: MelParams, out_dir: str) -> dict:
    """Ray task (`mel_cfg`, not `cfg`: map_tasks takes `cfg` for the Ray settings)."""
    audio_path = row["audio_path"] or row["video_path"]
    try:
        wav = read_audio(audio_path, mel_cfg.sample_rate)
    except MediaError as err:
        return {"clip_id": row["clip_id"], "error": f"audio: {err}"}
    mel = melspectrogram(wav, mel_cfg)
    path = Path(out_dir) / "clips" / f"{row['clip_id']}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, mel)
    return {"clip_id": row["clip_id"], "n_mel": int(mel.shape[1]), "audio_seconds": len(wav) / mel_cfg.sample_rate}


def run(params: Params, manifest_path: Path = MANIFEST, out_dir: Path = OUT_DIR, report_path: Path = REPORT) -> dict:
    cfg = params.mel
    manifest = read_manifest(manifest_path, ("clip_id", "video_path", "audio_path", "content_hash", "n_frames", "fps",
                                             "split"))
    cache = ClipCache(out_dir)
    old_index = pd.read_parquet(out_dir / "index.parquet") if (out_dir / "index.parquet").exists() else None
    old_rows = {r["clip_id"]: r for r in old_index.to_dict("records")} if old_index is not None else {}
    for stale in cache.stale_ids(set(manifest.clip_id)):
        (out_dir / "clips" / f"{stale}.npy").unlink(missing_ok=True)
        cache.forget(stale)

    rows = manifest.to_dict("records")
    keys = {r["clip_id"]: clip_key(r["content_hash"], cfg.model_dump(), CODE_VERSION) for r in rows}
    todo = [r for r in rows if not (cache.is_fresh(r["clip_id"], keys[r["clip_id"]]) and r["clip_id"] in old_rows)]
    t0 = time.time()
    results = {}
    if todo:
        with ray_session(params.ray):
            for row, res in zip(todo, map_tasks(compute_clip, todo, params.ray, "mel", mel_cfg=cfg, out_dir=str(out_dir))):
                results[row["clip_id"]] = res if not isinstance(res, TaskFailure) else \
                    {"clip_id": row["clip_id"], "error": res.error}
    seconds = time.time() - t0

    mel_fps = mel_frames_per_second(cfg)
    index, rejects = [], []
    for r in rows:
        cid = r["clip_id"]
        res = results.get(cid) or old_rows[cid]
        if res.get("error"):
            rejects.append({"clip_id": cid, "reason": "audio_decode", "detail": res["error"]})
            cache.forget(cid)
            continue
        cache.record(cid, keys[cid])
        index.append({"clip_id": cid, "split": r["split"], "n_mel": int(res["n_mel"]), "n_frames": int(r["n_frames"]),
                      "usable_frames": usable_frames(int(r["n_frames"]), int(res["n_mel"]), r["fps"], mel_fps),
                      "audio_seconds": float(res["audio_seconds"]), "mel_path": str(out_dir / "clips" / f"{cid}.npy")})
    cache.save()
    pd.DataFrame(index).to_parquet(out_dir / "index.parquet", index=False)
    pd.DataFrame(rejects, columns=["clip_id", "reason", "detail"]).to_parquet(out_dir / "rejects.parquet", index=False)
    report = {"clips_ok": len(index), "clips_rejected": len(rejects), "clips_processed": len(todo),
              "clips_cached": len(rows) - len(todo),
              "mel_frames_per_second": mel_fps, "params": cfg.model_dump(),
              "seconds": round(seconds, 2), "clips_per_second": round(len(todo) / seconds, 2) if todo else None}
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps({k: v for k, v in report.items() if k not in ("seconds", "clips_per_second")},
                                      indent=2) + "\n")
    summary("mel", f"{len(index)} clips ({len(todo)} computed, {len(rows) - len(todo)} cached), "
            f"{len(rejects)} rejected, {mel_fps:g} mel frames/s")
    return report


def main() -> None:
    stage_main(run)


if __name__ == "__main__":
    main()
