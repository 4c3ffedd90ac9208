"""One sample-corpus clip: GRID sentence -> speech -> mouth track -> frames -> .mp4 + transcript + ground truth.

`render_clip` is the per-clip Ray task. Everything random in a clip is drawn from generators seeded by
(corpus seed, clip index), so a clip is the same whichever worker renders it and in whatever order.
The task returns the files' bytes instead of writing them, so it also works on a cluster whose workers
do not share the driver's disk.
"""
from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lipforge.corpus import grid, motion, tts, visemes
from lipforge.corpus.render import Plate, render_frame
from lipforge.media import write_video
from lipforge.params import SampleCorpusParams

MIN_SILENCE = 0.3  # s: total leading + trailing silence, so speech onset is never at the clip start
MAX_EXTRA_SILENCE = 1.2  # s: a clip is at most this much longer than its speech (GRID-like density)
EDGE_SILENCE = 0.05  # s: the least silence on either side
MAX_SENTENCE_DRAWS = 50
CONFIDENCE = 4  # LRS2 "Conf:" value; these transcripts are exact


@dataclass(frozen=True)
class ClipPlan:
    index: int  # position in the corpus; seeds the clip's random streams
    speaker: str  # identity id
    name: str  # "00001", numbered per speaker
    voice: str
    rate_wpm: int

    @property
    def key(self) -> str:
        return f"{self.speaker}/{self.name}"


def _balanced(values: list, n: int, rng: np.random.Generator) -> list:
    """n items cycling through `values` (each used equally often, +-1), in a shuffled order."""
    cycled = [values[i % len(values)] for i in range(n)]
    return [cycled[i] for i in rng.permutation(n)]


def speaker_schedule(order: list[str], held_out: set[str], n_clips: int, held_out_clips: int) -> list[str]:
    """The speaker of each clip. Each held-out (val/test) identity gets `held_out_clips` clips and the
    training identities share the rest evenly, so many training faces do not shrink the test set; a
    corpus too small for that gives every identity n_clips/len(order) clips (+-1). Clips are dealt
    round-robin over `order` until each identity has its count."""
    train = [i for i in order if i not in held_out]
    spare = n_clips - held_out_clips * (len(order) - len(train))
    if spare >= len(train):
        target = {i: held_out_clips for i in order if i in held_out}
        target.update({i: spare // len(train) + (k < spare % len(train)) for k, i in enumerate(train)})
    else:
        target = {i: n_clips // len(order) + (k < n_clips % len(order)) for k, i in enumerate(order)}
    counts = dict.fromkeys(order, 0)
    speakers: list[str] = []
    while len(speakers) < n_clips:
        for speaker in order:
            if counts[speaker] < target[speaker]:
                counts[speaker] += 1
                speakers.append(speaker)
    return speakers


def plan_clips(speakers: list[str], voices: list[str], rates_wpm: list[int], seed: int) -> list[ClipPlan]:
    """One clip per entry of `speakers` (see speaker_schedule), voices and rates balanced over the clips."""
    n_clips = len(speakers)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9E1D]))
    voice_of = _balanced(list(voices), n_clips, rng)
    rate_of = _balanced(list(rates_wpm), n_clips, rng)
    per_speaker: dict[str, int] = {}
    plans = []
    for i, speaker in enumerate(speakers):
        per_speaker[speaker] = per_speaker.get(speaker, 0) + 1
        plans.append(ClipPlan(i, speaker, f"{per_speaker[speaker]:05d}", voice_of[i], int(rate_of[i])))
    return plans


def clip_rngs(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent (speech, head motion, lighting) generators of one clip."""
    children = np.random.SeedSequence([seed, index]).spawn(3)
    return tuple(np.random.default_rng(c) for c in children)  # type: ignore[return-value]


def padded_length(speech_seconds: float, min_seconds: float, max_seconds: float,
                  rng: np.random.Generator) -> float | None:
    """Clip length for this much speech, or None when it cannot fit within max_seconds."""
    lo = max(min_seconds, speech_seconds + MIN_SILENCE)
    if lo > max_seconds:
        return None
    hi = min(max_seconds, max(lo, speech_seconds + MAX_EXTRA_SILENCE))
    return float(rng.uniform(lo, hi))


def synthesize_clip_speech(plan: ClipPlan, cfg: SampleCorpusParams, rng: np.random.Generator) -> tts.Utterance:
    """A GRID sentence that fits the clip length limits, padded with random lead/tail silence."""
    for _ in range(MAX_SENTENCE_DRAWS):
        words = grid.sample_sentence(rng)
        text = " ".join(words)
        bare = tts.synthesize(text, plan.voice, plan.rate_wpm, cfg.sample_rate)
        total = padded_length(bare.duration, cfg.min_seconds, cfg.max_seconds, rng)
        if total is None:
            continue
        silence = total - bare.duration
        lead = float(rng.uniform(EDGE_SILENCE, max(EDGE_SILENCE, silence - EDGE_SILENCE)))
        return tts.synthesize(text, plan.voice, plan.rate_wpm, cfg.sample_rate, lead_silence=lead,
                              tail_silence=max(0.0, silence - lead))
    raise ValueError(f"no GRID sentence spoken by {plan.voice} at {plan.rate_wpm} wpm fits in "
                     f"{cfg.max_seconds} s (with {MIN_SILENCE} s of silence); raise sample_corpus.max_seconds "
                     f"or the speaking rates")


def lrs2_transcript(text: str, words: list[tts.TimedUnit]) -> str:
    lines = [f"Text:  {text}", f"Conf:  {CONFIDENCE}", "", "WORD START END ASDSCORE"]
    lines += [f"{w.label} {w.start:.2f} {w.end:.2f} {float(CONFIDENCE):.1f}" for w in words]
    return "\n".join(lines) + "\n"


def _units(units: list[tts.TimedUnit], key: str) -> list[dict]:
    return [{key: u.label, "start": round(u.start, 6), "end": round(u.end, 6)} for u in units]


def ground_truth(plan: ClipPlan, utt: tts.Utterance, text: str, cfg: SampleCorpusParams,
                 track: visemes.MouthTrack, open_px: np.ndarray, n_frames: int) -> dict:
    return {
        "text": text,
        "identity": plan.speaker,
        "voice": utt.voice,
        "rate_wpm": utt.rate_wpm,
        "fps": cfg.fps,
        "sample_rate": utt.sample_rate,
        "n_frames": n_frames,
        "n_samples": int(len(utt.audio)),
        "duration": round(utt.duration, 6),
        "frame_time": "frame i shows time i / fps; mouth values are sampled there",
        "phones": _units(utt.phones, "phone"),
        "words": _units(utt.words, "word"),
        "espeak_phones": _units(utt.espeak_phones, "phone"),
        "mouth": {
            "jaw_open": [round(float(x), 5) for x in track.jaw_open],
            "lip_width": [round(float(x), 5) for x in track.lip_width],
            "lip_round": [round(float(x), 5) for x in track.lip_round],
            "mouth_open_px": [round(float(x), 3) for x in open_px],
        },
    }


def render_clip(plan: ClipPlan, plates: dict[str, Plate], corpus: SampleCorpusParams, seed: int) -> dict:
    """The clip's files as {suffix: bytes} plus its corpus.json row (Ray task; pure given its inputs)."""
    cfg = corpus
    cv2.setNumThreads(1)  # one Ray task per core already
    speech_rng, motion_rng, light_rng = clip_rngs(seed, plan.index)
    utt = synthesize_clip_speech(plan, cfg, speech_rng)
    text = grid.transcript([w.label for w in utt.words])
    n_frames = visemes.n_video_frames(len(utt.audio), utt.sample_rate, cfg.fps)
    track = visemes.mouth_track([(p.label, p.start, p.end) for p in utt.phones], n_frames, cfg.fps)
    plate = plates[plan.speaker]
    head = motion.head_motion(motion_rng, n_frames, cfg.fps, cfg.frame_size)
    light = motion.lighting_drift(light_rng, n_frames, cfg.fps)

    frames = np.empty((n_frames, cfg.frame_size, cfg.frame_size, 3), np.uint8)
    landmarks = np.empty((n_frames, 68, 2), np.float32)
    open_px = np.empty(n_frames, np.float64)
    for i in range(n_frames):
        out = render_frame(plate, *track.frame(i), head.at(i))
        frames[i] = motion.apply_lighting(out.image, light.gain[i], float(light.side[i]))
        landmarks[i] = out.landmarks
        open_px[i] = out.mouth_open_px

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        write_video(video, frames, cfg.fps, utt.audio, utt.sample_rate)
        mp4 = video.read_bytes()
    npy = io.BytesIO()
    np.save(npy, landmarks)
    gt = ground_truth(plan, utt, text, cfg, track, open_px, n_frames)
    return {
        "key": plan.key,
        "files": {
            ".mp4": mp4,
            ".txt": lrs2_transcript(text, utt.words).encode(),
            ".gt.json": (json.dumps(gt, indent=1) + "\n").encode(),
            ".landmarks.npy": npy.getvalue(),
        },
        "row": {"speaker": plan.speaker, "clip": plan.name, "text": text, "voice": utt.voice,
                "rate_wpm": utt.rate_wpm, "duration": round(utt.duration, 6), "n_frames": n_frames,
                "speech_start": round(next(p.start for p in utt.phones if p.label != "SIL"), 6)},
    }
