"""Preprocessing throughput on the sample corpus with 1 and 2 Ray workers (a benchmark, not a test).

    dvc repro manifest              # the manifest of the sample corpus must exist
    python benchmarks/preprocess.py [--workers 1 2]

For each worker count it runs face_crop, mel and align from scratch into a temporary folder (no cache) on a
fresh local Ray with that many CPUs, and prints face_crop frames/s, mel clips/s and the aligner's real-time
factor (processing seconds per second of audio; below 1 is faster than real time). Ray start-up is excluded.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from lipforge.parallel import ray_session
from lipforge.params import load_params
from stages import align, face_crop, mel

MANIFEST = Path("data/manifest/manifest.parquet")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(workers: int) -> dict:
    base = load_params()
    params = base.model_copy(update={"ray": base.ray.model_copy(update={"num_cpus": workers, "address": None})})
    manifest = pd.read_parquet(MANIFEST)
    frames, audio_s = int(manifest.n_frames.sum()), float(manifest.duration_s.sum())
    with tempfile.TemporaryDirectory() as tmp, ray_session(params.ray):
        tmp = Path(tmp)
        # Warm-up: each worker process loads models/compiles kernels once; a real run pays it once per worker too.
        t_face = _timed(lambda: face_crop.run(params, MANIFEST, tmp / "face", tmp / "face.json"))
        t_mel = _timed(lambda: mel.run(params, MANIFEST, tmp / "mel", tmp / "mel.json"))
        t_align = _timed(lambda: align.run(params, MANIFEST, tmp / "align", tmp / "align.json"))
        err = json.loads((tmp / "align.json").read_text()).get("ground_truth") or {}
    return {"workers": workers, "clips": len(manifest), "frames": frames, "audio_seconds": round(audio_s, 1),
            "face_crop_frames_per_s": round(frames / t_face, 1), "mel_clips_per_s": round(len(manifest) / t_mel, 1),
            "align_rtf": round(t_align / audio_s, 4), "align_x_realtime": round(audio_s / t_align, 1),
            "align_boundary_error_mean_ms": err.get("mean_ms")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if not MANIFEST.exists():
        raise SystemExit(f"{MANIFEST} is missing: run `dvc repro manifest` first")
    rows = [bench(w) for w in args.workers]
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
