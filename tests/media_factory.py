"""Small real media files for tests: valid clips and every kind of broken input the manifest must reject."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from lipforge.media import write_video


def frames(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size, dtype=np.float32)[None, :, None] * np.ones((size, 1, 3), np.float32)
    out = np.stack([np.roll(base, i, axis=1) for i in range(n)]) + rng.normal(0, 3, (n, size, size, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def tone(seconds: float, sr: int = 16000, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def good_clip(path: Path, seconds: float = 1.2, fps: int = 25, sr: int = 16000, seed: int = 0,
              text: str | None = "BIN BLUE AT F TWO NOW") -> Path:
    write_video(path, frames(int(seconds * fps), seed=seed), fps, tone(seconds, sr), sr)
    if text is not None:
        path.with_suffix(".txt").write_text(f"Text:  {text}\nConf:  5\n")
    return path


def audio_only(path: Path, seconds: float = 1.0, sr: int = 16000) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        a = c.add_stream("aac", rate=sr)
        a.layout = "mono"
        samples = tone(seconds, sr).reshape(1, -1)
        for start in range(0, samples.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]), format="flt",
                                           layout="mono")
            f.sample_rate, f.pts = sr, start
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    return path


def video_at_fps(path: Path, fps: int, seconds: float = 1.2) -> Path:
    write_video(path, frames(max(2, int(seconds * fps))), fps, tone(seconds), 16000)
    return path


def truncate(path: Path, keep_fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path
