"""Video and audio I/O through PyAV (FFmpeg libraries shipped in the wheel; no system ffmpeg needed)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class MediaError(RuntimeError):
    """A file that cannot be read as the video/audio it claims to be; the message is a rejects reason."""


@dataclass(frozen=True)
class MediaInfo:
    has_video: bool
    has_audio: bool
    fps: float | None
    n_frames: int | None
    width: int | None
    height: int | None
    sample_rate: int | None
    duration: float  # seconds (container duration, else the longest stream)


def probe(path: str | Path) -> MediaInfo:
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0] if c.streams.video else None
            a = c.streams.audio[0] if c.streams.audio else None
            durations = []
            if c.duration is not None:
                durations.append(c.duration / av.time_base)
            for s in (v, a):
                if s is not None and s.duration is not None and s.time_base is not None:
                    durations.append(float(s.duration * s.time_base))
            fps = float(v.average_rate) if v is not None and v.average_rate else None
            n_frames = int(v.frames) if v is not None and v.frames else None
            if n_frames is None and fps and durations:
                n_frames = int(round(max(durations) * fps))
            return MediaInfo(
                has_video=v is not None, has_audio=a is not None, fps=fps, n_frames=n_frames,
                width=v.codec_context.width if v is not None else None,
                height=v.codec_context.height if v is not None else None,
                sample_rate=a.codec_context.sample_rate if a is not None else None,
                duration=max(durations) if durations else 0.0,
            )
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as err:
        raise MediaError(f"unreadable container: {err}") from err


def read_video_frames(path: str | Path, fps: float = 25.0) -> np.ndarray:
    """All frames as RGB uint8 (T, H, W, 3), resampled to `fps` by nearest-earlier timestamp.

    Raises MediaError when the file has no decodable video frames.
    """
    frames, times = [], []
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise MediaError("no video stream")
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in c.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else len(times) / fps)
    except av.error.FFmpegError as err:
        if not frames:
            raise MediaError(f"video decode failed: {err}") from err
        # A truncated tail: keep what decoded; the caller sees the shorter length.
    if not frames:
        raise MediaError("no decodable video frames")
    times_arr = np.asarray(times) - times[0]
    src_fps = (len(times_arr) - 1) / times_arr[-1] if len(times_arr) > 1 and times_arr[-1] > 0 else fps
    if abs(src_fps - fps) < 1e-3 * fps:
        return np.stack(frames)
    n_out = max(1, int(np.floor(times_arr[-1] * fps + 1e-6)) + 1)
    targets = np.arange(n_out) / fps
    # Nearest frame at or before each target time (small tolerance for timestamp rounding).
    idx = np.clip(np.searchsorted(times_arr, targets + 0.5 / src_fps, side="right") - 1, 0, len(frames) - 1)
    return np.stack([frames[i] for i in idx])


def read_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """The first audio stream as mono float32 in [-1, 1] at `sample_rate`."""
    chunks = []
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise MediaError("no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in c.decode(c.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as err:
        if not chunks:
            raise MediaError(f"audio decode failed: {err}") from err
    if not chunks:
        raise MediaError("no decodable audio samples")
    return np.concatenate(chunks).astype(np.float32)


def write_video(path: str | Path, frames: np.ndarray, fps: int, audio: np.ndarray | None = None,
                sample_rate: int = 16000, crf: int = 18) -> None:
    """Mux RGB uint8 frames (T, H, W, 3) as H.264 and optional mono float audio as AAC into an .mp4.

    Deterministic for equal inputs (bit-exact flags, no creation time), so content hashes are stable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    # faststart: the index goes first, as in streaming-ready corpora (a cut file stays readable up to the cut).
    with av.open(str(path), mode="w", options={"fflags": "+bitexact", "movflags": "+faststart"}) as c:
        v = c.add_stream("libx264", rate=Fraction(fps))
        v.width, v.height, v.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        # One encoder thread, lookahead included: threaded x264 varied the bytes between runs of the same frames.
        v.codec_context.thread_count = 1
        v.options = {"crf": str(crf), "preset": "medium", "threads": "1",
                     "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0"}
        v.codec_context.flags |= av.codec.context.Flags.bitexact
        a = None
        if audio is not None:
            a = c.add_stream("aac", rate=sample_rate)
            a.layout = "mono"
            a.codec_context.flags |= av.codec.context.Flags.bitexact
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: v.height, : v.width]), format="rgb24")
            for packet in v.encode(frame):
                c.mux(packet)
        for packet in v.encode():
            c.mux(packet)
        if a is not None:
            samples = np.clip(audio.astype(np.float32), -1, 1).reshape(1, -1)
            step = 1024
            for start in range(0, samples.shape[1], step):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + step]), format="flt",
                                                layout="mono")
                af.sample_rate = sample_rate
                af.pts = start
                for packet in a.encode(af):
                    c.mux(packet)
            for packet in a.encode():
                c.mux(packet)
