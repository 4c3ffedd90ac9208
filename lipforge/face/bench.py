"""Face-crop throughput and frame-store numbers on the real carphone clip (for benchmarks/ and the README).

`python -m lipforge.face.bench [--backend dlib] [--img-size 96] [--quality 95]` prints the JSON.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from lipforge.assets import fetch
from lipforge.face.crop import crop_clip
from lipforge.face.detectors import load_backend
from lipforge.face.framestore import benchmark_frame_store
from lipforge.media import read_video_frames
from lipforge.params import FaceCropParams


def benchmark_face_crop(backend: str = "dlib", img_size: int = 96, quality: int = 95, repeats: int = 3) -> dict:
    """Single-process frames/s of decode and crop_clip on carphone (best of `repeats`, since the machine
    may be shared), and the frame-store numbers for its crops."""
    path = fetch("carphone")
    face = load_backend(backend)
    params = FaceCropParams(img_size=img_size, jpeg_quality=quality)
    decode_s, crop_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frames = read_video_frames(path)
        t1 = time.perf_counter()
        clip = crop_clip(frames, face, params)
        decode_s.append(t1 - t0)
        crop_s.append(time.perf_counter() - t1)
    n = len(frames)
    with tempfile.TemporaryDirectory() as workdir:
        store = benchmark_frame_store(clip.frames, workdir, quality=quality)
    return {"asset": "carphone", "frames": n, "backend": face.name, "face_found": float(clip.face_found.mean()),
            "decode_fps": n / min(decode_s), "crop_clip_fps": n / min(crop_s),
            "decode_and_crop_fps": n / min(d + c for d, c in zip(decode_s, crop_s)), "frame_store": store}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="dlib")
    ap.add_argument("--img-size", type=int, default=96)
    ap.add_argument("--quality", type=int, default=95)
    args = ap.parse_args()
    print(json.dumps(benchmark_face_crop(args.backend, args.img_size, args.quality), indent=1))


if __name__ == "__main__":
    main()
