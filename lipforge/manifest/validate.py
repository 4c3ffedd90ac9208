"""Validate one candidate clip: read its transcript, probe its streams, check it can be converted.

Returns either a manifest row or a rejects row (with a `reason` from REJECT_REASONS and a human detail).
This runs as a Ray task per clip, so it must never raise for a bad input.
"""
from __future__ import annotations

import os
from pathlib import Path

import av

from lipforge.hashing import file_sha256, obj_sha256
from lipforge.manifest.transcripts import read_grid_align, read_lrs_transcript, normalize_text
from lipforge.media import MediaError, probe

REJECT_REASONS = {
    "missing_transcript": "no transcript file next to the video",
    "empty_transcript": "the transcript has no words",
    "missing_video": "a transcript without its video",
    "unsupported_layout": "a file the root's layout does not expect",
    "unreadable": "the container cannot be opened (corrupt, not a video, or empty file)",
    "no_video_stream": "the file has no video stream",
    "no_audio_stream": "the file has no audio stream and no separate .wav was found",
    "zero_length": "the streams hold no frames or samples",
    "truncated": "the stream data ends before the declared duration",
    "unsupported_fps": "the frame rate cannot be converted to the target fps without losing lip motion",
    "unsupported_sample_rate": "the audio sample rate is below the target (upsampling cannot restore the band)",
    "too_short": "shorter than manifest.min_seconds",
    "too_long": "longer than manifest.max_seconds",
    "duplicate_clip_id": "another root already has a clip with this id",
    "split_conflict": "the speaker is listed in two different splits",
}


def _reject(cand: dict, reason: str, detail: str) -> dict:
    assert reason in REJECT_REASONS, reason
    return {"clip_id": cand["clip_id"], "path": cand["video_path"], "reason": reason, "detail": detail}


def _read_transcript(cand: dict) -> str:
    path = Path(cand["transcript_path"])
    if cand["transcript_kind"] == "grid_align":
        return read_grid_align(path)
    if cand["transcript_kind"] == "lrs":
        return read_lrs_transcript(path)
    return normalize_text(path.read_text(errors="replace"))


def _video_data_end(path: str) -> float:
    """Seconds covered by the demuxed video packets; raises MediaError when demuxing fails part-way.

    Demuxing reads every packet without decoding, so a truncated mdat shows up cheaply.
    """
    end = 0.0
    try:
        with av.open(path) as c:
            s = c.streams.video[0]
            for pkt in c.demux(s):
                if pkt.pts is not None and pkt.time_base is not None:
                    dur = float((pkt.duration or 0) * pkt.time_base)
                    end = max(end, float(pkt.pts * pkt.time_base) + dur)
            start = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
    except av.error.FFmpegError as err:
        raise MediaError(f"demux failed after {end:.2f} s: {err}") from err
    return end - start


def validate_candidate(cand: dict, target_fps: float, target_sr: int, min_fps: float, max_fps: float,
                       min_seconds: float, max_seconds: float) -> dict:
    """{'ok': manifest row} or {'reject': rejects row}."""
    video = cand["video_path"]
    if not Path(cand["transcript_path"]).is_file():
        return {"reject": _reject(cand, "missing_transcript", f"expected {cand['transcript_path']}")}
    transcript = _read_transcript(cand)
    if not transcript:
        return {"reject": _reject(cand, "empty_transcript", f"{cand['transcript_path']} has no words")}
    if os.path.getsize(video) == 0:
        return {"reject": _reject(cand, "unreadable", "empty file (0 bytes)")}
    try:
        info = probe(video)
    except MediaError as err:
        return {"reject": _reject(cand, "unreadable", str(err))}
    if not info.has_video:
        return {"reject": _reject(cand, "no_video_stream", "audio-only file")}
    audio_info = info
    if cand["audio_path"]:
        try:
            audio_info = probe(cand["audio_path"])
        except MediaError as err:
            return {"reject": _reject(cand, "unreadable", f"audio file {cand['audio_path']}: {err}")}
    if not audio_info.has_audio:
        return {"reject": _reject(cand, "no_audio_stream", "video without sound and no separate .wav")}
    if info.duration <= 0 or not info.n_frames:
        return {"reject": _reject(cand, "zero_length", f"duration {info.duration:.3f} s, frames {info.n_frames}")}
    try:
        data_end = _video_data_end(video)
    except MediaError as err:
        return {"reject": _reject(cand, "truncated", str(err))}
    # Packets must reach the declared duration (one frame of slack for rounding).
    slack = 1.5 / (info.fps or target_fps)
    if data_end + slack < info.duration:
        return {"reject": _reject(cand, "truncated", f"video data ends at {data_end:.2f} s of {info.duration:.2f} s")}
    if info.fps is None or not (min_fps <= info.fps <= max_fps):
        return {"reject": _reject(cand, "unsupported_fps", f"{info.fps} fps is outside [{min_fps}, {max_fps}] "
                                  f"(manifest.min_fps/max_fps); it cannot be converted to {target_fps} fps")}
    if (audio_info.sample_rate or 0) < target_sr:
        return {"reject": _reject(cand, "unsupported_sample_rate",
                                  f"{audio_info.sample_rate} Hz < {target_sr} Hz target")}
    duration = min(data_end, info.duration) if data_end > 0 else info.duration
    if duration < min_seconds:
        return {"reject": _reject(cand, "too_short", f"{duration:.2f} s < {min_seconds} s")}
    if duration > max_seconds:
        return {"reject": _reject(cand, "too_long", f"{duration:.2f} s > {max_seconds} s")}
    files = [video] + ([cand["audio_path"]] if cand["audio_path"] else [])
    content_hash = obj_sha256({"media": [file_sha256(f) for f in files], "transcript": transcript})
    row = {k: cand[k] for k in ("clip_id", "speaker", "clip", "video_path", "audio_path", "transcript_path",
                                "gt_path", "gt_landmarks_path", "listed_split")}
    row.update(transcript=transcript, duration_s=round(duration, 4), source_fps=round(info.fps, 4),
               source_sample_rate=int(audio_info.sample_rate), width=int(info.width), height=int(info.height),
               n_frames=int(duration * target_fps + 1e-6), fps=float(target_fps), sample_rate=int(target_sr),
               content_hash=content_hash, size_bytes=sum(os.path.getsize(f) for f in files),
               # Ground-truth sidecars (sample corpus) only feed evaluation; their hash keeps that lineage true.
               gt_hash=obj_sha256([file_sha256(f) for f in (cand["gt_path"], cand["gt_landmarks_path"]) if f]))
    return {"ok": row}
